package courier_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
)

type resizeArgs struct {
	URL   string `json:"url"`
	Width int    `json:"width"`
}

type resizeResult struct {
	URL string `json:"url"`
}

func submit(t *testing.T, c *courier.Client, queue, body string, headers map[string]string) *courier.Future {
	t.Helper()
	f, err := c.Submit(t.Context(), queue, courier.SubmitTask{NewMessage: courier.NewMessage{
		Body: json.RawMessage(body), Headers: headers}})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if f.ID() == "" || f.Submitted().ID != f.ID() || f.Submitted().Queue != queue {
		t.Fatalf("Submit answered %+v", f.Submitted())
	}
	return f
}

// TestSubmitAwaitResult: a worker's typed handler completes a task; Await
// returns its result.
func TestSubmitAwaitResult(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	mux := courier.NewMux()
	mux.Handle("resize", courier.HandleJSON(func(ctx context.Context, a resizeArgs) (resizeResult, error) {
		return resizeResult{URL: fmt.Sprintf("%s?w=%d", a.URL, a.Width)}, nil
	}))
	mux.HandleFunc("fail", func(ctx context.Context, d *courier.Delivery) error {
		return courier.Terminate("the image is corrupt")
	})
	startWorker(t, courier.NewWorker(c, "images", mux, courier.WorkerOptions{Wait: time.Second}))

	f := submit(t, c, "images", `{"url": "https://x/a.png", "width": 100}`, map[string]string{courier.HeaderType: "resize"})
	task, err := f.Await(t.Context())
	if err != nil {
		t.Fatalf("Await: %v", err)
	}
	var res resizeResult
	if task.State != courier.TaskSucceeded || json.Unmarshal(task.Result, &res) != nil || res.URL != "https://x/a.png?w=100" ||
		task.FinishedAt == nil || task.Attempt != 1 {
		t.Errorf("Await = %+v (result %s)", task, task.Result)
	}
	if got, err := c.GetTask(t.Context(), f.ID(), 0); err != nil || got.State != courier.TaskSucceeded {
		t.Errorf("GetTask = %+v, %v", got, err)
	}

	f = submit(t, c, "images", `{}`, map[string]string{courier.HeaderType: "fail"})
	task, err = c.AwaitTask(t.Context(), f.ID())
	if err != nil || task.State != courier.TaskFailed || task.Error != "the image is corrupt" || task.Result != nil {
		t.Errorf("Await of a terminated task = %+v, %v", task, err)
	}
}

// TestTaskClientCalls drives a task by hand: receive, progress, ack with a
// result; and terminate.
func TestTaskClientCalls(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ctx := t.Context()
	f := submit(t, c, "manual", `1`, nil)
	msgs, err := c.Receive(ctx, "manual", courier.ReceiveRequest{})
	if err != nil || len(msgs) != 1 || msgs[0].ID != f.ID() {
		t.Fatalf("Receive = %+v, %v", msgs, err)
	}
	task, err := c.Progress(ctx, f.ID(), courier.ProgressRequest{Lease: msgs[0].Lease, Progress: 0.25, Message: "a quarter"})
	if err != nil || task.State != courier.TaskRunning || task.Progress != 0.25 || task.ProgressMessage != "a quarter" {
		t.Errorf("Progress = %+v, %v", task, err)
	}
	if _, err := c.Progress(ctx, f.ID(), courier.ProgressRequest{Lease: msgs[0].Lease, Progress: 2}); !errors.Is(err, courier.ErrInvalidArgument) {
		t.Errorf("Progress 2: %v, want ErrInvalidArgument", err)
	}
	if err := c.AckResult(ctx, "manual", msgs[0].Lease, json.RawMessage(`{"ok": true}`)); err != nil {
		t.Fatalf("AckResult: %v", err)
	}
	task, err = c.GetTask(ctx, f.ID(), time.Second)
	if err != nil || task.State != courier.TaskSucceeded || string(task.Result) != `{"ok":true}` {
		t.Errorf("GetTask = %+v (result %s), %v", task, task.Result, err)
	}

	f = submit(t, c, "manual", `2`, nil)
	msgs, err = c.Receive(ctx, "manual", courier.ReceiveRequest{})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive = %+v, %v", msgs, err)
	}
	if err := c.Terminate(ctx, "manual", msgs[0].Lease, "not today"); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	if task, err := f.Await(ctx); err != nil || task.State != courier.TaskFailed || task.Error != "not today" {
		t.Errorf("Await = %+v, %v", task, err)
	}

	if _, err := c.GetTask(ctx, "1HTSM8PJYJ194", 0); !errors.Is(err, courier.ErrTaskNotFound) {
		t.Errorf("GetTask of an unknown id: %v, want ErrTaskNotFound", err)
	}
	if _, err := c.AwaitTask(ctx, "1HTSM8PJYJ194"); !errors.Is(err, courier.ErrTaskNotFound) {
		t.Errorf("AwaitTask of an unknown id: %v, want ErrTaskNotFound", err)
	}
}

