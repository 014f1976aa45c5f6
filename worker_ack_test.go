package courier_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier"
)

// warnings is a slog handler that keeps the worker's warnings and errors.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }
func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// countingClient is a client of url that counts the ack calls and the
// receives that carried acks, and checks how long those asked to wait.
func countingClient(t *testing.T, url string) (c *courier.Client, acks, carrying *atomic.Int64) {
	t.Helper()
	acks, carrying = new(atomic.Int64), new(atomic.Int64)
	c = watchedClient(t, url, func(r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/ack"):
			acks.Add(1)
		case strings.HasSuffix(r.URL.Path, "/receive"):
			if r.GetBody == nil {
				t.Errorf("a receive's body cannot be read again")
				return
			}
			body, err := r.GetBody()
			if err != nil {
				t.Errorf("GetBody: %v", err)
				return
			}
			b, _ := io.ReadAll(body)
			if bytes.Contains(b, []byte(`"ack":`)) {
				carrying.Add(1)
				// It long-polls, briefly (worker_receive.go, carryWait).
				if want := `"wait":"` + courier.CarryWait.String() + `"`; !bytes.Contains(b, []byte(want)) {
					t.Errorf("a receive carrying acks: %s; want %s", b, want)
				}
			}
		}
	})
	return c, acks, carrying
}

// TestWorkerAcksRideOnReceives: a busy worker's acks go out with its next
// receives, and each lands once, with its task's result.
func TestWorkerAcksRideOnReceives(t *testing.T) {
	t.Parallel()
	plain, url := setupURL(t)
	c, acks, carrying := countingClient(t, url)
	const n = 200
	fs := make([]*courier.Future, n)
	for i := range fs {
		fs[i] = submit(t, plain, "ride", fmt.Sprint(i), nil)
	}
	var warn warnings
	w := courier.NewWorker(c, "ride", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		return d.SetResult(d.Body)
	}), courier.WorkerOptions{Concurrency: 8, MaxBatch: 8, Wait: time.Second, Logger: slog.New(&warn)})
	startWorker(t, w)
	for i, f := range fs {
		task, err := f.Await(t.Context())
		if err != nil || task.State != courier.TaskSucceeded || string(task.Result) != fmt.Sprint(i) {
			t.Fatalf("task %d: %+v, %v; want succeeded with result %d", i, task, err, i)
		}
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := stats(t, plain, "ride"); s.AckedTotal != n || s.InFlight != 0 || s.Ready != 0 {
		t.Errorf("stats %+v, want all %d acked once", s, n)
	}
	if carrying.Load() == 0 {
		t.Errorf("no receive carried acks (%d ack calls)", acks.Load())
	}
	if ws := warn.all(); len(ws) > 0 {
		t.Errorf("warnings: %q", ws)
	}
	t.Logf("%d receives carried acks; %d ack calls", carrying.Load(), acks.Load())
}

// TestWorkerCarriedAckTooLarge: a result over the server's limit makes the
// receive carrying it fail; the worker acks the others and terminates that
// task alone.
func TestWorkerCarriedAckTooLarge(t *testing.T) {
	t.Parallel()
	plain, url := setupURL(t)
	c, _, carrying := countingClient(t, url)
	fs := make([]*courier.Future, 6)
	for i := range fs {
		fs[i] = submit(t, plain, "big", fmt.Sprint(i), nil)
	}
	// The handlers finish together, so their acks wait together for a receive.
	var started sync.WaitGroup
	started.Add(len(fs))
	w := courier.NewWorker(c, "big", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		var err error
		if string(d.Body) == "3" {
			err = d.SetResult(strings.Repeat("x", 1<<20+1))
		} else {
			err = d.SetResult(d.Body)
		}
		started.Done()
		started.Wait()
		return err
	}), courier.WorkerOptions{Concurrency: len(fs), MaxBatch: len(fs), Wait: time.Second})
	startWorker(t, w)
	for i, f := range fs {
		task, err := f.Await(t.Context())
		switch {
		case err != nil:
			t.Fatalf("task %d: %v", i, err)
		case i == 3 && (task.State != courier.TaskFailed || !strings.Contains(task.Error, "too large")):
			t.Errorf("task 3: %+v, want failed as too large", task)
		case i != 3 && (task.State != courier.TaskSucceeded || string(task.Result) != fmt.Sprint(i)):
			t.Errorf("task %d: %+v, want succeeded with its result", i, task)
		}
	}
	if carrying.Load() == 0 {
		t.Errorf("no receive carried acks")
	}
}

