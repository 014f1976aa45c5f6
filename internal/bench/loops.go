package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courierhq/courier"
)

// receiveWait is the long-poll of a consumer's receive. It is answered as
// soon as a message is there, so its length costs no latency; it bounds how
// long an idle consumer takes to see that the count is complete and stop.
//
// Consumers are not stopped by canceling their long-polls: a receive the
// client abandons may still lease messages on the server (it notices the
// closed connection a moment later), and those stay invisible for the
// visibility timeout, 30s. The next phase of a workload (w4 fills the queue
// right after its baseline drain) would find them missing. So a consumer
// that is done lets its last long-poll end on its own.
const receiveWait = "250ms"

// carryWait is the long-poll of a receive that carries acks: short, since
// the acks are answered only when it ends (the run's last ones would wait
// out a full receiveWait). It is worth having at all because the server
// applies such acks at once and lets the write that ends the wait (a send
// handing over a message) sync them too: one fsync for both.
const carryWait = "10ms"

// sendAll sends n messages to the run's queue from producers goroutines,
// batch messages per request (a single send, not a batch of one, when
// batch is 1). With stamp, each message carries the moment its request
// started, for a latency measured at the consumer. gate, if not nil, is
// called before each request with its message count and may wait for
// room (w5 bounds the backlog with it). sent, if not nil, counts the
// messages stored; lat, if not nil, gets each message's send request,
// start to 2xx.
func (r *runner) sendAll(ctx context.Context, n int64, producers, batch int, stamp bool,
	gate func(context.Context, int) error, sent *meter, lat *Histogram) error {
	var next atomic.Int64 // the first message of the next request
	var mu sync.Mutex     // guards lat
	g, ctx := newGroup(ctx)
	for range producers {
		g.run(func() error {
			msgs := make([]courier.NewMessage, 0, batch)
			h := &Histogram{}
			defer func() {
				if lat != nil {
					mu.Lock()
					lat.Merge(h)
					mu.Unlock()
				}
			}()
			for {
				first := next.Add(int64(batch)) - int64(batch)
				if first >= n {
					return nil
				}
				k := int(min(n-first, int64(batch)))
				if gate != nil {
					if err := gate(ctx, k); err != nil {
						return err
					}
				}
				msgs = msgs[:0]
				due := r.bodies.now()
				for range k {
					if stamp {
						msgs = append(msgs, r.bodies.stamped(due))
					} else {
						msgs = append(msgs, r.bodies.message())
					}
				}
				var err error
				start := time.Now()
				if batch == 1 {
					_, err = r.c.Send(ctx, r.p.Queue, msgs[0])
				} else {
					_, err = r.c.SendBatch(ctx, r.p.Queue, msgs)
				}
				if err != nil {
					return fmt.Errorf("send: %w", err)
				}
				h.RecordN(time.Since(start), k)
				if sent != nil {
					sent.add(int64(k))
				}
			}
		})
	}
	return g.wait()
}

// latencyMode says what a consumer measures of each message.
type latencyMode int

const (
	noLatency       latencyMode = iota
	sendToAck                   // from the stamp to the ack's 2xx
	sendToReceive               // from the stamp to the receive's return
	receiveAckRound             // the receive request's start to its ack's 2xx
)

// receiveAll receives and acks the run's queue with consumers goroutines,
// batch messages per receive (long-poll) and ack request (a single ack
// when batch is 1), until done has counted n acked messages. With
// CarryAcks, a batch's acks ride on the consumer's next receive instead
// (consumer.carry). settled, if not nil, is told how many each ack
// settled. It returns the latencies of mode, and how many acks were
// refused because their lease had expired (the message was or will be
// delivered again, and is counted when that delivery is acked).
func (r *runner) receiveAll(ctx context.Context, done *meter, n int64, consumers, batch int,
	mode latencyMode, settled func(int)) (*Histogram, int64, error) {
	var (
		mu      sync.Mutex // guards total
		total   = &Histogram{}
		refused atomic.Int64
		g, gctx = newGroup(ctx)
	)
	for range consumers {
		g.run(func() error {
			c := &consumer{r: r, done: done, n: n, batch: batch, mode: mode, settled: settled, h: &Histogram{}}
			defer func() {
				mu.Lock()
				total.Merge(c.h)
				mu.Unlock()
				refused.Add(c.refused)
			}()
			if r.p.CarryAcks && batch > 1 {
				return c.carry(gctx)
			}
			return c.run(gctx)
		})
	}
	err := g.wait()
	return total, refused.Load(), err
}

// consumer is one goroutine of receiveAll.
type consumer struct {
	r       *runner
	done    *meter
	n       int64
	batch   int
	mode    latencyMode
	settled func(int)
	h       *Histogram
	refused int64
}

func (c *consumer) complete() bool { return c.done.count() >= c.n }

