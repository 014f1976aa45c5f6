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
	b.Cleanup(server.TuneGCAsServe()) // as courier serve runs
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
	for i := range b.N {
		// Sleep to each send's own time on the schedule, rather than count
		// a ticker's ticks: a tick the runtime drops would shift every later
		// send by a whole interval and charge it to the server.
		scheduled := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(scheduled))
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
// These are plain messages; BenchmarkTaskThroughput does the same with task
// records and outcomes.
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

// BenchmarkTaskThroughput measures tasks completed end to end per second
// with the SDK's batching: a Producer submits them (batch submits: a task
// record and its message each), a Worker takes them in batches and
// completes each with a result (batched acks), and the requester hears
// every outcome from its reply_to queue, received and acked in batches.
// The clock stops when the requester has every outcome. b.N counts tasks.
//
//	go test -run '^$' -bench TaskThroughput -benchtime 200000x .
func BenchmarkTaskThroughput(b *testing.B) {
	c := benchServer(b)
	ctx := context.Background()
	for _, q := range []string{"jobs", "outcomes"} {
		if _, err := c.PutQueue(ctx, q, courier.QueueSettings{}); err != nil {
			b.Fatal(err)
		}
	}
	w := courier.NewWorker(c, "jobs", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		return d.SetResult(json.RawMessage(`{"ok":true}`))
	}), courier.WorkerOptions{Concurrency: 2000, MaxBatch: 1000, Wait: time.Second})
	p := courier.NewProducer(c, courier.ProducerOptions{BufferSize: 20_000})
	body := json.RawMessage(`{"item":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`)

	b.ResetTimer()
	start := time.Now()
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	submitted := make(chan error, 1)
	go func() {
		pending := make(chan *courier.PendingSend, 20_000)
		go func() {
			defer close(pending)
			for range b.N {
				pending <- p.Submit(ctx, "jobs", courier.SubmitTask{NewMessage: courier.NewMessage{Body: body}, ReplyTo: "outcomes"})
			}
		}()
		var err error
		for ps := range pending {
			if _, e := ps.Wait(ctx); e != nil && err == nil {
				err = e
			}
		}
		submitted <- err
	}()
	for heard := 0; heard < b.N; {
		ms, err := c.Receive(ctx, "outcomes", courier.ReceiveRequest{Max: 1000, Wait: "10s"})
		if err != nil || len(ms) == 0 {
			b.Fatalf("outcomes: %d of %d heard; receive: %v", heard, b.N, err)
		}
		leases := make([]string, len(ms))
		for i, m := range ms {
			if m.Headers["courier-task-state"] != "succeeded" {
				b.Fatalf("outcome %s: %v", m.Body, m.Headers)
			}
			leases[i] = m.Lease
		}
		if _, err := c.AckBatch(ctx, "outcomes", leases); err != nil {
			b.Fatal(err)
		}
		heard += len(ms)
	}
	el := time.Since(start)
	b.StopTimer()
	if err := <-submitted; err != nil {
		b.Fatal(err)
	}
	if err := w.Stop(ctx); err != nil {
		b.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "tasks/s")
}