// fakeBroker answers a worker's first receive with one message, holds
// the others until the client leaves, and hands receives that carry acks
// to onCarried.
type fakeBroker struct {
	served    atomic.Int64
	onCarried func(w http.ResponseWriter, r *http.Request)
}

func fakeMessage(id string) string {
	return fmt.Sprintf(`{"id":%q,"body":1,"headers":{},"priority":0,"group":"","attempt":1,`+
		`"sent_at":"2026-01-01T00:00:00Z","lease":"L-%s","lease_expires_at":"2099-01-01T00:00:00Z"}`, id, id)
}

func (f *fakeBroker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/receive") && bytes.Contains(body, []byte(`"ack":`)):
		f.onCarried(w, r)
	case strings.HasSuffix(r.URL.Path, "/receive"):
		if f.served.Add(1) == 1 {
			io.WriteString(w, `{"messages":[`+fakeMessage("m1")+`]}`)
			return
		}
		<-r.Context().Done()
	case strings.HasSuffix(r.URL.Path, "/ack"):
		io.WriteString(w, `{"acked":1}`)
	default:
		io.WriteString(w, `{}`)
	}
}

// hungCarrying starts a worker of one handler on a fake broker that never
// answers a receive carrying acks, and returns once such a receive is out,
// with the count of the ack calls made.
func hungCarrying(t *testing.T) (*courier.Worker, *atomic.Int64) {
	t.Helper()
	carried, hang := make(chan struct{}, 1), make(chan struct{})
	acks := new(atomic.Int64)
	fb := &fakeBroker{onCarried: func(w http.ResponseWriter, r *http.Request) {
		select {
		case carried <- struct{}{}:
		default:
		}
		select { // a server that does not answer
		case <-r.Context().Done():
		case <-hang: // the test is over
		}
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/ack") {
			acks.Add(1)
		}
		fb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) })
	c := courier.NewClient(srv.URL)
	t.Cleanup(c.CloseIdleConnections)
	w := courier.NewWorker(c, "q", courier.HandlerFunc(func(context.Context, *courier.Delivery) error { return nil }),
		courier.WorkerOptions{Concurrency: 1, MaxBatch: 1, Wait: time.Second, Visibility: 10 * time.Second})
	courier.SetAckHold(w, time.Hour, time.Millisecond) // the ack waits for a receive
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	<-carried
	return w, acks
}

// TestWorkerStopCutsCarryingReceive: Stop's context bounds it even while a
// receive carrying acks hangs on the server; the acks go to the ackers.
func TestWorkerStopCutsCarryingReceive(t *testing.T) {
	t.Parallel()
	w, acks := hungCarrying(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := w.Stop(ctx)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Stop with a 500ms context took %v (%v)", took, err)
	}
	if acks.Load() != 1 {
		t.Errorf("%d ack calls after the carrying receive was cut; want 1 (the ackers resend it)", acks.Load())
	}
}

// TestWorkerStopBoundsCarryingReceive: Stop without a deadline lets a
// receive carrying acks finish, but not forever: on a server that does
// not answer it, Stop cuts it after carryStopWait and the acks go to the
// ackers.
func TestWorkerStopBoundsCarryingReceive(t *testing.T) {
	t.Parallel()
	w, acks := hungCarrying(t)
	stopped := make(chan error, 1)
	go func() { stopped <- w.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop without a deadline still waiting after 5s on a carrying receive the server never answers")
	}
	if acks.Load() != 1 {
		t.Errorf("%d ack calls after the carrying receive was cut; want 1 (the ackers send its ack)", acks.Load())
	}
}

