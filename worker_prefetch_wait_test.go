package courier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier"
)

// stopSoon stops w when the test ends, within a second; the tests check
// their own Stop, this one ends a failed test's worker.
func stopSoon(t *testing.T, w *courier.Worker) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		w.Stop(ctx)
	})
}

// TestWorkerPrefetchedGoFirst: a handler that returns hands its place to
// a prefetched message waiting here, not to a new receive, even when it
// leaves no ack for that receive to carry (which would make it a short
// poll): else the prefetched messages would wait out a long-poll.
func TestWorkerPrefetchedGoFirst(t *testing.T) {
	t.Parallel()
	plain, url := setupURL(t)
	c, asks := askingClient(t, url)
	sendN(t, plain, "q", 5, nil) // bodies 0-4: 0 quick, 1 and 2 held, 3 and 4 prefetched
	holdA, holdB := make(chan struct{}), make(chan struct{})
	defer close(holdB)
	started := make(chan string, 10)
	w := courier.NewWorker(c, "q", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		b := strings.TrimSpace(string(d.Body))
		started <- b
		hold := map[string]chan struct{}{"1": holdA, "2": holdB}[b]
		if hold == nil {
			return nil
		}
		select {
		case <-hold:
		case <-ctx.Done():
		}
		return courier.RetryAfter(time.Hour, errors.New("failed")) // no ack to carry
	}), courier.WorkerOptions{Concurrency: 2, MaxBatch: 10, MaxPrefetch: 2, Wait: 20 * time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	stopSoon(t, w)
	for range 3 {
		<-started
	}
	if a := asks(); len(a) < 2 || a[1] != 3 {
		t.Fatalf("receives asked for %v; want 2, then 3 (one free handler, two prefetched)", a)
	}
	close(holdA)
	select {
	case b := <-started:
		if b != "3" && b != "4" {
			t.Errorf("%s started; want a prefetched message (3 or 4)", b)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("no prefetched message started 5s after a handler returned; asks %v", asks())
	}
}

// TestWorkerTripIgnoresLongPolls: a receive that came back with all it
// asked for after a long-poll's wait is not taken for a round trip, so
// that slow handlers are not prefetched for.
func TestWorkerTripIgnoresLongPolls(t *testing.T) {
	t.Parallel()
	plain, url := setupURL(t)
	c, asks := askingClient(t, url)
	hold := make(chan struct{})
	defer close(hold)
	var count atomic.Int32
	done := make(chan struct{}, 10)
	w := courier.NewWorker(c, "q", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		if count.Add(1) == 1 {
			select {
			case <-hold:
			case <-ctx.Done():
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
		done <- struct{}{}
		return nil
	}), courier.WorkerOptions{Concurrency: 2, MaxBatch: 10, MaxPrefetch: 2, Wait: 5 * time.Second})
	startWorker(t, w)
	sendN(t, plain, "q", 1, nil)
	for count.Load() < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(700 * time.Millisecond) // the receive for the free handler long-polls
	sendN(t, plain, "q", 3, nil)
	for range 3 {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("three messages not handled; asks %v", asks())
		}
	}
	if trip := courier.PrefetchTrip(w); trip > 100*time.Millisecond {
		t.Errorf("round trip estimate %v after a long-poll; want none, or a round trip", trip)
	}
	for i, n := range asks() {
		if n > 2 {
			t.Errorf("receive %d asked for %d: prefetch for 50ms handlers (asks %v)", i, n, asks())
		}
	}
}

