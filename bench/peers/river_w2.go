package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// W2 on River: the jobs are inserted first with InsertMany (B jobs per
// insert, from P goroutines, as courier's W2 enqueues in batches), then a
// River client is started with MaxWorkers K on the default queue; the
// clock runs from Start until River has reported N jobs completed. River
// marks a job completed in PostgreSQL (batched by its completer) before it
// emits the job_completed event, so counting events counts durable
// completions. River's own benchmark (`river bench`) counts the same way.
//
// Fetch timing: River fetches at most once per FetchCooldown (default
// 100 ms), which caps a burn-down at K jobs per 100 ms whatever the
// database can do. So River runs twice: with its defaults, and with the
// values River's own benchmark chooses for throughput (FetchCooldown 2 ms,
// FetchPollInterval 20 ms). K stays courier's in both. The targets
// are checked against the tuned run, the stricter comparison.

// riverMode is one River client configuration.
type riverMode struct {
	id, system                   string
	fetchCooldown, fetchInterval time.Duration // zero: River's defaults
}

var riverModes = []riverMode{
	{id: "river-w2", system: "River (FetchCooldown 2 ms, as river bench), PostgreSQL",
		fetchCooldown: 2 * time.Millisecond, fetchInterval: 20 * time.Millisecond},
	{id: "river-default-w2", system: "River (defaults: FetchCooldown 100 ms), PostgreSQL"},
}

// riverArgs is the no-op job; Payload has the run's message size.
type riverArgs struct {
	Payload string `json:"payload"`
}

func (riverArgs) Kind() string { return "bench_noop" }

// riverWorker completes every job at once.
type riverWorker struct {
	river.WorkerDefaults[riverArgs]
}

func (riverWorker) Work(context.Context, *river.Job[riverArgs]) error { return nil }

// runRiverW2 measures W2 on a fresh database of pg.
func runRiverW2(ctx context.Context, pg *pgServer, m riverMode, p Params) Figure {
	enq, d, err := riverW2(ctx, pg, m, p)
	if err != nil {
		return failed(m.system, "w2", "burn-down", err)
	}
	f := measured(m.system, "w2", "burn-down", p.Count, d)
	f.EnqueuePerSecond = enq
	f.Durability = "every insert and completion committed (PostgreSQL with fsync and synchronous_commit on)"
	return f
}

func riverW2(ctx context.Context, pg *pgServer, m riverMode, p Params) (enqueueRate float64, _ time.Duration, _ error) {
	dsn, err := pg.createDB(ctx, strings.ReplaceAll(m.id, "-", "_"))
	if err != nil {
		return 0, 0, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return 0, 0, err
	}
	// pgx's default pool (4 connections on 2 cores) would hold back P
	// concurrent inserts besides River's own fetcher and completer.
	cfg.MaxConns = int32(max(16, p.Producers+8))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return 0, 0, err
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return 0, 0, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return 0, 0, fmt.Errorf("river migrate: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &riverWorker{})
	client, err := river.NewClient(driver, &river.Config{
		FetchCooldown:     m.fetchCooldown,
		FetchPollInterval: m.fetchInterval,
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: p.Concurrency}},
		Workers:           workers,
	})
	if err != nil {
		return 0, 0, err
	}

	// Enqueue: P goroutines, InsertMany of B jobs each (one transaction).
	args := riverArgs{Payload: p.textPayload()}
	var toInsert atomic.Int64
	toInsert.Store(int64(p.Count))
	var wg sync.WaitGroup
	var insertErr atomic.Pointer[error]
	start := time.Now()
	for range p.Producers {
		wg.Go(func() {
			params := make([]river.InsertManyParams, 0, p.Batch)
			for k := claim(&toInsert, p.Batch); k > 0; k = claim(&toInsert, p.Batch) {
				params = params[:0]
				for range k {
					params = append(params, river.InsertManyParams{Args: args})
				}
				if _, err := client.InsertMany(ctx, params); err != nil {
					insertErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if e := insertErr.Load(); e != nil {
		return 0, 0, fmt.Errorf("insert: %w", *e)
	}
	enqueueRate = float64(p.Count) / time.Since(start).Seconds()

	// Burn-down.
	events, cancelSub := client.SubscribeConfig(&river.SubscribeConfig{
		// Room for every event: an event that does not fit is dropped.
		ChanSize: p.Count + 1000,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled},
	})
	defer cancelSub()
	start = time.Now()
	if err := client.Start(ctx); err != nil {
		return 0, 0, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	}()
	for done := 0; done < p.Count; {
		select {
		case ev := <-events:
			if ev.Kind != river.EventKindJobCompleted {
				return 0, 0, fmt.Errorf("job %d: %s", ev.Job.ID, ev.Kind)
			}
			done++
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("burn-down: %d of %d completed: %w", done, p.Count, ctx.Err())
		}
	}
	elapsed := time.Since(start)
	var completed int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state = 'completed'").Scan(&completed); err != nil {
		return 0, 0, err
	}
	if completed != p.Count {
		return 0, 0, fmt.Errorf("%d jobs completed in river_job, want %d", completed, p.Count)
	}
	return enqueueRate, elapsed, nil
}
