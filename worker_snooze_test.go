package courier_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
)

// handling is one call of a handler: the delivery's attempt, and when.
type handling struct {
	attempt int
	at      time.Time
}

// snoozeTwice is a handler that snoozes each message twice, for 0 (taken
// as MinSnooze) and then for pause, and succeeds on its third delivery; every call is sent
// to calls.
func snoozeTwice(pause time.Duration, calls chan<- handling) courier.HandlerFunc {
	var mu sync.Mutex
	seen := map[string]int{}
	return func(_ context.Context, d *courier.Delivery) error {
		calls <- handling{d.Attempt, time.Now()}
		mu.Lock()
		seen[d.ID]++
		n := seen[d.ID]
		mu.Unlock()
		switch n {
		case 1:
			return courier.Snooze(0)
		case 2:
			return courier.Snooze(pause)
		}
		return nil
	}
}

// next takes n handler calls from calls, failing the test if they do not
// come within 10 s.
func next(t *testing.T, calls <-chan handling, n int) []handling {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	var got []handling
	for len(got) < n {
		select {
		case h := <-calls:
			got = append(got, h)
		case <-timeout.C:
			t.Fatalf("%d handler calls in 10 s; want %d", len(got), n)
		}
	}
	return got
}

// TestWorkerSnooze: a handler that snoozes hands its message back without
// counting an attempt: on a queue of one attempt, a message snoozed twice
// is not dead-lettered, comes back as attempt 1 each time, after the
// snooze's delay, and is acked on its third delivery.
func TestWorkerSnooze(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ctx := t.Context()
	if _, err := c.PutQueue(ctx, "snooze", courier.QueueSettings{MaxAttempts: ptr(1)}); err != nil {
		t.Fatal(err)
	}
	sendN(t, c, "snooze", 1, nil)
	const pause = 300 * time.Millisecond
	calls := make(chan handling, 10)
	var warned warnings
	w := courier.NewWorker(c, "snooze", snoozeTwice(pause, calls), courier.WorkerOptions{Wait: time.Second,
		Logger: slog.New(&warned)})
	startWorker(t, w)
	got := next(t, calls, 3)
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for i, h := range got {
		if h.attempt != 1 {
			t.Errorf("delivery %d: attempt %d; want 1 (a snooze does not count)", i+1, h.attempt)
		}
	}
	if gap := got[1].at.Sub(got[0].at); gap < courier.MinSnooze {
		t.Errorf("second delivery %v after a snooze of 0; want at least MinSnooze, %v", gap, courier.MinSnooze)
	}
	if gap := got[2].at.Sub(got[1].at); gap < pause {
		t.Errorf("third delivery %v after the snooze of %v", gap, pause)
	}
	if s := stats(t, c, "snooze"); s.AckedTotal != 1 || s.Dead != 0 || s.InFlight != 0 || s.Ready+s.Delayed != 0 {
		t.Errorf("stats = %+v; want the message acked, never dead-lettered", s)
	}
	if ws := warned.all(); len(ws) > 0 {
		t.Errorf("warnings: %v", ws)
	}
}

