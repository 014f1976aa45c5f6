package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
)

// W2 on Asynq: P goroutines enqueue the N tasks, one Enqueue call per task
// (Asynq has no batch enqueue), then an Asynq server with Concurrency K
// works them; the clock runs from the server's Start until the queue is
// empty. Asynq deletes a task from Redis once its handler has returned
// (no Retention set), so "queue empty" means every completion reached
// Redis. The handler counts tasks; once it has seen N, the queue is polled
// (every millisecond) until the last deletions land.

// asynqMode is one Redis fsync policy.
type asynqMode struct {
	fsync, system, durability string
}

var asynqModes = []asynqMode{
	{fsync: "always", system: "Asynq, Redis appendfsync always",
		durability: "every write in the AOF, fsynced before the reply"},
	{fsync: "everysec", system: "Asynq, Redis appendfsync everysec",
		durability: "AOF fsynced once a second: up to a second of acknowledged writes can be lost"},
}

const asynqTaskType = "bench:noop"

// runAsynqW2 measures W2 against the Redis at addr.
func runAsynqW2(ctx context.Context, addr string, m asynqMode, p Params) Figure {
	enq, d, err := asynqW2(ctx, addr, p)
	if err != nil {
		return failed(m.system, "w2", "burn-down", err)
	}
	f := measured(m.system, "w2", "burn-down", p.Count, d)
	f.EnqueuePerSecond = enq
	f.Durability = m.durability
	return f
}

func asynqW2(ctx context.Context, addr string, p Params) (enqueueRate float64, _ time.Duration, _ error) {
	redisOpt := asynq.RedisClientOpt{Addr: addr}
	client := asynq.NewClient(redisOpt)
	defer client.Close()
	payload := p.payload()

	var toEnqueue atomic.Int64
	toEnqueue.Store(int64(p.Count))
	var enqueueErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range p.Producers {
		wg.Go(func() {
			for claim(&toEnqueue, 1) > 0 {
				if _, err := client.EnqueueContext(ctx, asynq.NewTask(asynqTaskType, payload)); err != nil {
					enqueueErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if e := enqueueErr.Load(); e != nil {
		return 0, 0, fmt.Errorf("enqueue: %w", *e)
	}
	enqueueRate = float64(p.Count) / time.Since(start).Seconds()

	var handled atomic.Int64
	allHandled := make(chan struct{})
	srv := asynq.NewServer(redisOpt, asynq.Config{
		Concurrency: p.Concurrency,
		Queues:      map[string]int{"default": 1},
		LogLevel:    asynq.ErrorLevel,
	})
	handler := asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		if handled.Add(1) == int64(p.Count) {
			close(allHandled)
		}
		return nil
	})
	start = time.Now()
	if err := srv.Start(handler); err != nil {
		return 0, 0, err
	}
	defer srv.Shutdown()
	select {
	case <-allHandled:
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("burn-down: %d of %d handled: %w", handled.Load(), p.Count, ctx.Err())
	}
	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	for {
		info, err := insp.GetQueueInfo("default")
		if err != nil {
			return 0, 0, err
		}
		if info.Size == 0 {
			break
		}
		if info.Retry+info.Archived > 0 {
			return 0, 0, fmt.Errorf("%d tasks failed", info.Retry+info.Archived)
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return enqueueRate, time.Since(start), nil
}
