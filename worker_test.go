package courier_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
)

// startWorker starts w and stops it when the test ends (if the test did not).
func startWorker(t *testing.T, w *courier.Worker) {
	t.Helper()
	if err := w.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

func TestWorkerHandlesAndAcks(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ids := sendN(t, c, "jobs", 25, nil)

	seen := make(chan string, len(ids))
	w := courier.NewWorker(c, "jobs", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		if d.Queue() != "jobs" || d.Attempt != 1 || d.Lease == "" {
			t.Errorf("delivery %+v", d.Message)
		}
		seen <- d.ID
		return nil
	}), courier.WorkerOptions{Concurrency: 4, MaxBatch: 8, Wait: time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range ids {
		got[<-seen] = true
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, id := range ids {
		if !got[id] {
			t.Errorf("message %s was not handled", id)
		}
	}
	// Stop returned after every message was settled.
	if s := stats(t, c, "jobs"); s.AckedTotal != int64(len(ids)) || s.InFlight != 0 || s.Ready != 0 {
		t.Errorf("after Stop, stats = %+v; want all %d acked", s, len(ids))
	}
}

func TestWorkerOutcomes(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ctx := t.Context()
	if _, err := c.PutQueue(ctx, "out", courier.QueueSettings{MaxAttempts: ptr(2),
		Backoff: &courier.BackoffSettings{Initial: ptr("1h"), Max: ptr("2h")}}); err != nil {
		t.Fatal(err)
	}
	handled := make(chan string, 10)
	mux := courier.NewMux()
	mux.HandleFunc("ok", func(ctx context.Context, d *courier.Delivery) error { return nil })
	mux.HandleFunc("later", func(ctx context.Context, d *courier.Delivery) error {
		return courier.RetryAfter(time.Hour, errors.New("come back later"))
	})
	mux.HandleFunc("fail", func(ctx context.Context, d *courier.Delivery) error { return errors.New("it broke") })
	mux.HandleFunc("poison", func(ctx context.Context, d *courier.Delivery) error {
		return fmt.Errorf("cannot parse: %w", courier.ErrTerminate)
	})
	mux.HandleFunc("bad", func(ctx context.Context, d *courier.Delivery) error { return courier.Terminate("no such customer") })
	mux.HandleFunc("panic", func(ctx context.Context, d *courier.Delivery) error { panic("boom") })
	mux.Use(func(next courier.Handler) courier.Handler {
		return courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
			defer func() { handled <- d.Type() }()
			return next.HandleDelivery(ctx, d)
		})
	})
	types := []string{"ok", "later", "fail", "poison", "bad", "panic", "unknown"}
	for _, typ := range types {
		sendN(t, c, "out", 1, map[string]string{courier.HeaderType: typ})
	}
	w := courier.NewWorker(c, "out", mux, courier.WorkerOptions{Wait: time.Second})
	startWorker(t, w)
	for range types {
		<-handled
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// ok: acked. later, fail, panic, unknown: handed back for an hour (first
	// attempt of two). poison, bad: dead-lettered at once.
	if s := stats(t, c, "out"); s.AckedTotal != 1 || s.Delayed != 4 || s.Dead != 2 || s.InFlight != 0 {
		t.Errorf("stats = %+v; want 1 acked, 4 delayed, 2 dead", s)
	}
	dead, err := c.Receive(ctx, "out.dead", courier.ReceiveRequest{Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, m := range dead {
		reasons[m.Headers[courier.HeaderType]] = m.Headers["courier-error"] + " / " + m.Headers["courier-dead-reason"]
	}
	want := map[string]string{"poison": "cannot parse: courier: terminate / terminated", "bad": "no such customer / terminated"}
	if fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("dead letters: %v, want %v", reasons, want)
	}
}

// TestWorkerPanicCarriesStack checks that a panic becomes a nack whose error
// holds the panic value and the stack, cut to the server's limit.
func TestWorkerPanicCarriesStack(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ctx := t.Context()
	if _, err := c.PutQueue(ctx, "p", courier.QueueSettings{MaxAttempts: ptr(1)}); err != nil {
		t.Fatal(err)
	}
	sendN(t, c, "p", 1, nil)
	sendN(t, c, "p", 1, map[string]string{"big": "1"})
	done := make(chan struct{}, 2)
	w := courier.NewWorker(c, "p", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		defer func() { done <- struct{}{} }()
		if d.Headers["big"] != "" {
			panic(strings.Repeat("é", 5000))
		}
		var m map[string]int
		m["x"] = 1 // a nil map: a runtime panic
		return nil
	}), courier.WorkerOptions{Wait: time.Second})
	startWorker(t, w)
	<-done
	<-done
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	dead, err := c.Receive(ctx, "p.dead", courier.ReceiveRequest{Max: 10})
	if err != nil || len(dead) != 2 {
		t.Fatalf("dead letters: %d, %v; want 2", len(dead), err)
	}
	for _, m := range dead {
		e := m.Headers["courier-error"]
		if m.Headers["big"] != "" {
			if len(e) > 4096 || !strings.HasPrefix(e, "panic: éé") || !strings.HasSuffix(e, "é") {
				t.Errorf("error of a long panic: %d bytes, %.40q…%q", len(e), e, e[max(0, len(e)-10):])
			}
			continue
		}
		if !strings.HasPrefix(e, "panic: assignment to entry in nil map") || !strings.Contains(e, "worker_test.go") {
			t.Errorf("error of a panic: %q; want the value and a stack naming this file", e)
		}
	}
}