// TestWorkerSkipsLostPrefetched: a prefetched message whose task is
// cancelled while it waits for a handler is not handled.
func TestWorkerSkipsLostPrefetched(t *testing.T) {
	t.Parallel()
	plain, url := setupURL(t)
	c, asks := askingClient(t, url)
	var ids []string
	for i := range 5 {
		f, err := plain.Submit(t.Context(), "q", courier.SubmitTask{NewMessage: courier.NewMessage{Body: []byte(strings.Repeat("1", i+1))}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f.ID())
	}
	hold := make(chan struct{})
	started := make(chan string, 10)
	w := courier.NewWorker(c, "q", quickThenHeld(hold, func(d *courier.Delivery) { started <- string(d.Body) }),
		courier.WorkerOptions{Concurrency: 2, MaxBatch: 10, MaxPrefetch: 2, Wait: time.Second, Visibility: 1500 * time.Millisecond})
	startWorker(t, w)
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release) // runs before the worker's stop: a failure must not leave handlers held
	for range 3 {
		<-started
	}
	if a := asks(); len(a) < 2 || a[1] != 3 {
		t.Fatalf("receives asked for %v; want 2, then 3", a)
	}
	if _, err := plain.CancelTask(t.Context(), ids[3]); err != nil { // "1111", prefetched
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // an extend of the waiting message, due at 0.5s, hears of it
	release()
	// The two held ones return: "11111" runs, "1111" must not.
	select {
	case b := <-started:
		if b != "11111" {
			t.Errorf("%q started; want 11111 (1111 was cancelled while it waited)", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the other prefetched message did not run")
	}
	select {
	case b := <-started:
		t.Errorf("%q started too; want only 11111", b)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestWorkerStopBoundsPrefetchedReleases: handing back prefetched messages
// at Stop is bounded as abandon's releases are, not by the visibility.
func TestWorkerStopBoundsPrefetchedReleases(t *testing.T) {
	t.Parallel()
	plain, url := setupURL(t)
	var hangNacks atomic.Bool
	c := watchedClient(t, url, func(r *http.Request) {
		if hangNacks.Load() && strings.HasSuffix(r.URL.Path, "/nack") {
			<-r.Context().Done()
		}
	})
	sendN(t, plain, "q", 5, nil)
	started := make(chan struct{}, 5)
	w := courier.NewWorker(c, "q", quickThenHeld(nil, func(*courier.Delivery) { started <- struct{}{} }),
		courier.WorkerOptions{Concurrency: 2, MaxBatch: 10, MaxPrefetch: 2, Wait: time.Second, Visibility: 20 * time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	stopSoon(t, w)
	for range 3 {
		<-started
	}
	hangNacks.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := w.Stop(ctx); err == nil {
		t.Error("Stop returned nil with its releases unanswered")
	}
	// abandon's releases take stopGrace (5s) at most, and so do these.
	if took := time.Since(start); took > 12*time.Second {
		t.Errorf("Stop with a 300ms context took %v", took)
	}
}

// TestWorkerStopReleasesPrefetchedOfCarryingReceive: a receive carrying
// acks that Stop lets finish, and that brings messages beyond the free
// handlers, hands them all back, and gives back only the tokens it held.
func TestWorkerStopReleasesPrefetchedOfCarryingReceive(t *testing.T) {
	t.Parallel()
	var (
		plain   atomic.Int64
		carried = make(chan int, 1)
		nacks   sync.Map
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/receive") && bytes.Contains(body, []byte(`"ack":`)):
			var req courier.ReceiveRequest
			json.Unmarshal(body, &req)
			select {
			case carried <- req.Max:
			default:
			}
			select { // answered after Stop began
			case <-time.After(200 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, `{"messages":[`+fakeMessage("m3")+`,`+fakeMessage("m4")+`,`+fakeMessage("m5")+`],"ack":{"acked":1,"failed":[]}}`)
		case strings.HasSuffix(r.URL.Path, "/receive"):
			if plain.Add(1) == 1 {
				io.WriteString(w, `{"messages":[`+fakeMessage("m1")+`,`+fakeMessage("m2")+`]}`)
				return
			}
			<-r.Context().Done()
		case strings.HasSuffix(r.URL.Path, "/nack"):
			var req courier.NackRequest
			json.Unmarshal(body, &req)
			nacks.Store(req.Lease, true)
			io.WriteString(w, `{}`)
		default:
			io.WriteString(w, `{}`)
		}
	}))
	defer srv.Close()
	c := courier.NewClient(srv.URL)
	defer c.CloseIdleConnections()
	var handled sync.Map
	w := courier.NewWorker(c, "q", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		handled.Store(d.ID, true)
		if d.ID == "m1" {
			return nil // quick: its ack waits for the next receive
		}
		<-ctx.Done()
		return ctx.Err()
	}), courier.WorkerOptions{Concurrency: 2, MaxBatch: 10, MaxPrefetch: 2, Wait: time.Second, ReleaseDelay: time.Hour})
	courier.SetAckHold(w, time.Hour, time.Millisecond)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case max := <-carried:
		if max != 3 {
			t.Fatalf("the carrying receive asked for %d, want 3 (one free handler, two prefetched)", max)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no carrying receive")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- w.Stop(ctx) }()
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("Stop hung")
	}
	for _, id := range []string{"m3", "m4", "m5"} {
		if _, ok := handled.Load(id); ok {
			t.Errorf("%s handled after Stop began", id)
		}
		if _, ok := nacks.Load("L-" + id); !ok {
			t.Errorf("%s not handed back", id)
		}
	}
	if p := courier.PrefetchPending(w); p != 0 {
		t.Errorf("%d prefetched messages still counted pending after Stop", p)
	}
}

// TestWorkerStopBoundsReleasesAtOnce: a stopping worker hands back more
// messages than releasesAtOnce (here, those of handlers still running at
// Stop's deadline; prefetched ones and a receive's go by the same helper);
// every one is handed back, with at most that many releases out at once.
func TestWorkerStopBoundsReleasesAtOnce(t *testing.T) {
	t.Parallel()
	const n, atOnce = 60, 32 // atOnce: releasesAtOnce (worker_settle.go)
	plain, url := setupURL(t)
	var out, most, nacks atomic.Int32
	c := watchedClient(t, url, func(r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/nack") {
			return
		}
		nacks.Add(1)
		now := out.Add(1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		time.Sleep(20 * time.Millisecond) // so that releases not bounded would overlap
		out.Add(-1)
	})
	sendN(t, plain, "q", n, nil)
	started := make(chan struct{}, n)
	w := courier.NewWorker(c, "q", courier.HandlerFunc(func(ctx context.Context, _ *courier.Delivery) error {
		started <- struct{}{}
		<-ctx.Done() // until Stop gives up waiting
		return ctx.Err()
	}), courier.WorkerOptions{Concurrency: n, MaxBatch: 100, Wait: time.Second, Visibility: 20 * time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	stopSoon(t, w)
	for range n {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("not every handler started")
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := w.Stop(ctx); err == nil {
		t.Error("Stop returned nil with its handlers still running at its deadline")
	}
	if got := nacks.Load(); got != n {
		t.Errorf("%d releases, want %d (every message)", got, n)
	}
	if m := most.Load(); m > atOnce || m < 2 {
		t.Errorf("at most %d releases were out at once, want 2 to %d", m, atOnce)
	}
	q, err := plain.GetQueue(t.Context(), "q")
	if err != nil {
		t.Fatal(err)
	}
	if s := q.Stats; s.InFlight != 0 || s.Ready+s.Delayed != n {
		t.Errorf("after Stop: %+v; want none in flight, %d back in the queue", s, n)
	}
}
