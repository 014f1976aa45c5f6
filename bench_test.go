package courier_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
)

// benchServer starts a server on a fresh data directory for a benchmark.
func benchServer(b *testing.B) *courier.Client {
	b.Helper()
	s, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Stop(context.Background()) })
	c := courier.NewClient(s.URL())
	b.Cleanup(c.CloseIdleConnections)
	return c
}

// BenchmarkTaskRoundTrip measures the latency of a task's round trip at a
// fixed rate of 500 tasks/s: the requester submits, a Worker takes the task
// and completes it with a result, and the requester's Await returns. The
// load is open-loop: submits are scheduled on a clock, each latency counts
// from its scheduled time (so a stall is not hidden by sending less), and
// each task has its own requester goroutine. b.N counts tasks; p50-ms and
// p99-ms are the latencies' percentiles.
//
//	go test -run '^$' -bench TaskRoundTrip -benchtime 5000x .
func BenchmarkTaskRoundTrip(b *testing.B) {
	const rate = 500 // tasks/s
	c := benchServer(b)
	ctx := context.Background()
	w := courier.NewWorker(c, "rt", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		return d.SetResult(json.RawMessage(`{"ok":true}`))
	}), courier.WorkerOptions{Concurrency: 64})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop(ctx)
	body := json.RawMessage(`{"n":1}`)
	// One task before the clock starts: creates the queue, warms connections.
	if f, err := c.Submit(ctx, "rt", courier.SubmitTask{NewMessage: courier.NewMessage{Body: body}}); err != nil {
		b.Fatal(err)
	} else if _, err := f.Await(ctx); err != nil {
		b.Fatal(err)
	}

	interval := time.Second / rate
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	tick := time.NewTicker(interval)
	for i := range b.N {
		scheduled := start.Add(time.Duration(i) * interval)
		if i > 0 {
			<-tick.C
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := c.Submit(ctx, "rt", courier.SubmitTask{NewMessage: courier.NewMessage{Body: body}})
			if err != nil {
				b.Error(err)
				return
			}
			t, err := f.Await(ctx)
			if err != nil || t.State != courier.TaskSucceeded {
				b.Errorf("Await = %+v, %v", t, err)
				return
			}
			lat[i] = time.Since(scheduled)
		}()
	}
	tick.Stop()
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
}

// BenchmarkBatchedThroughput measures work items completed end to end per
// second with the SDK's batching: a Producer sends them (batched sends), a
// Worker receives them in batches, runs a trivial handler on each, and acks
// them in batches. b.N counts items; the clock stops when the worker has
// stopped, so every item is acked (durably) within the time measured.
//
// These are messages, not task objects: the API submits tasks one per
// request, so task records do not batch; a worker's batched acks do.
//
//	go test -run '^$' -bench BatchedThroughput -benchtime 200000x .
func BenchmarkBatchedThroughput(b *testing.B) {
	c := benchServer(b)
	ctx := context.Background()
	if _, err := c.PutQueue(ctx, "tp", courier.QueueSettings{}); err != nil {
		b.Fatal(err)
	}
	var handled atomic.Int64
	all := make(chan struct{})
	total := int64(b.N)
	w := courier.NewWorker(c, "tp", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		if handled.Add(1) == total {
			close(all)
		}
		return nil
	}), courier.WorkerOptions{Concurrency: 2000, MaxBatch: 1000, Wait: time.Second})
	p := courier.NewProducer(c, courier.ProducerOptions{BufferSize: 20_000})
	body := json.RawMessage(`{"item":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`)

	b.ResetTimer()
	start := time.Now()
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	pending := make(chan *courier.PendingSend, 20_000)
	go func() {
		defer close(pending)
		for range b.N {
			pending <- p.Send(ctx, "tp", courier.NewMessage{Body: body})
		}
	}()
	for ps := range pending {
		if _, err := ps.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	<-all
	if err := w.Stop(ctx); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if q, err := c.GetQueue(ctx, "tp"); err != nil || q.Stats.AckedTotal != total {
		b.Fatalf("acked %d of %d (%v)", q.Stats.AckedTotal, total, err)
	}
	b.ReportMetric(float64(total)/el.Seconds(), "tasks/s")
}