// TestWorkerExtendsLease runs a handler for several times the visibility
// timeout: the worker keeps the lease, so the message is delivered once and
// its ack works.
func TestWorkerExtendsLease(t *testing.T) {
	t.Parallel()
	_, url := setupURL(t)
	extends := make(chan struct{}, 100)
	c := watchedClient(t, url, func(r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/extend") {
			extends <- struct{}{}
		}
	})
	sendN(t, c, "slow", 1, nil)
	var calls atomic.Int32
	done := make(chan struct{})
	w := courier.NewWorker(c, "slow", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		calls.Add(1)
		// 5 extends, each when a third of the lease is left: about 1.7
		// visibilities, with room for a loaded machine's stalls (a lease of
		// 300ms was lost under -race on two busy cores).
		for range 5 {
			select {
			case <-extends:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		close(done)
		return nil
	}), courier.WorkerOptions{Visibility: 1500 * time.Millisecond, Wait: 100 * time.Millisecond})
	startWorker(t, w)
	<-done
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := stats(t, c, "slow"); calls.Load() != 1 || s.AckedTotal != 1 || s.InFlight != 0 {
		t.Errorf("handler called %d times, stats %+v; want once, acked", calls.Load(), s)
	}
}

// TestWorkerLeaseLost: when the lease is lost (here another client hands
// the message back), the next extend cancels the handler's context with
// ErrLeaseExpired, and the worker settles nothing.
func TestWorkerLeaseLost(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	sendN(t, c, "lost", 1, nil)
	cause := make(chan error, 1)
	w := courier.NewWorker(c, "lost", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		if _, err := c.Nack(ctx, "lost", courier.NackRequest{Lease: d.Lease, Delay: "1h"}); err != nil {
			t.Errorf("Nack: %v", err)
		}
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return ctx.Err()
	}), courier.WorkerOptions{Visibility: time.Second, Wait: 100 * time.Millisecond})
	// A second's lease: the nack must land while the lease holds (a loaded
	// machine made 60ms too short), and the keeper's first extension, a third
	// of the way in, finds it gone.
	startWorker(t, w)
	if err := <-cause; !errors.Is(err, courier.ErrLeaseExpired) {
		t.Errorf("cause = %v, want ErrLeaseExpired", err)
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := stats(t, c, "lost"); s.Delayed != 1 || s.AckedTotal != 0 || s.InFlight != 0 {
		t.Errorf("stats = %+v; want the message delayed by the other client's nack only", s)
	}
}

// TestWorkerStopWaits: Stop lets a running handler finish and settles its
// message before it returns.
func TestWorkerStopWaits(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	sendN(t, c, "graceful", 1, nil)
	started, finish := make(chan struct{}), make(chan struct{})
	w := courier.NewWorker(c, "graceful", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		close(started)
		<-finish
		return ctx.Err() // nil: Stop does not cancel a handler before its deadline
	}), courier.WorkerOptions{Wait: time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	<-started
	stopped := make(chan error)
	go func() { stopped <- w.Stop(t.Context()) }()
	close(finish)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if s := stats(t, c, "graceful"); s.AckedTotal != 1 || s.InFlight != 0 {
		t.Errorf("stats after Stop = %+v; want acked", s)
	}
	// Idempotent, and final.
	if err := w.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := w.Start(); !errors.Is(err, courier.ErrWorkerStopped) {
		t.Errorf("Start after Stop: %v, want ErrWorkerStopped", err)
	}
}

// TestWorkerStopDeadline: at Stop's deadline the handlers' contexts are
// cancelled (cause ErrWorkerStopped) and their messages released.
func TestWorkerStopDeadline(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	sendN(t, c, "deadline", 3, nil)
	started := make(chan struct{}, 3)
	causes := make(chan error, 3)
	w := courier.NewWorker(c, "deadline", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		started <- struct{}{}
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return ctx.Err()
	}), courier.WorkerOptions{Wait: time.Second, ReleaseDelay: time.Hour})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		<-started
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := w.Stop(ctx); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "released 3 messages") {
		t.Errorf("Stop past its deadline = %v; want context.Canceled, 3 released", err)
	}
	for range 3 {
		if err := <-causes; !errors.Is(err, courier.ErrWorkerStopped) {
			t.Errorf("cause = %v, want ErrWorkerStopped", err)
		}
	}
	if s := stats(t, c, "deadline"); s.Delayed != 3 || s.InFlight != 0 || s.AckedTotal != 0 {
		t.Errorf("stats = %+v; want 3 released for ReleaseDelay", s)
	}
}

