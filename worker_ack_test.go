package courier_test

import (
	"bytes"
	"context"
	"fmt"
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
// receives that carried acks.
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