// run receives a batch, then acks it in a request of its own.
func (c *consumer) run(ctx context.Context) error {
	req := courier.ReceiveRequest{Max: c.batch, Wait: receiveWait}
	for !c.complete() {
		start := time.Now()
		msgs, err := c.r.c.Receive(ctx, c.r.p.Queue, req)
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		if len(msgs) == 0 {
			continue
		}
		if c.mode == sendToReceive {
			c.r.recordSince(c.h, msgs)
		}
		expired, err := c.r.ack(ctx, msgs, c.batch)
		if err != nil {
			return fmt.Errorf("ack: %w", err)
		}
		c.acked(msgs, start, expired)
	}
	return nil
}

// carry receives a batch, and acks it with its next receive: one request
// per batch, as the SDK's Worker does. A receive that carries acks
// long-polls for carryWait only; the last batch's acks go out alone if the
// count completes first.
func (c *consumer) carry(ctx context.Context) error {
	var (
		held  []courier.Message // received, their acks not yet sent
		since time.Time         // the start of the receive that took held
	)
	for !c.complete() {
		req := courier.ReceiveRequest{Max: c.batch, Wait: receiveWait}
		if len(held) > 0 {
			req.Ack, req.Wait = &courier.AckRequest{Leases: leases(held)}, carryWait
		}
		start := time.Now()
		res, err := c.r.c.ReceiveAcking(ctx, c.r.p.Queue, req)
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		if len(held) > 0 {
			expired, err := ackOutcome(res.Ack)
			if err != nil {
				return fmt.Errorf("ack: %w", err)
			}
			c.acked(held, since, expired)
		}
		held, since = res.Messages, start
		if c.mode == sendToReceive {
			c.r.recordSince(c.h, held)
		}
	}
	if len(held) > 0 {
		expired, err := c.r.ack(ctx, held, c.batch)
		if err != nil {
			return fmt.Errorf("ack: %w", err)
		}
		c.acked(held, since, expired)
	}
	return nil
}

// acked counts the acks of msgs, received by a request that started at
// start, but for those of the expired leases (refused: the message comes
// back, and is counted, and its latency taken, when an ack of it holds).
func (c *consumer) acked(msgs []courier.Message, start time.Time, expired map[string]bool) {
	if len(expired) > 0 {
		applied := make([]courier.Message, 0, len(msgs))
		for _, m := range msgs {
			if !expired[m.Lease] {
				applied = append(applied, m)
			}
		}
		c.refused += int64(len(msgs) - len(applied))
		msgs = applied
	}
	switch c.mode {
	case sendToAck:
		c.r.recordSince(c.h, msgs)
	case receiveAckRound:
		c.h.RecordN(time.Since(start), len(msgs))
	}
	if c.settled != nil {
		c.settled(len(msgs))
	}
	c.done.add(int64(len(msgs)))
}

// recordSince records, for each stamped message, the time since its stamp.
func (r *runner) recordSince(h *Histogram, msgs []courier.Message) {
	for i := range msgs {
		if d, ok := r.bodies.since(&msgs[i]); ok {
			h.Record(d)
		}
	}
}

// ack acknowledges msgs, in one request, and returns the leases it found
// expired. A lease that has expired is not an error: the message comes back.
func (r *runner) ack(ctx context.Context, msgs []courier.Message, batch int) (map[string]bool, error) {
	if batch == 1 && len(msgs) == 1 {
		err := r.c.Ack(ctx, r.p.Queue, msgs[0].Lease)
		if errors.Is(err, courier.ErrLeaseExpired) {
			return map[string]bool{msgs[0].Lease: true}, nil
		}
		return nil, err
	}
	res, err := r.c.AckBatch(ctx, r.p.Queue, leases(msgs))
	if err != nil {
		return nil, err
	}
	return ackOutcome(&res)
}

// leases are the leases of msgs.
func leases(msgs []courier.Message) []string {
	ls := make([]string, len(msgs))
	for i := range msgs {
		ls[i] = msgs[i].Lease
	}
	return ls
}

// ackOutcome is the leases a batch ack found expired (nil: none); an error
// for any other refusal. A nil result (a server that did not apply acks
// carried by a receive) is an error.
func ackOutcome(res *courier.AckResult) (map[string]bool, error) {
	if res == nil {
		return nil, errors.New("the server answered a receive without the outcome of the acks it carried")
	}
	var expired map[string]bool
	for _, f := range res.Failed {
		if f.Code != courier.CodeLeaseExpired {
			return nil, fmt.Errorf("lease %s: %s (%s)", f.Lease, f.Message, f.Code)
		}
		if expired == nil {
			expired = map[string]bool{}
		}
		expired[f.Lease] = true
	}
	return expired, nil
}

// putQueue creates the run's queue (or keeps it, if it exists), so that
// the measured phase does not pay for its creation.
func (r *runner) putQueue(ctx context.Context) error {
	if _, err := r.c.PutQueue(ctx, r.p.Queue, courier.QueueSettings{}); err != nil {
		return fmt.Errorf("create queue %s: %w", r.p.Queue, err)
	}
	return nil
}