// TestTaskCancel: a queued task is cancelled at once; a running one when
// its worker next extends, which cancels the handler's context.
func TestTaskCancel(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ctx := t.Context()
	queued := submit(t, c, "cancel", `1`, nil)
	task, err := c.CancelTask(ctx, queued.ID())
	if err != nil || task.State != courier.TaskCancelled {
		t.Errorf("CancelTask of a queued task = %+v, %v", task, err)
	}

	running := submit(t, c, "cancel", `2`, nil)
	started, cause := make(chan struct{}), make(chan error, 1)
	w := courier.NewWorker(c, "cancel", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		close(started)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return ctx.Err()
	}), courier.WorkerOptions{Visibility: time.Second, Wait: time.Second})
	startWorker(t, w)
	<-started
	if task, err := c.CancelTask(ctx, running.ID()); err != nil || !task.CancelRequested {
		t.Errorf("CancelTask of a running task = %+v, %v", task, err)
	}
	if err := <-cause; !errors.Is(err, courier.ErrTaskCancelled) || !errors.Is(err, courier.ErrConflict) {
		t.Errorf("handler's cause = %v, want ErrTaskCancelled", err)
	}
	if task, err := running.Await(ctx); err != nil || task.State != courier.TaskCancelled {
		t.Errorf("Await = %+v, %v", task, err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if s := stats(t, c, "cancel"); s.InFlight != 0 || s.Ready != 0 || s.Dead != 0 {
		t.Errorf("stats %+v; want the cancelled task's message gone", s)
	}
}

// TestWatchTask follows a task's events through progress to its end, and
// resumes after an event.
func TestWatchTask(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ctx := t.Context()
	f := submit(t, c, "watched", `1`, nil)
	reported, finish := make(chan struct{}), make(chan struct{})
	startWorker(t, courier.NewWorker(c, "watched", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		if err := d.Progress(ctx, 0.5, "half way"); err != nil {
			return err
		}
		close(reported)
		<-finish
		return d.SetResult("done")
	}), courier.WorkerOptions{Wait: time.Second}))
	<-reported

	var events []courier.TaskEvent
	for ev, err := range c.WatchTask(ctx, f.ID(), "") {
		if err != nil {
			t.Fatalf("WatchTask: %v", err)
		}
		events = append(events, ev)
		if len(events) == 1 {
			close(finish) // the first event is the task as it is now
		}
	}
	if len(events) < 2 {
		t.Fatalf("events: %+v; want the state now, then the end", events)
	}
	first, last := events[0].Task, events[len(events)-1].Task
	if first.State != courier.TaskRunning || first.Progress != 0.5 || first.ProgressMessage != "half way" {
		t.Errorf("first event: %+v", first)
	}
	if last.State != courier.TaskSucceeded || string(last.Result) != `"done"` {
		t.Errorf("last event: %+v", last)
	}
	for _, ev := range events {
		if ev.ID == "" || ev.Task.ID != f.ID() {
			t.Errorf("event %+v", ev)
		}
	}

	// Resuming after the last event: nothing more. After the first: the
	// changes since, ending with the final state.
	for ev, err := range c.WatchTask(ctx, f.ID(), events[len(events)-1].ID) {
		t.Errorf("resumed after the end: %+v, %v", ev, err)
	}
	var resumed []courier.TaskEvent
	for ev, err := range c.WatchTask(ctx, f.ID(), events[0].ID) {
		if err != nil {
			t.Fatal(err)
		}
		resumed = append(resumed, ev)
	}
	if len(resumed) == 0 || resumed[len(resumed)-1].Task.State != courier.TaskSucceeded || resumed[0].ID == events[0].ID {
		t.Errorf("resumed after the first event: %+v", resumed)
	}

	for _, err := range c.WatchTask(ctx, "1HTSM8PJYJ194", "") {
		if !errors.Is(err, courier.ErrTaskNotFound) {
			t.Errorf("WatchTask of an unknown id: %v", err)
		}
	}
}

