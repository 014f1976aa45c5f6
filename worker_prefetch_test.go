package courier_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier"
)

// askingClient is a client of url that records how many messages each
// receive asked for.
func askingClient(t *testing.T, url string) (*courier.Client, func() []int) {
	t.Helper()
	var (
		mu   sync.Mutex
		asks []int
	)
	c := watchedClient(t, url, func(r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/receive") || r.GetBody == nil {
			return
		}
		body, err := r.GetBody()
		if err != nil {
			t.Errorf("GetBody: %v", err)
			return
		}
		var req courier.ReceiveRequest
		b, _ := io.ReadAll(body)
		if err := json.Unmarshal(b, &req); err != nil {
			t.Errorf("a receive: %s: %v", b, err)
		}
		mu.Lock()
		asks = append(asks, req.Max)
		mu.Unlock()
	})
	return c, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), asks...)
	}
}

// burnDown works n messages of a fresh queue off with quick handlers of
// the given options, checking that each is handled once, by at most
// Concurrency handlers at a time, and acked; it returns what each receive
// asked for.
func burnDown(t *testing.T, n int, opts courier.WorkerOptions) []int {
	t.Helper()
	plain, url := setupURL(t)
	c, asks := askingClient(t, url)
	sendN(t, plain, "q", n, nil)
	var (
		seen          sync.Map
		running, peak atomic.Int32
		handled       atomic.Int32
	)
	all := make(chan struct{})
	w := courier.NewWorker(c, "q", courier.HandlerFunc(func(_ context.Context, d *courier.Delivery) error {
		r := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); r > p && !peak.CompareAndSwap(p, r); p = peak.Load() {
		}
		if _, dup := seen.LoadOrStore(d.ID, true); dup {
			t.Errorf("%s handled twice", d.ID)
		}
		if handled.Add(1) == int32(n) {
			close(all)
		}
		return nil
	}), opts)
	startWorker(t, w)
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatalf("%d of %d handled after 30s", handled.Load(), n)
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p > int32(opts.Concurrency) {
		t.Errorf("%d handlers ran at once, Concurrency %d", p, opts.Concurrency)
	}
	if s := stats(t, plain, "q"); s.AckedTotal != int64(n) || s.InFlight != 0 {
		t.Errorf("stats = %+v, want %d acked, none in flight", s, n)
	}
	if p := courier.PrefetchPending(w); p != 0 {
		t.Errorf("%d prefetched messages still counted pending after Stop", p)
	}
	return asks()
}

// TestWorkerPrefetchesForQuickHandlers: with handlers far quicker than a
// round trip, receives ask for more than the handlers free, up to
// Concurrency and MaxPrefetch together, and every message is still handled
// once, by Concurrency handlers at most. MaxPrefetch is three times
// Concurrency here, and some receive must ask for more than twice
// Concurrency: what a bound of Concurrency would never allow.
func TestWorkerPrefetchesForQuickHandlers(t *testing.T) {
	t.Parallel()
	const conc, most = 10, 30
	asks := burnDown(t, 600, courier.WorkerOptions{Concurrency: conc, MaxBatch: 100, MaxPrefetch: most, Wait: time.Second})
	beyond := 0
	for _, a := range asks {
		if a > conc+most {
			t.Errorf("a receive asked for %d, over Concurrency %d and MaxPrefetch %d", a, conc, most)
		}
		if a > 2*conc {
			beyond++
		}
	}
	if beyond == 0 {
		t.Errorf("no receive asked for more than twice Concurrency %d (asks: %v)", conc, asks)
	}
}

// TestWorkerNoPrefetch: with NoPrefetch no receive asks for more messages
// than there are handlers.
func TestWorkerNoPrefetch(t *testing.T) {
	t.Parallel()
	const conc = 10
	asks := burnDown(t, 300, courier.WorkerOptions{Concurrency: conc, MaxBatch: 100, Wait: time.Second, NoPrefetch: true})
	for _, a := range asks {
		if a > conc {
			t.Errorf("NoPrefetch: a receive asked for %d, over Concurrency %d", a, conc)
		}
	}
}