// TestWorkerStopReleasesLateMessages: the messages a receive carrying acks
// brings after Stop began are handed back, not handled: a stopping worker
// takes no new messages. They are released ("release": ready at once, the
// attempt not counted); a server from before that field refuses it (400),
// and then they are nacked to come again after ReleaseDelay.
func TestWorkerStopReleasesLateMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		oldServer bool
		want      []courier.NackRequest // the nacks of m2's lease, in order
	}{
		{"release", false, []courier.NackRequest{{Lease: "L-m2", Release: true}}},
		{"server without release", true, []courier.NackRequest{{Lease: "L-m2", Release: true},
			{Lease: "L-m2", Delay: "3s", Error: "released by a stopping worker"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := stopWithLateMessage(t, tc.oldServer)
			if !slices.Equal(got, tc.want) {
				t.Errorf("nacks %+v; want %+v", got, tc.want)
			}
		})
	}
}

// stopWithLateMessage stops a worker while its carrying receive is out,
// answered after Stop began with message m2, and returns the nacks sent.
// oldServer refuses nacks with "release" as unknown, as older servers do.
func stopWithLateMessage(t *testing.T, oldServer bool) []courier.NackRequest {
	carried := make(chan struct{}, 1)
	var nacks nackLog
	fb := &fakeBroker{onCarried: func(w http.ResponseWriter, r *http.Request) {
		select {
		case carried <- struct{}{}:
		default:
		}
		select { // answered after Stop began
		case <-time.After(200 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, `{"messages":[`+fakeMessage("m2")+`],"ack":{"acked":1,"failed":[]}}`)
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/nack") {
			b, _ := io.ReadAll(r.Body)
			req := nacks.add(t, b)
			w.Header().Set("Content-Type", "application/json")
			if oldServer && req.Release {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, releaseUnknown)
				return
			}
			io.WriteString(w, `{}`)
			return
		}
		fb.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := courier.NewClient(srv.URL)
	defer c.CloseIdleConnections()
	var handled sync.Map
	w := courier.NewWorker(c, "q", courier.HandlerFunc(func(_ context.Context, d *courier.Delivery) error {
		handled.Store(d.ID, true)
		return nil
	}), courier.WorkerOptions{Concurrency: 1, MaxBatch: 1, Wait: time.Second, ReleaseDelay: 3 * time.Second})
	courier.SetAckHold(w, time.Hour, time.Millisecond) // the ack waits for a receive
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	<-carried
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := handled.Load("m2"); ok {
		t.Error("m2, received after Stop began, was handled")
	}
	return nacks.all()
}

// TestWorkerServerWithoutCarriedAcks: a server that refuses receives
// carrying acks (one older than the field answers 400) costs one refused
// receive; the worker then sends its acks on their own and goes on.
func TestWorkerServerWithoutCarriedAcks(t *testing.T) {
	t.Parallel()
	var refused, acks, served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/receive") && bytes.Contains(body, []byte(`"ack":`)):
			refused.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":"invalid_argument","message":"json: unknown field \"ack\""}}`)
		case strings.HasSuffix(r.URL.Path, "/receive"):
			if n := served.Add(1); n <= 5 {
				io.WriteString(w, `{"messages":[`+fakeMessage(fmt.Sprint("m", n))+`]}`)
				return
			}
			select {
			case <-r.Context().Done():
			case <-time.After(100 * time.Millisecond):
				io.WriteString(w, `{"messages":[]}`)
			}
		case strings.HasSuffix(r.URL.Path, "/ack"):
			n := bytes.Count(body, []byte(`"L-m`))
			acks.Add(int64(n))
			fmt.Fprintf(w, `{"acked":%d}`, n)
		}
	}))
	defer srv.Close()
	c := courier.NewClient(srv.URL)
	defer c.CloseIdleConnections()
	handled := make(chan string, 5)
	var warn warnings
	w := courier.NewWorker(c, "q", courier.HandlerFunc(func(_ context.Context, d *courier.Delivery) error {
		handled <- d.ID
		return nil
	}), courier.WorkerOptions{Concurrency: 1, MaxBatch: 1, Wait: time.Second, Logger: slog.New(&warn)})
	startWorker(t, w)
	for range 5 {
		<-handled
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if refused.Load() != 1 || acks.Load() != 5 {
		t.Errorf("%d refused receives, %d leases acked; want 1 and 5", refused.Load(), acks.Load())
	}
	if ws := warn.all(); len(ws) != 1 {
		t.Errorf("warnings %q; want the one saying acks go out on their own", ws)
	}
}

