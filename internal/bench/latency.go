package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/courierhq/courier"
)

// warmUpMessages are sent, received and acked before w3's schedule starts,
// so that its first sends do not pay for opening connections.
const warmUpMessages = 10

// runLatency is w3, latency at a fixed rate: Count single sends on a
// schedule of Rate per second, open loop (see pace), while Consumers
// goroutines receive (Batch at most per long-poll) and ack. A message's
// latency runs from the moment its send was due to the return of the
// receive that took it, so a send that started late is charged.
func runLatency(ctx context.Context, r *runner) (outcome, error) {
	if err := r.putQueue(ctx); err != nil {
		return outcome{}, err
	}
	if err := r.sendAll(ctx, warmUpMessages, 1, 1, false, nil, nil, nil); err != nil {
		return outcome{}, err
	}
	warm := newMeter("warm-up", warmUpMessages, 1)
	if _, _, err := r.receiveAll(ctx, warm, warmUpMessages, 1, warmUpMessages, noLatency, nil); err != nil {
		return outcome{}, err
	}

	n := r.p.Count
	m := r.phase("sent on schedule, received", n)
	g, gctx := newGroup(ctx)
	var (
		lat, lag *Histogram
		refused  int64
		sendMu   sync.Mutex
		send     = &Histogram{} // start → 2xx of each send
	)
	g.run(func() (err error) {
		if r.p.Worker {
			lat, err = r.workAll(gctx, m, n)
			return err
		}
		lat, refused, err = r.receiveAll(gctx, m, n, r.p.Consumers, r.p.Batch, sendToReceive, nil)
		return err
	})
	g.run(func() (err error) {
		lag, err = pace(gctx, n, r.p.Rate, func(ctx context.Context, due time.Time) error {
			start := time.Now()
			if _, err := r.c.Send(ctx, r.p.Queue, r.bodies.stamped(due.Sub(r.bodies.base))); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			sendMu.Lock()
			send.Record(time.Since(start))
			sendMu.Unlock()
			return nil
		})
		return err
	})
	if err := g.wait(); err != nil {
		return outcome{}, err
	}
	r.extra["warmup_messages"] = warmUpMessages
	if r.p.Worker {
		// A Worker only logs an ack that failed: check that every message
		// (the warm-up's too) was acked once its handler was done.
		if err := r.checkDrained(ctx, n+warmUpMessages); err != nil {
			return outcome{}, err
		}
	} else {
		r.extra["acks_refused_lease_expired"] = refused
	}
	noteLag(r.extra, lag)
	r.extra["send_p50_ms"] = ms(send.Percentile(0.5))
	r.extra["send_p99_ms"] = ms(send.Percentile(0.99))
	return outcome{count: m.count(), elapsed: m.elapsed(), lat: lat, windows: m.windows()}, nil
}

// noteLag reports how late the open-loop schedule's calls started: the
// load generator's own share of the latency (see newSleeper for why the
// pacer sleeps on a timerfd where it can).
func noteLag(extra map[string]any, lag *Histogram) {
	extra["send_lag_p50_ms"] = ms(lag.Percentile(0.5))
	extra["send_lag_p90_ms"] = ms(lag.Percentile(0.9))
	extra["send_lag_p99_ms"] = ms(lag.Percentile(0.99))
	extra["send_lag_max_ms"] = ms(lag.Max())
}

// workAll takes n messages with one SDK Worker of Consumers handlers, as an
// application would, counting them on m. A message's latency runs from its
// scheduled send to the start of its handler.
func (r *runner) workAll(ctx context.Context, m *meter, n int64) (*Histogram, error) {
	var (
		mu  sync.Mutex // guards lat
		lat = &Histogram{}
	)
	err := r.work(ctx, m, n, r.p.Consumers, func(d *courier.Delivery) {
		if since, ok := r.bodies.since(&d.Message); ok {
			mu.Lock()
			lat.Record(since)
			mu.Unlock()
		}
	})
	return lat, err
}