// prefetchedWorker starts a worker of two handlers on a queue of five
// messages. The first handler returns at once, the others wait for hold
// (or their context): so the second receive goes out with one handler free
// and one busy, and, the first having been quick, asks for three: one
// for the free handler and two prefetched (MaxPrefetch 2), which wait. It
// returns once three handlers have started.
func prefetchedWorker(t *testing.T, opts courier.WorkerOptions, hold <-chan struct{}) (w *courier.Worker, plain *courier.Client, asks func() []int, handled *sync.Map) {
	t.Helper()
	plain, url := setupURL(t)
	c, asks := askingClient(t, url)
	sendN(t, plain, "q", 5, nil)
	handled = new(sync.Map)
	started := make(chan struct{}, 5)
	opts.Concurrency, opts.MaxBatch, opts.MaxPrefetch, opts.Wait = 2, 10, 2, time.Second
	w = courier.NewWorker(c, "q", quickThenHeld(hold, func(d *courier.Delivery) {
		if _, dup := handled.LoadOrStore(d.ID, d.Attempt); dup {
			t.Errorf("%s handled twice", d.ID)
		}
		started <- struct{}{}
	}), opts)
	if err := w.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	stopSoon(t, w)
	for range 3 {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatalf("three handlers did not start (asks: %v)", asks())
		}
	}
	if a := asks(); len(a) < 2 || a[0] != 2 || a[1] != 3 {
		t.Fatalf("receives asked for %v; want 2, then 3 (one free handler, two prefetched)", a)
	}
	return w, plain, asks, handled
}

// quickThenHeld is a handler that calls onStart, then returns at once
// the first time, and the other times when hold is closed (or its
// context ends).
func quickThenHeld(hold <-chan struct{}, onStart func(*courier.Delivery)) courier.HandlerFunc {
	var count atomic.Int32
	return func(ctx context.Context, d *courier.Delivery) error {
		onStart(d)
		if count.Add(1) == 1 {
			return nil
		}
		select {
		case <-hold:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestWorkerStopReleasesPrefetched: messages prefetched and waiting for a
// handler when Stop begins are handed back unhandled, like the messages a
// stopping worker's receive brings.
func TestWorkerStopReleasesPrefetched(t *testing.T) {
	t.Parallel()
	w, plain, _, handled := prefetchedWorker(t, courier.WorkerOptions{ReleaseDelay: time.Hour}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := w.Stop(ctx); err == nil {
		t.Error("Stop returned nil with two handlers blocked past its deadline")
	}
	n := 0
	handled.Range(func(any, any) bool { n++; return true })
	if n != 3 {
		t.Errorf("%d messages handled; want 3 (the prefetched two never started)", n)
	}
	// The two blocked handlers were released with an hour's delay, their
	// attempts counted; the two prefetched were handed back ready at once,
	// theirs not counted; the first was acked.
	s := stats(t, plain, "q")
	if s.AckedTotal != 1 || s.InFlight != 0 || s.Delayed != 2 || s.Ready != 2 {
		t.Errorf("stats after Stop = %+v; want 1 acked, 2 released (delayed), 2 handed back (ready), none in flight", s)
	}
	res, err := plain.Receive(t.Context(), "q", courier.ReceiveRequest{Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res {
		if _, ok := handled.Load(m.ID); ok || m.Attempt != 1 {
			t.Errorf("ready after Stop: %s, attempt %d, handled %v; want the prefetched ones, attempt 1", m.ID, m.Attempt, ok)
		}
	}
}

// TestWorkerKeepsPrefetchedLeases: a prefetched message that waits for a
// handler longer than its lease keeps it: it runs once, on its first
// attempt, and its ack is taken.
func TestWorkerKeepsPrefetchedLeases(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	var warned warnings
	// A lease long enough that a loaded machine's stalls do not lose it
	// (see TestWorkerExtendsLease), waited out more than twice.
	w, plain, _, handled := prefetchedWorker(t, courier.WorkerOptions{Visibility: 1500 * time.Millisecond,
		Logger: slog.New(&warned)}, hold)
	time.Sleep(3500 * time.Millisecond)
	close(hold)
	deadline := time.Now().Add(10 * time.Second)
	for stats(t, plain, "q").AckedTotal < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := stats(t, plain, "q"); s.AckedTotal != 5 || s.InFlight != 0 || s.Ready != 0 {
		t.Errorf("stats = %+v; want all 5 acked", s)
	}
	handled.Range(func(id, attempt any) bool {
		if attempt.(int) != 1 {
			t.Errorf("%v handled on attempt %v; want its first (its lease kept)", id, attempt)
		}
		return true
	})
	if ws := warned.all(); len(ws) > 0 {
		t.Errorf("warnings: %v", ws)
	}
}
