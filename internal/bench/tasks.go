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

// runTasks is w6, the task round trip: a requester submits a no-op task
// and waits for its outcome with the SDK's Await (a long-poll), while a
// Worker with Concurrency handlers (Batch at most per receive) completes
// the tasks. Without Rate, Concurrency requesters loop, each with one task
// at a time (closed loop), and a latency runs from the start of Submit to
// the return of Await; with Rate, submits are made on a fixed-rate
// schedule, open loop (see pace), and a latency runs from the moment the
// submit was due.
func runTasks(ctx context.Context, r *runner) (outcome, error) {
	if err := r.putQueue(ctx); err != nil {
		return outcome{}, err
	}
	w := courier.NewWorker(r.c, r.p.Queue, courier.HandlerFunc(func(context.Context, *courier.Delivery) error {
		return nil
	}), courier.WorkerOptions{Concurrency: r.p.Concurrency, MaxBatch: r.p.Batch, Wait: workerWait})
	// The requesters' context ends when the worker does: a worker that
	// gave up must not leave them awaiting forever.
	lctx, endLoad := context.WithCancel(ctx)
	defer endLoad()
	wctx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	ended := make(chan error, 1)
	go func() {
		err := w.Run(wctx)
		endLoad()
		ended <- err
	}()

	out, err := r.taskLoad(lctx)
	stopWorker()
	werr := <-ended
	switch {
	case werr != nil:
		return outcome{}, errors.Join(fmt.Errorf("worker: %w", werr), err)
	case err != nil:
		return outcome{}, err
	case ctx.Err() != nil:
		return outcome{}, ctx.Err()
	}
	r.extra["warmup_tasks"] = 1
	return out, nil
}

// taskLoad is w6's requesters: one warm-up task, then the measured ones.
func (r *runner) taskLoad(ctx context.Context) (outcome, error) {
	if err := r.roundTrip(ctx); err != nil {
		return outcome{}, err
	}
	n := r.p.Count
	m := r.phase("submitted and awaited", n)
	var (
		mu  sync.Mutex // guards lat
		lat = &Histogram{}
	)
	if r.p.Rate > 0 {
		lag, err := pace(ctx, n, r.p.Rate, func(ctx context.Context, due time.Time) error {
			if err := r.roundTrip(ctx); err != nil {
				return err
			}
			d := time.Since(due)
			m.add(1)
			mu.Lock()
			lat.Record(d)
			mu.Unlock()
			return nil
		})
		if err != nil {
			return outcome{}, err
		}
		noteLag(r.extra, lag)
		return outcome{count: m.count(), elapsed: m.elapsed(), lat: lat, windows: m.windows()}, nil
	}
	var next atomic.Int64
	g, gctx := newGroup(ctx)
	for range r.p.Concurrency {
		g.run(func() error {
			h := &Histogram{}
			defer func() {
				mu.Lock()
				lat.Merge(h)
				mu.Unlock()
			}()
			for next.Add(1) <= n {
				start := time.Now()
				if err := r.roundTrip(gctx); err != nil {
					return err
				}
				h.Record(time.Since(start))
				m.add(1)
			}
			return nil
		})
	}
	if err := g.wait(); err != nil {
		return outcome{}, err
	}
	return outcome{count: m.count(), elapsed: m.elapsed(), lat: lat, windows: m.windows()}, nil
}

// roundTrip submits one no-op task and awaits its outcome, which must be
// success.
func (r *runner) roundTrip(ctx context.Context) error {
	f, err := r.c.Submit(ctx, r.p.Queue, courier.SubmitTask{NewMessage: r.bodies.message()})
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	t, err := f.Await(ctx)
	if err != nil {
		return fmt.Errorf("await: %w", err)
	}
	if t.State != courier.TaskSucceeded {
		return fmt.Errorf("task %s ended %s, want succeeded (error %q)", t.ID, t.State, t.Error)
	}
	return nil
}
