package bench

import (
	"context"
	"fmt"
	"time"
)

// maxOutstanding bounds the open-loop calls in flight. Beyond it the next
// call waits for one to return: it starts late, and since its latency
// counts from its due time, the wait is charged, not hidden.
const maxOutstanding = 10_000

// pace makes n calls of fire at a fixed rate per second, open loop: call i
// is due at i/rate after the start, and starts then in a goroutine of its
// own, whether or not earlier calls have returned. fire is given its due
// time, from which the caller measures latency, so that a slow answer
// cannot slow the offered load and hide itself (coordinated omission).
// pace returns when every call has returned, with the first error, and
// how late each call started after its due time (the load generator's own
// lag: if it is large, the client, not the server, was the bottleneck).
func pace(ctx context.Context, n int64, rate float64, fire func(ctx context.Context, due time.Time) error) (*Histogram, error) {
	g, gctx := newGroup(ctx)
	sem := make(chan struct{}, maxOutstanding)
	lag := &Histogram{}
	interval := float64(time.Second) / rate
	var sleepErr error // the sleeper's own failure, not a cancellation
	sl := newSleeper()
	defer sl.close()
	start := time.Now()
loop:
	for i := range n {
		// Each call's own time on the schedule, rather than a ticker's
		// ticks: a tick the runtime drops would shift every later call.
		due := start.Add(time.Duration(float64(i) * interval))
		if d := time.Until(due); d > 0 {
			if err := sl.sleep(gctx, d); err != nil {
				if gctx.Err() == nil {
					sleepErr = fmt.Errorf("pace: %w", err)
				}
				break loop
			}
		}
		select {
		case sem <- struct{}{}:
		case <-gctx.Done():
			break loop
		}
		lag.Record(time.Since(due))
		g.run(func() error {
			defer func() { <-sem }()
			return fire(gctx, due)
		})
	}
	if err := g.wait(); err != nil {
		return lag, err
	}
	if sleepErr != nil {
		return lag, sleepErr
	}
	return lag, ctx.Err()
}
