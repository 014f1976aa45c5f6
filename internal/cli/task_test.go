package cli

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier"
)

// startWorker runs an SDK worker on queue of the server at url until the
// test ends.
func startWorker(t *testing.T, url, queue string, h courier.HandlerFunc) {
	t.Helper()
	c := courier.NewClient(url)
	w := courier.NewWorker(c, queue, h, courier.WorkerOptions{Wait: time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(context.Background()); err != nil {
			t.Errorf("stop worker: %v", err)
		}
		c.CloseIdleConnections()
	})
}

func TestTaskSubmitGetCancel(t *testing.T) {
	t.Parallel()
	url := setup(t)
	id := strings.TrimSpace(ok(t, url, "task", "submit", "--header", "type=resize", "--result-ttl", "1h", "--reply-to", "done",
		"images", `{"w": 320}`))
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("submit printed %q, want an id", id)
	}
	m := recvOne(t, url, "images") // the task is a message of the queue
	if m.ID != id || compact(t, m.Body) != `{"w":320}` || m.Headers["type"] != "resize" {
		t.Errorf("the task's message: %+v", m)
	}

	out := ok(t, url, "task", "get", id)
	for _, want := range []string{"id:", id, "state:", "running", "result ttl:", "1h0m0s", "reply to:", "done", "finished:"} {
		if !strings.Contains(out, want) {
			t.Errorf("task get lacks %q:\n%s", want, out)
		}
	}
	var task courier.Task
	decode(t, ok(t, url, "task", "get", "--json", id), &task)
	if task.ID != id || task.State != courier.TaskRunning || task.Queue != "images" {
		t.Errorf("task get --json = %+v", task)
	}

	if out := ok(t, url, "task", "cancel", id); !strings.HasPrefix(out, id+": cancel requested (running)") {
		t.Errorf("cancel of a running task: %q", out)
	}
	queued := strings.TrimSpace(ok(t, url, "task", "submit", "images", "-"))
	if out := ok(t, url, "task", "cancel", queued); out != queued+": cancelled\n" {
		t.Errorf("cancel of a queued task: %q", out)
	}
	decode(t, ok(t, url, "task", "get", "--json", "--wait", "1s", queued), &task)
	if task.State != courier.TaskCancelled || task.FinishedAt == nil {
		t.Errorf("a cancelled task: %+v", task)
	}

	var submitted courier.Task
	decode(t, ok(t, url, "task", "submit", "--json", "images", `"x"`), &submitted)
	if submitted.ID == "" || submitted.Queue != "images" || submitted.ResultTTL != "24h0m0s" {
		t.Errorf("submit --json = %+v", submitted)
	}
}

func TestTaskSubmitWait(t *testing.T) {
	t.Parallel()
	url := setup(t)
	startWorker(t, url, "math", func(ctx context.Context, d *courier.Delivery) error {
		var n int
		if err := json.Unmarshal(d.Body, &n); err != nil {
			return courier.Terminate("not a number")
		}
		return d.SetResult(map[string]int{"square": n * n})
	})
	out := ok(t, url, "task", "submit", "--wait", "math", "7")
	if !strings.Contains(out, "succeeded") || !strings.Contains(out, `{"square":49}`) {
		t.Errorf("submit --wait:\n%s", out)
	}
	var task courier.Task
	decode(t, ok(t, url, "task", "submit", "--wait", "--json", "math", "8"), &task)
	if task.State != courier.TaskSucceeded || compact(t, task.Result) != `{"square":64}` {
		t.Errorf("submit --wait --json = %+v", task)
	}

	// A task that fails: printed, and exit 1.
	r := courierCmd(t.Context(), t, url, strings.NewReader(""), "task", "submit", "--wait", "math", "seven")
	if r.code != exitFailure || !strings.Contains(r.stdout, "failed") || !strings.Contains(r.stderr, "failed: not a number") {
		t.Errorf("submit --wait of a failing task = %+v", r)
	}
}