// TestWorkerAcksAtOnceWhenDrained: on a queue the worker has drained, its
// receives are long-polls that carry no ack until the next message comes,
// so an ack does not wait for one: here the hold is an hour (and so is a
// receive's wait for more free handlers, which would otherwise start one
// that carries it), the handler ends after the receives have gone out,
// and each message is still acked while the worker waits for the next.
func TestWorkerAcksAtOnceWhenDrained(t *testing.T) {
	t.Parallel()
	plain, url := setupURL(t)
	c, _, _ := countingClient(t, url)
	w := courier.NewWorker(c, "drained", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		time.Sleep(50 * time.Millisecond) // the worker's receives are long-polling by the time it is done
		return nil
	}), courier.WorkerOptions{Concurrency: 4, Wait: 30 * time.Second})
	courier.SetAckHold(w, time.Hour, time.Hour)
	startWorker(t, w)
	for i := range 3 {
		if _, err := plain.Send(t.Context(), "drained", courier.NewMessage{Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			s := stats(t, plain, "drained")
			if s.AckedTotal == int64(i+1) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %d not acked within 20s (stats %+v): the ack was held for a receive", i, s)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestWorkerCarriesAcksUnderLightLoad: messages that come one at a time,
// each after the last was handled, find the worker's receives
// long-polling; the slot whose receive brought a message waits for its
// handler (park), so the ack rides on that slot's next receive instead of
// going alone. A message or two may still race a parked slot (one comes
// while its handler runs), so a few ack calls are allowed, not one each.
func TestWorkerCarriesAcksUnderLightLoad(t *testing.T) {
	t.Parallel()
	plain, url := setupURL(t)
	c, acks, carrying := countingClient(t, url)
	handled := make(chan struct{}, 1)
	w := courier.NewWorker(c, "light", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		time.Sleep(3 * time.Millisecond) // longer than the receives take to go out again
		handled <- struct{}{}
		return nil
	}), courier.WorkerOptions{Concurrency: 4, Wait: 30 * time.Second})
	startWorker(t, w)
	const n = 20
	for i := range n {
		if _, err := plain.Send(t.Context(), "light", courier.NewMessage{Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		<-handled
		time.Sleep(20 * time.Millisecond) // the next message comes after the worker settled
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := stats(t, plain, "light"); s.AckedTotal != n || s.InFlight != 0 || s.Ready != 0 {
		t.Errorf("stats %+v, want all %d acked once", s, n)
	}
	if acks.Load() > n/4 || carrying.Load() < n-n/4 {
		t.Errorf("%d ack calls, %d receives carrying acks for %d messages; want most acks carried", acks.Load(), carrying.Load(), n)
	}
	t.Logf("%d receives carried acks; %d ack calls", carrying.Load(), acks.Load())
}

// TestWorkerDoesNotParkUnderBacklog: while the queue has a backlog every
// receive comes back with all it asked for, however few that was (the
// handlers are busy), and no slot parks: the worker keeps both receives
// going. Found by a review: a receive asking for fewer than half a batch
// used to park when it came back full.
func TestWorkerDoesNotParkUnderBacklog(t *testing.T) {
	t.Parallel()
	plain, url := setupURL(t)
	const n = 600
	sendN(t, plain, "backlog", n, nil)
	c, _, _ := countingClient(t, url)
	var handled atomic.Int64
	w := courier.NewWorker(c, "backlog", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		time.Sleep(time.Duration(5+handled.Load()%11) * time.Millisecond)
		handled.Add(1)
		return nil
	}), courier.WorkerOptions{Concurrency: 10})
	startWorker(t, w)
	samples, parked := 0, 0
	deadline := time.Now().Add(30 * time.Second)
	for handled.Load() < n*2/3 { // the backlog lasts beyond this
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d handled in 30s", handled.Load(), n)
		}
		time.Sleep(200 * time.Microsecond)
		samples++
		if courier.WorkerParked(w) {
			parked++
		}
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if parked > 0 {
		t.Errorf("a slot was parked in %d of %d samples while the queue had a backlog", parked, samples)
	}
}

// TestWorkerStopWaitsForTooLargeTerminate: a result over the server's limit
// is found out by the ack after the handler has returned; Stop, called
// then, waits for the terminate that settles the task instead.
func TestWorkerStopWaitsForTooLargeTerminate(t *testing.T) {
	t.Parallel()
	plain, url := setupURL(t)
	c, _, _ := countingClient(t, url)
	f := submit(t, plain, "big-stop", "1", nil)
	returning := make(chan struct{})
	w := courier.NewWorker(c, "big-stop", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		defer close(returning)
		return d.SetResult(strings.Repeat("x", 1<<20+1))
	}), courier.WorkerOptions{Concurrency: 1, MaxBatch: 1, Wait: time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	<-returning
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	task, err := plain.GetTask(t.Context(), f.ID(), 0)
	if err != nil || task.State != courier.TaskFailed || !strings.Contains(task.Error, "too large") {
		t.Errorf("task after Stop: %+v, %v; want failed as too large", task, err)
	}
}

// TestWorkerStopLetsCarryingReceiveFinish: Stop, called while a receive
// that carries acks waits for a message, lets it answer: its acks are
// reported applied, not sent again by the ackers, to be refused as stale
// and logged as failures.
func TestWorkerStopLetsCarryingReceiveFinish(t *testing.T) {
	t.Parallel()
	_, url := setupURL(t)
	const n = 3
	var handled atomic.Int64
	carryOut := make(chan struct{}, 1)
	c := watchedClient(t, url, func(r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/receive") && r.GetBody != nil:
			body, err := r.GetBody()
			if err != nil {
				t.Errorf("GetBody: %v", err)
				return
			}
			b, _ := io.ReadAll(body)
			if bytes.Contains(b, []byte(`"ack":`)) && handled.Load() == n {
				select {
				case carryOut <- struct{}{}:
				default:
				}
			}
		}
	})
	sendN(t, c, "carrystop", n, nil)
	var warn warnings
	w := courier.NewWorker(c, "carrystop", courier.HandlerFunc(func(context.Context, *courier.Delivery) error {
		handled.Add(1)
		return nil
	}), courier.WorkerOptions{Concurrency: 1, MaxBatch: 1, Wait: time.Second, Logger: slog.New(&warn)})
	courier.SetAckHold(w, time.Hour, time.Millisecond) // every ack waits for a receive
	startWorker(t, w)
	select { // the last message's ack is on its way, with a receive that waits
	case <-carryOut:
	case <-time.After(20 * time.Second):
		t.Fatal("no receive carried the last ack within 20s")
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ws := warn.all(); len(ws) > 0 {
		t.Errorf("warnings after a clean Stop: %q", ws)
	}
}

// TestWorkerStopSendsHeldAcks: an ack waiting for a receive to carry it
// when Stop begins (here the hold is an hour) is sent at once by the
// ackers, since no receive will go out again: Stop does not wait out the
// hold, and the message is acked, not left to come back.
func TestWorkerStopSendsHeldAcks(t *testing.T) {
	t.Parallel()
	plain, url := setupURL(t)
	sendN(t, plain, "held", 3, nil) // more than one: the receive comes back full, so acks are held
	c, _, _ := countingClient(t, url)
	started, release := make(chan struct{}, 3), make(chan struct{})
	w := courier.NewWorker(c, "held", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		started <- struct{}{}
		<-release
		return nil
	}), courier.WorkerOptions{Concurrency: 1})
	courier.SetAckHold(w, time.Hour, time.Hour)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- w.Stop(context.Background()) }()
	time.Sleep(50 * time.Millisecond) // Stop is under way: the handler's ack comes after it began
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Stop still waiting after 20s: it waits out the held ack's hour")
	}
	if s := stats(t, plain, "held"); s.AckedTotal != 1 || s.InFlight != 0 {
		t.Errorf("after Stop: %d acked, %d in flight; want the handled message acked, none in flight", s.AckedTotal, s.InFlight)
	}
}
