package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courierhq/courier"
)

// maxChecked is how many tasks a burn-down checks, one by one, for the
// state succeeded at its end: all of them up to this many, else a sample
// spread evenly over the run.
const maxChecked = 1000

// workerWait is the long-poll of the Workers of w2 and w6.
const workerWait = 5 * time.Second

// runBurnDown is w2, the job burn-down: Count no-op jobs are enqueued
// first (Producers goroutines, Batch per request), then a Worker with
// Concurrency handlers (receiving Batch at most per request, acking in
// batches) works them off. The measured phase runs from the Worker's start
// to its graceful stop once every job was handled, when every ack is
// durable. A job's latency is that of the request that stored it.
//
// A job is a plain message, durably acked when done — what River, Asynq
// or Sidekiq call a job — unless Tasks is set: then each is a task, with a
// durable record that the worker's ack finishes (state, result), and a
// sample of them is checked to have succeeded. Either way the queue must
// end with every message acked.
func runBurnDown(ctx context.Context, r *runner) (outcome, error) {
	if err := r.putQueue(ctx); err != nil {
		return outcome{}, err
	}
	n := r.p.Count
	enq := r.phase("enqueue", n)
	var (
		lat    = &Histogram{}
		sample []string
		err    error
	)
	if r.p.Tasks {
		lat, sample, err = r.submitAll(ctx, n, enq)
	} else {
		err = r.sendAll(ctx, n, r.p.Producers, r.p.Batch, false, nil, enq, lat)
	}
	if err != nil {
		return outcome{}, err
	}
	r.extra["enqueue_seconds"] = enq.elapsed().Seconds()
	r.extra["enqueue_per_second"] = perSecond(n, enq.elapsed())

	burn := r.phase("burn down", n)
	if err := r.work(ctx, burn, n, r.p.Concurrency, nil); err != nil {
		return outcome{}, err
	}
	took := time.Since(burn.start)
	if err := r.checkTasks(ctx, sample); err != nil {
		return outcome{}, err
	}
	if r.p.Tasks {
		r.extra["tasks_checked"] = len(sample)
	}
	// For tasks too: the sample checks their records, this that every one
	// of the n messages was acked (a Worker only logs an ack that failed).
	if err := r.checkDrained(ctx, n); err != nil {
		return outcome{}, err
	}
	return outcome{count: n, elapsed: took, lat: lat, windows: burn.windows()}, nil
}

// work runs one SDK Worker of concurrency no-op handlers (Batch messages
// per receive at most) until n of them have counted on m; each calls
// handled first, if not nil. Every 2xx it waits for is durable: it ends
// with the Worker's graceful stop, once the last acks are answered.
func (r *runner) work(ctx context.Context, m *meter, n int64, concurrency int, handled func(*courier.Delivery)) error {
	all := make(chan struct{})
	var once sync.Once
	w := courier.NewWorker(r.c, r.p.Queue, courier.HandlerFunc(func(_ context.Context, d *courier.Delivery) error {
		if handled != nil {
			handled(d)
		}
		if m.add(1) >= n {
			once.Do(func() { close(all) })
		}
		return nil
	}), courier.WorkerOptions{Concurrency: concurrency, MaxBatch: r.p.Batch, Wait: workerWait})
	return runWorkerUntil(ctx, w, all)
}

// runWorkerUntil runs w until done is closed, then stops it gracefully:
// its handlers finish and its acks are answered before it returns.
func runWorkerUntil(ctx context.Context, w *courier.Worker, done <-chan struct{}) error {
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	ended := make(chan error, 1)
	go func() { ended <- w.Run(wctx) }()
	select {
	case <-done:
		stop()
		if err := <-ended; err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		return nil
	case err := <-ended: // ctx ended, or the worker gave up
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("worker: %w", err)
	}
}

// submitAll submits n no-op tasks from Producers goroutines in batch
// submits of Batch, counting them on m. It returns each task's submit
// latency and the ids of a sample of at most maxChecked tasks.
func (r *runner) submitAll(ctx context.Context, n int64, m *meter) (*Histogram, []string, error) {
	stride := max(n/maxChecked, 1)
	var (
		next   atomic.Int64
		mu     sync.Mutex // guards lat and sample
		lat    = &Histogram{}
		sample []string
	)
	g, gctx := newGroup(ctx)
	for range r.p.Producers {
		g.run(func() error {
			h := &Histogram{}
			var ids []string
			defer func() {
				mu.Lock()
				lat.Merge(h)
				sample = append(sample, ids...)
				mu.Unlock()
			}()
			batch := int64(r.p.Batch)
			ts := make([]courier.SubmitTask, 0, batch)
			for {
				first := next.Add(batch) - batch
				if first >= n {
					return nil
				}
				k := min(n-first, batch)
				ts = ts[:0]
				for range k {
					ts = append(ts, courier.SubmitTask{NewMessage: r.bodies.message()})
				}
				start := time.Now()
				fs, err := r.submit(gctx, ts)
				if err != nil {
					return fmt.Errorf("submit: %w", err)
				}
				h.RecordN(time.Since(start), int(k))
				for j, f := range fs {
					if (first+int64(j))%stride == 0 && len(ids) < maxChecked {
						ids = append(ids, f.ID())
					}
				}
				m.add(k)
			}
		})
	}
	err := g.wait()
	if len(sample) > maxChecked {
		sample = sample[:maxChecked]
	}
	return lat, sample, err
}

// submit submits ts in one request: a single submit when the run's batch
// is 1, else a batch submit.
func (r *runner) submit(ctx context.Context, ts []courier.SubmitTask) ([]*courier.Future, error) {
	if r.p.Batch == 1 {
		f, err := r.c.Submit(ctx, r.p.Queue, ts[0])
		if err != nil {
			return nil, err
		}
		return []*courier.Future{f}, nil
	}
	return r.c.SubmitBatch(ctx, r.p.Queue, ts)
}

// checkTasks asserts that each task of ids has succeeded.
func (r *runner) checkTasks(ctx context.Context, ids []string) error {
	var next atomic.Int64
	g, gctx := newGroup(ctx)
	for range min(8, len(ids)) {
		g.run(func() error {
			for i := next.Add(1) - 1; i < int64(len(ids)); i = next.Add(1) - 1 {
				t, err := r.c.GetTask(gctx, ids[i], 0)
				if err != nil {
					return fmt.Errorf("check task %s: %w", ids[i], err)
				}
				if t.State != courier.TaskSucceeded {
					return fmt.Errorf("task %s ended %s, want succeeded (error %q)", ids[i], t.State, t.Error)
				}
			}
			return nil
		})
	}
	return g.wait()
}

// checkDrained asserts that the queue has seen at least n acks and holds
// nothing ready or in flight: every job was worked off, not dropped.
func (r *runner) checkDrained(ctx context.Context, n int64) error {
	q, err := r.c.GetQueue(ctx, r.p.Queue)
	if err != nil {
		return fmt.Errorf("check the queue: %w", err)
	}
	if s := q.Stats; s.AckedTotal < n || s.Ready != 0 || s.InFlight != 0 {
		return fmt.Errorf("queue %s after the run: acked %d of %d, %d ready, %d in flight",
			r.p.Queue, s.AckedTotal, n, s.Ready, s.InFlight)
	}
	return nil
}