// TestAwaitSurvivesRestart: Await keeps waiting while the server restarts,
// and returns the result the restarted server's worker produced.
func TestAwaitSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := server.Start(t.Context(), server.Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	polling := make(chan struct{}, 100)
	c := watchedClient(t, s.URL(), func(r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/tasks/") {
			polling <- struct{}{}
		}
	})
	f := submit(t, c, "restart", `7`, nil)
	awaited := make(chan courier.Task, 1)
	go func() {
		task, err := f.Await(t.Context())
		if err != nil {
			t.Errorf("Await: %v", err)
		}
		awaited <- task
	}()
	<-polling
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-polling // polling on, against a stopped server
	s, err = server.Start(t.Context(), server.Config{Addr: addr, DataDir: dir})
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	defer s.Stop(context.Background())
	w := courier.NewWorker(c, "restart", courier.HandleJSON(func(ctx context.Context, n int) (int, error) {
		return n * 6, nil
	}), courier.WorkerOptions{Wait: time.Second})
	startWorker(t, w)
	if task := <-awaited; task.State != courier.TaskSucceeded || string(task.Result) != "42" {
		t.Errorf("Await across a restart = %+v", task)
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Error(err)
	}
	c.CloseIdleConnections()
}

// TestProducerSubmits: a Producer gathers tasks into batch submits; a task
// refused for its fields fails alone; the outcomes come back through a
// reply_to queue, each with its task's id and result.
func TestProducerSubmits(t *testing.T) {
	t.Parallel()
	_, url := setupURL(t)
	var submits atomic.Int32
	c := watchedClient(t, url, func(r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/tasks") {
			submits.Add(1)
		}
	})
	p := courier.NewProducer(c, courier.ProducerOptions{})
	const n = 1500
	pending := make([]*courier.PendingSend, n)
	for i := range n {
		st := courier.SubmitTask{NewMessage: courier.NewMessage{Body: json.RawMessage(fmt.Sprint(i))}, ReplyTo: "answers"}
		if i == 700 {
			st.ReplyTo = "no way" // refused: only this one fails
		}
		pending[i] = p.Submit(t.Context(), "work", st)
	}
	want := map[string]int{} // task id → its number
	for i, ps := range pending {
		id, err := ps.Wait(t.Context())
		if i == 700 {
			if !errors.Is(err, courier.ErrInvalidArgument) || !strings.Contains(err.Error(), "reply_to") {
				t.Fatalf("the bad task: %q, %v", id, err)
			}
			continue
		}
		if err != nil || id == "" {
			t.Fatalf("task %d: %q, %v", i, id, err)
		}
		want[id] = i
	}
	closeProducer(t, p)
	if len(want) != n-1 {
		t.Fatalf("%d distinct task ids, want %d", len(want), n-1)
	}
	// 1500 tasks in batches of up to 1000, plus the splits that isolate the
	// bad one (about 2·log2(1000) requests).
	if r := submits.Load(); r > 30 {
		t.Errorf("%d submit requests for %d tasks", r, n)
	}

	w := courier.NewWorker(c, "work", courier.HandleJSON(func(ctx context.Context, n int) (int, error) {
		return 2 * n, nil
	}), courier.WorkerOptions{Concurrency: 100, MaxBatch: 100})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(t.Context())
	for len(want) > 0 {
		ms, err := c.Receive(t.Context(), "answers", courier.ReceiveRequest{Max: 1000, Wait: "10s"})
		if err != nil || len(ms) == 0 {
			t.Fatalf("receive outcomes (%d left): %d, %v", len(want), len(ms), err)
		}
		leases := make([]string, len(ms))
		for j, m := range ms {
			var out struct {
				ID     string `json:"id"`
				State  string `json:"state"`
				Result int    `json:"result"`
			}
			if err := json.Unmarshal(m.Body, &out); err != nil {
				t.Fatalf("outcome %s: %v", m.Body, err)
			}
			i, ok := want[out.ID]
			if !ok || m.Headers["courier-task-id"] != out.ID || out.State != "succeeded" || out.Result != 2*i {
				t.Fatalf("outcome %s (headers %v); known: %v", m.Body, m.Headers, ok)
			}
			delete(want, out.ID)
			leases[j] = m.Lease
		}
		if _, err := c.AckBatch(t.Context(), "answers", leases); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSubmitBatch: one request stores every task, answered in order; a bad
// one refuses the batch, naming its index, and stores nothing.
func TestSubmitBatch(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ts := []courier.SubmitTask{
		{NewMessage: courier.NewMessage{Body: json.RawMessage(`"a"`)}},
		{NewMessage: courier.NewMessage{Body: json.RawMessage(`"b"`)}, ResultTTL: "1h"},
	}
	fs, err := c.SubmitBatch(t.Context(), "sb", ts)
	if err != nil || len(fs) != 2 {
		t.Fatalf("SubmitBatch = %d futures, %v", len(fs), err)
	}
	if fs[0].ID() == fs[1].ID() || fs[1].Submitted().ResultTTL != "1h0m0s" || fs[0].Submitted().State != courier.TaskQueued {
		t.Fatalf("futures %+v %+v", fs[0].Submitted(), fs[1].Submitted())
	}
	for i, f := range fs {
		m := receiveOne(t, c, "sb")
		if m.ID != f.ID() {
			t.Fatalf("message %d is %s, want %s", i, m.ID, f.ID())
		}
		if err := c.AckResult(t.Context(), "sb", m.Lease, m.Body); err != nil {
			t.Fatal(err)
		}
		if got, err := f.Await(t.Context()); err != nil || string(got.Result) != string(ts[i].Body) {
			t.Fatalf("Await %d = %+v, %v", i, got, err)
		}
	}

	bad := append(ts, courier.SubmitTask{NewMessage: courier.NewMessage{Body: json.RawMessage(`1`), Priority: 500}})
	if _, err := c.SubmitBatch(t.Context(), "sb", bad); !errors.Is(err, courier.ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "tasks[2]: priority") {
		t.Fatalf("bad batch: %v", err)
	}
	if _, err := c.SubmitBatch(t.Context(), "sb", nil); !errors.Is(err, courier.ErrInvalidArgument) {
		t.Fatalf("empty batch: %v", err)
	}
	if s := stats(t, c, "sb"); s.SentTotal != 2 || s.Ready != 0 {
		t.Fatalf("stats after bad batches: %+v", s)
	}
}

// TestWorkerResultTooLarge: a result over the server's limit (1 MiB) cannot
// be acked, now or later, so the worker terminates the task with a reason
// instead of leaving it to be retried.
func TestWorkerResultTooLarge(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	f := submit(t, c, "big-results", `1`, nil)
	startWorker(t, courier.NewWorker(c, "big-results", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		return d.SetResult(strings.Repeat("x", 1<<20+1))
	}), courier.WorkerOptions{Wait: time.Second}))
	task, err := f.Await(t.Context())
	if err != nil || task.State != courier.TaskFailed || !strings.Contains(task.Error, "too large") || task.Attempt != 1 {
		t.Fatalf("Await = %+v, %v; want failed once, as too large", task, err)
	}
}