func TestWorkerStopBeforeStart(t *testing.T) {
	t.Parallel()
	c := courier.NewClient("http://127.0.0.1:1")
	w := courier.NewWorker(c, "q", courier.HandlerFunc(func(context.Context, *courier.Delivery) error { return nil }), courier.WorkerOptions{})
	if err := w.Stop(t.Context()); err != nil {
		t.Errorf("Stop of a worker never started: %v", err)
	}
	if err := w.Start(); !errors.Is(err, courier.ErrWorkerStopped) {
		t.Errorf("Start after Stop: %v", err)
	}
	if err := w.Run(t.Context()); !errors.Is(err, courier.ErrWorkerStopped) {
		t.Errorf("Run after Stop: %v", err)
	}
}

func TestWorkerConcurrencyLimit(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	const limit, n = 3, 12
	sendN(t, c, "limit", n, nil)
	var running, peak atomic.Int32
	started := make(chan struct{}, n)
	gate := make(chan struct{})
	w := courier.NewWorker(c, "limit", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		r := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); r > p && !peak.CompareAndSwap(p, r); p = peak.Load() {
		}
		started <- struct{}{}
		<-gate
		return nil
	}), courier.WorkerOptions{Concurrency: limit, MaxBatch: 100, Wait: time.Second})
	startWorker(t, w)
	for range limit {
		<-started
	}
	close(gate)
	for range n - limit {
		<-started
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != limit {
		t.Errorf("at most %d handlers ran at once, want %d", p, limit)
	}
	if s := stats(t, c, "limit"); s.AckedTotal != n {
		t.Errorf("stats = %+v, want %d acked", s, n)
	}
}

// TestWorkerRun: Run stops gracefully when its context ends, and returns
// the error of a receive that cannot succeed.
func TestWorkerRun(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	sendN(t, c, "run", 1, nil)
	ctx, cancel := context.WithCancel(t.Context())
	type key struct{}
	ctx = context.WithValue(ctx, key{}, "v")
	w := courier.NewWorker(c, "run", courier.HandlerFunc(func(hctx context.Context, d *courier.Delivery) error {
		if hctx.Value(key{}) != "v" {
			t.Error("the handler's context does not carry Run's values")
		}
		cancel()
		return nil
	}), courier.WorkerOptions{Wait: time.Second})
	if err := w.Run(ctx); err != nil {
		t.Errorf("Run = %v, want nil after a clean stop", err)
	}
	if s := stats(t, c, "run"); s.AckedTotal != 1 {
		t.Errorf("stats = %+v, want acked", s)
	}

	bad := courier.NewWorker(c, "no spaces", courier.HandlerFunc(func(context.Context, *courier.Delivery) error { return nil }),
		courier.WorkerOptions{})
	if err := bad.Run(t.Context()); !errors.Is(err, courier.ErrInvalidArgument) {
		t.Errorf("Run on an invalid queue name = %v, want ErrInvalidArgument", err)
	}
}

// TestWorkerHandleJSON: typed arguments decoded from the body; a body that
// does not decode dead-letters the message at once.
func TestWorkerHandleJSON(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ctx := t.Context()
	type email struct {
		To string `json:"to"`
	}
	var mu sync.Mutex
	var got []string
	done := make(chan struct{}, 2)
	h := courier.HandleJSON(func(ctx context.Context, e email) (struct{}, error) {
		mu.Lock()
		got = append(got, e.To)
		mu.Unlock()
		return struct{}{}, nil
	})
	w := courier.NewWorker(c, "mail", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		defer func() { done <- struct{}{} }()
		return h.HandleDelivery(ctx, d)
	}), courier.WorkerOptions{Wait: time.Second})
	if _, err := c.Send(ctx, "mail", courier.NewMessage{Body: json.RawMessage(`{"to": "ada@example.com"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, "mail", courier.NewMessage{Body: json.RawMessage(`["not", "an", "email"]`)}); err != nil {
		t.Fatal(err)
	}
	startWorker(t, w)
	<-done
	<-done
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "ada@example.com" {
		t.Errorf("handled %q", got)
	}
	if s := stats(t, c, "mail"); s.AckedTotal != 1 || s.Dead != 1 {
		t.Errorf("stats = %+v; want 1 acked, 1 dead", s)
	}
	dead, err := c.Receive(ctx, "mail.dead", courier.ReceiveRequest{})
	if err != nil || len(dead) != 1 || !strings.HasPrefix(dead[0].Headers["courier-error"], "decode body of message") {
		t.Errorf("dead letter: %+v, %v", dead, err)
	}
}