// TestWorkerSnoozeTask: a snoozed task goes back to queued with its
// attempt as before the delivery (0: never delivered), no error, and waits
// out the snooze.
func TestWorkerSnoozeTask(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ctx := t.Context()
	f, err := c.Submit(ctx, "jobs", courier.SubmitTask{NewMessage: courier.NewMessage{Body: json.RawMessage(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan handling, 10)
	w := courier.NewWorker(c, "jobs", courier.HandlerFunc(func(_ context.Context, d *courier.Delivery) error {
		handled <- handling{d.Attempt, time.Now()}
		return courier.Snooze(time.Hour)
	}), courier.WorkerOptions{Wait: time.Second})
	startWorker(t, w)
	next(t, handled, 1)
	// Stop returns once the snooze is settled.
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	task, err := c.GetTask(ctx, f.ID(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if task.State != courier.TaskQueued || task.Attempt != 0 || task.Error != "" {
		t.Errorf("after the snooze: state %s, attempt %d, error %q; want queued, 0, none", task.State, task.Attempt, task.Error)
	}
	if s := stats(t, c, "jobs"); s.Delayed != 1 || s.InFlight != 0 || len(handled) != 0 {
		t.Errorf("stats = %+v, %d more deliveries; want the task delayed by its snooze", s, len(handled))
	}
}

// TestWorkerSnoozeOldServer: against a server that does not know
// "release" (400 naming it), a snooze is a nack after its delay, which
// counts the attempt, with one warning for the worker's life.
func TestWorkerSnoozeOldServer(t *testing.T) {
	t.Parallel()
	_, url := setupURL(t)
	var log nackLog
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if !strings.HasSuffix(r.URL.Path, "/nack") {
			return tr.RoundTrip(r)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		if log.add(t, b).Release {
			return &http.Response{StatusCode: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(releaseUnknown)), Request: r}, nil
		}
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		return tr.RoundTrip(r)
	})}
	c := courier.NewClient(url, courier.WithHTTPClient(hc))
	ctx := t.Context()
	sendN(t, c, "old", 2, nil)
	calls := make(chan handling, 10)
	var warned warnings
	w := courier.NewWorker(c, "old", snoozeTwice(time.Millisecond, calls), courier.WorkerOptions{Wait: time.Second,
		Logger: slog.New(&warned)})
	startWorker(t, w)
	got := next(t, calls, 6)
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	counted := 0
	for _, h := range got {
		if h.attempt > 1 {
			counted++
		}
	}
	if counted != 4 {
		t.Errorf("%d of 6 deliveries past attempt 1; want 4 (each message's two snoozes counted): %v", counted, got)
	}
	// The first snoozes try a release (both messages' may, as two
	// handlers run at once); once one is refused, every snooze is a
	// counted nack, and each refused release is followed by one.
	var releases, counts []string
	for _, n := range log.all() {
		if n.Release {
			releases = append(releases, n.Lease)
			continue
		}
		if n.Error == "" {
			t.Errorf("a counted nack without an error: %+v", n)
		}
		counts = append(counts, n.Lease)
	}
	if len(releases) == 0 || len(counts) != 4 {
		t.Errorf("releases %v, counted nacks %v; want one or two releases refused, four counted nacks", releases, counts)
	}
	for _, l := range releases {
		if !slices.Contains(counts, l) {
			t.Errorf("the release of %s was refused, and it was not nacked then", l)
		}
	}
	if ws := warned.all(); len(ws) != 1 || !strings.Contains(ws[0], "does not know release") {
		t.Errorf("warnings %q; want one, about release", ws)
	}
	if errors.Is(courier.Snooze(time.Second), courier.ErrTerminate) {
		t.Error("a snooze matches ErrTerminate")
	}
}

// TestSnoozeBounds: delays are taken within what the server accepts, and
// a snooze never shorter than MinSnooze.
func TestSnoozeBounds(t *testing.T) {
	t.Parallel()
	const tenYears = 10 * 365 * 24 * time.Hour
	for _, tc := range []struct {
		in, snooze, retry time.Duration
	}{
		{-time.Second, courier.MinSnooze, 0},
		{0, courier.MinSnooze, 0},
		{time.Millisecond, courier.MinSnooze, time.Millisecond},
		{time.Minute, time.Minute, time.Minute},
		{2 * tenYears, tenYears, tenYears},
	} {
		var s *courier.SnoozeError
		var r *courier.RetryAfterError
		if !errors.As(courier.Snooze(tc.in), &s) || s.Delay != tc.snooze {
			t.Errorf("Snooze(%v) = %v; want a delay of %v", tc.in, s, tc.snooze)
		}
		if !errors.As(courier.RetryAfter(tc.in, nil), &r) || r.Delay != tc.retry {
			t.Errorf("RetryAfter(%v) = %v; want a delay of %v", tc.in, r, tc.retry)
		}
	}
}
