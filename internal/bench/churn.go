package bench

import (
	"context"
	"sync"
)

// runChurn is w5, churn: Count send+receive+ack cycles with a small, steady
// backlog: Producers goroutines send (Batch per request) only while fewer
// than Backlog messages are sent and not yet acked, and Consumers
// goroutines receive and ack (Batch per request). Throughput is reported
// per window of Count/Windows cycles; a store that slows down as deletes
// pile up shows it as a last window slower than the first. A message's
// latency runs from the start of its send request to the 2xx of its ack.
func runChurn(ctx context.Context, r *runner) (outcome, error) {
	if err := r.putQueue(ctx); err != nil {
		return outcome{}, err
	}
	n := r.p.Count
	room := newCredits(r.p.Backlog)
	m := r.phase("send+receive+ack cycles", n)
	g, gctx := newGroup(ctx)
	var (
		lat     *Histogram
		refused int64
	)
	g.run(func() error {
		return r.sendAll(gctx, n, r.p.Producers, r.p.Batch, true, room.take, nil, nil)
	})
	g.run(func() (err error) {
		lat, refused, err = r.receiveAll(gctx, m, n, r.p.Consumers, r.p.Batch, sendToAck, room.give)
		return err
	})
	if err := g.wait(); err != nil {
		return outcome{}, err
	}
	ws := m.windows()
	r.extra["last_over_first"] = 0.0
	if len(ws) > 0 && ws[0].PerSecond > 0 {
		r.extra["last_over_first"] = ws[len(ws)-1].PerSecond / ws[0].PerSecond
	}
	r.extra["acks_refused_lease_expired"] = refused
	return outcome{count: m.count(), elapsed: m.elapsed(), lat: lat, windows: ws}, nil
}

// credits bound the messages sent and not yet acked: a producer takes one
// per message before it sends, a consumer gives them back once acked.
type credits struct {
	mu    sync.Mutex // guards avail and wake
	avail int
	wake  chan struct{} // closed, and replaced, when credits are given back
}

func newCredits(n int) *credits {
	return &credits{avail: n, wake: make(chan struct{})}
}

// take waits until k credits are free and takes them, or until ctx ends.
func (c *credits) take(ctx context.Context, k int) error {
	for {
		c.mu.Lock()
		if c.avail >= k {
			c.avail -= k
			c.mu.Unlock()
			return nil
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// give returns k credits and wakes those waiting.
func (c *credits) give(k int) {
	if k <= 0 {
		return
	}
	c.mu.Lock()
	c.avail += k
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
}