// syncBuffer is a strings.Builder safe for a writer and a reader, which
// signals each write.
type syncBuffer struct {
	mu     sync.Mutex
	b      strings.Builder
	writes chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { s.writes <- struct{}{} }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTaskWatch(t *testing.T) {
	t.Parallel()
	url := setup(t)
	id := strings.TrimSpace(ok(t, url, "task", "submit", "slow", `"job"`))
	reported, finish := make(chan struct{}), make(chan struct{})
	startWorker(t, url, "slow", func(ctx context.Context, d *courier.Delivery) error {
		if err := d.Progress(ctx, 0.5, "half way"); err != nil {
			return err
		}
		close(reported)
		<-finish
		return d.SetResult("ok")
	})
	<-reported

	out := &syncBuffer{writes: make(chan struct{}, 100)}
	e := &env{stdin: strings.NewReader(""), stdout: out, stderr: out, getenv: func(k string) string {
		if k == "COURIER_URL" {
			return url
		}
		return ""
	}}
	done := make(chan int)
	go func() { done <- run(t.Context(), []string{"task", "watch", id}, e) }()
	<-out.writes // the first line: the task as it is now
	close(finish)
	if code := <-done; code != 0 {
		t.Fatalf("task watch: exit %d, output %q", code, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if len(lines) < 2 || !strings.Contains(lines[0], "  running  50% half way") ||
		!strings.Contains(last, "  succeeded  ") || !strings.HasSuffix(last, `  result: "ok"`) {
		t.Errorf("task watch:\n%s", out.String())
	}

	// --json: one task object per line; a finished task's stream is its end.
	jl := ok(t, url, "task", "watch", "--json", id)
	var task courier.Task
	if strings.Count(jl, "\n") != 1 || json.Unmarshal([]byte(jl), &task) != nil || task.State != courier.TaskSucceeded {
		t.Errorf("task watch --json of a finished task: %q", jl)
	}
}

func TestTaskErrors(t *testing.T) {
	t.Parallel()
	url := setup(t)
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"task", "get"}, exitUsage, "wrong number of arguments"},
		{[]string{"task", "get", "1HTSM8PJYJ194"}, exitFailure, "(task_not_found)"},
		{[]string{"task", "watch", "1HTSM8PJYJ194"}, exitFailure, "(task_not_found)"},
		{[]string{"task", "cancel", "1HTSM8PJYJ194"}, exitFailure, "(task_not_found)"},
		{[]string{"task", "submit", "q", "1", "--notify-secret", "s"}, exitUsage, "--notify-secret needs --notify-url"},
		{[]string{"task", "submit", "q", "1", "--notify-url", "ftp://x"}, exitFailure, "(invalid_argument)"},
		{[]string{"task", "submit", "q", "1", "--result-ttl", "1ms"}, exitFailure, "(invalid_argument)"},
		{[]string{"task", "frob"}, exitUsage, `unknown command "frob"`},
	} {
		r := courierCmd(t.Context(), t, url, strings.NewReader(""), tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("courier %s = %+v; want exit %d and %q", strings.Join(tc.args, " "), r, tc.code, tc.stderr)
		}
	}
	r := courierCmd(t.Context(), t, "http://127.0.0.1:1", strings.NewReader(""), "task", "watch", "x")
	if r.code != exitUnreachable {
		t.Errorf("task watch of an unreachable server = %+v", r)
	}
}

// TestTaskWatchInterrupted cancels a watch the way SIGINT does in main.
func TestTaskWatchInterrupted(t *testing.T) {
	t.Parallel()
	url := setup(t)
	id := strings.TrimSpace(ok(t, url, "task", "submit", "idle", "1"))
	ctx, cancel := context.WithCancel(t.Context())
	out := &syncBuffer{writes: make(chan struct{}, 10)}
	e := &env{stdin: strings.NewReader(""), stdout: out, stderr: out, getenv: func(k string) string {
		if k == "COURIER_URL" {
			return url
		}
		return ""
	}}
	done := make(chan int)
	go func() { done <- run(ctx, []string{"task", "watch", id}, e) }()
	<-out.writes // the task as it is: queued
	cancel()
	if code := <-done; code != exitInterrupted || !strings.Contains(out.String(), "courier: interrupted") {
		t.Errorf("interrupted watch: exit %d, %q", code, out.String())
	}
}

// A task can be finished from the command line: ack --result succeeds it
// with its result, nack --terminate fails it at once with a reason.
func TestTaskFinishedByAckAndNack(t *testing.T) {
	t.Parallel()
	url := setup(t)
	ok(t, url, "queue", "create", "jobs", "--max-attempts", "5")
	done := strings.TrimSpace(ok(t, url, "task", "submit", "jobs", `{"n":1}`))
	m := recvOne(t, url, "jobs")
	if out := ok(t, url, "ack", "--result", `{"sum": 3}`, "jobs", m.Lease); out != "acknowledged 1\n" {
		t.Errorf("ack --result printed %q", out)
	}
	var task courier.Task
	decode(t, ok(t, url, "task", "get", "--json", done), &task)
	if task.State != courier.TaskSucceeded || compact(t, task.Result) != `{"sum":3}` {
		t.Errorf("after ack --result: %+v", task)
	}

	bad := strings.TrimSpace(ok(t, url, "task", "submit", "jobs", `{"n":2}`))
	m = recvOne(t, url, "jobs")
	if out := ok(t, url, "nack", "--terminate", "--error", "malformed input", "jobs", m.Lease); out != "dead-lettered\n" {
		t.Errorf("nack --terminate printed %q", out)
	}
	decode(t, ok(t, url, "task", "get", "--json", bad), &task)
	if task.State != courier.TaskFailed || task.Error != "malformed input" || task.Attempt != 1 {
		t.Errorf("after nack --terminate (attempt 1 of 5): %+v", task)
	}

	for _, args := range [][]string{
		{"ack", "--result", `{"sum":`, "jobs", "L"},           // not JSON
		{"ack", "--result", `1`, "jobs", "L1", "L2"},          // more than one lease
		{"nack", "--terminate", "--delay", "1s", "jobs", "L"}, // contradictory
		{"nack", "--release", "--terminate", "jobs", "L"},
		{"nack", "--release", "--error", "stopping", "jobs", "L"},
	} {
		if r := courierCmd(t.Context(), t, url, strings.NewReader(""), args...); r.code != exitUsage || r.stderr == "" {
			t.Errorf("courier %s: exit %d, stderr %q; want %d with a message", strings.Join(args, " "), r.code, r.stderr, exitUsage)
		}
	}
}
