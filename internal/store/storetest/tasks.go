package storetest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// The tasks of the suite: a task is a message sent with NewMessage.Task,
// whose record (GetTask) follows its message through its life. The files
// tasks*.go test them; this one holds their helpers, their birth and the
// ordinary life of one task.

// taskTTL is the result TTL of the suite's tasks.
const taskTTL = time.Hour

// taskReq is the request of most of the suite's tasks: a webhook, a
// reply_to queue ("replies") and taskTTL.
func taskReq() store.NewTask {
	return store.NewTask{NotifyURL: "https://hooks.example.test/done", NotifySecret: "s3cret",
		ReplyTo: "replies", ResultTTL: taskTTL}
}

// tmsg is a JSON message that is a task asking req.
func tmsg(body string, req store.NewTask) store.NewMessage {
	return store.NewMessage{Body: []byte(body), Kind: store.BodyJSON, Task: &req}
}

// sendTask sends one task asking req to queue and returns its id.
func (e *env) sendTask(queue string, req store.NewTask) string {
	e.t.Helper()
	return e.send(queue, tmsg(`{"job":"resize"}`, req))[0]
}

func (e *env) getTask(id string) (store.Task, error) {
	return e.s.GetTask(e.ctx, &store.GetTaskParams{ID: id, Now: e.now})
}

// task returns task id as of now, failing if it cannot.
func (e *env) task(id string) store.Task {
	e.t.Helper()
	tk, err := e.getTask(id)
	if err != nil {
		e.t.Fatalf("at %v: GetTask(%q): %v", e.since(), id, err)
	}
	if tk.ID != id {
		e.t.Fatalf("GetTask(%q) returned task %q", id, tk.ID)
	}
	return tk
}

// noTask checks that GetTask of id answers ErrTaskNotFound now.
func (e *env) noTask(what, id string) {
	e.t.Helper()
	tk, err := e.getTask(id)
	if !errors.Is(err, store.ErrTaskNotFound) {
		e.t.Errorf("at %v: %s: GetTask(%q) = %+v, %v; want ErrTaskNotFound", e.since(), what, shorten(id), tk, err)
	}
}

// changed returns task id, checking that it changed since prev: a higher
// Version and an UpdatedAt of now.
func (e *env) changed(what string, prev store.Task) store.Task {
	e.t.Helper()
	tk := e.task(prev.ID)
	if tk.Version <= prev.Version {
		e.t.Errorf("%s: task %s version %d, want more than %d", what, tk.ID, tk.Version, prev.Version)
	}
	wantTime(e.t, what+": UpdatedAt", tk.UpdatedAt, e.now)
	return tk
}

// unchanged checks that task prev.ID is still exactly prev, Version included.
func (e *env) unchanged(what string, prev store.Task) {
	e.t.Helper()
	tk := e.task(prev.ID)
	if tk.Version != prev.Version {
		e.t.Errorf("%s: task %s version %d, want %d (unchanged)", what, tk.ID, tk.Version, prev.Version)
	}
	wantTask(e.t, what, tk, prev)
}

func (e *env) cancelTask(id string) (store.Task, error) {
	return e.s.CancelTask(e.ctx, &store.CancelTaskParams{ID: id, Now: e.now})
}

func (e *env) progress(id, lease string, progress float64, message string, vis time.Duration) (store.Task, error) {
	return e.s.Progress(e.ctx, &store.ProgressParams{ID: id, Lease: lease, Progress: progress,
		Message: message, Visibility: vis, Now: e.now})
}

// ackResults acks leases with results and fails unless every one succeeds.
func (e *env) ackResults(queue string, ls []string, results [][]byte) {
	e.t.Helper()
	res, err := e.s.Ack(e.ctx, &store.AckParams{Queue: queue, Leases: ls, Results: results, Now: e.now})
	if err != nil {
		e.t.Fatalf("Ack(%q) with results: %v", queue, err)
	}
	if len(res) != len(ls) {
		e.t.Fatalf("Ack(%q) of %d leases returned %d results", queue, len(ls), len(res))
	}
	for i, err := range res {
		if err != nil {
			e.t.Fatalf("at %v: Ack(%q) with results, lease %d: %v", e.since(), queue, i, err)
		}
	}
}

func (e *env) terminate(queue, lease, reason string) (store.NackResult, error) {
	return e.s.Nack(e.ctx, &store.NackParams{Queue: queue, Lease: lease, Error: reason, Terminate: true,
		Now: e.now, Retry: e.retry})
}

// wantTask checks every field of a task but Version (see changed and
// unchanged) against want. A nil want.Result requires a nil Result.
func wantTask(t *testing.T, what string, got, want store.Task) {
	t.Helper()
	type plain struct {
		ID, Queue       string
		State           store.TaskState
		Attempt         int
		Progress        float64
		ProgressMessage string
		Error           string
		CancelRequested bool
		Request         store.NewTask
	}
	g := plain{got.ID, got.Queue, got.State, got.Attempt, got.Progress, got.ProgressMessage, got.Error, got.CancelRequested, got.Request}
	w := plain{want.ID, want.Queue, want.State, want.Attempt, want.Progress, want.ProgressMessage, want.Error, want.CancelRequested, want.Request}
	if g != w {
		t.Errorf("%s: task\n got  %+v\n want %+v", what, g, w)
	}
	if !bytes.Equal(got.Result, want.Result) || (want.Result == nil) != (got.Result == nil) {
		t.Errorf("%s: task %s result %q (nil %v), want %q (nil %v)", what, got.ID, got.Result, got.Result == nil, want.Result, want.Result == nil)
	}
	wantTime(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt)
	wantTime(t, what+": UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	wantTime(t, what+": FinishedAt", got.FinishedAt, want.FinishedAt)
	wantTime(t, what+": ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	wantWebhook(t, what, got.Webhook, want.Webhook)
}

func wantWebhook(t *testing.T, what string, got, want store.WebhookStatus) {
	t.Helper()
	if got.Pending != want.Pending || got.Delivered != want.Delivered || len(got.Attempts) != len(want.Attempts) {
		t.Errorf("%s: webhook\n got  %+v\n want %+v", what, got, want)
		return
	}
	wantTime(t, what+": webhook NextAttemptAt", got.NextAttemptAt, want.NextAttemptAt)
	for i, a := range got.Attempts {
		w := want.Attempts[i]
		if a.Status != w.Status || a.Error != w.Error || !a.At.Equal(w.At) {
			t.Errorf("%s: webhook attempt %d = %+v, want %+v", what, i, a, w)
		}
	}
}

// finished is want, finished at now in state with result and reason.
// Choice: a finished task has no CancelRequested (the request is settled).
func finished(want store.Task, now time.Time, state store.TaskState, result []byte, reason string) store.Task {
	want.State, want.Result, want.Error, want.CancelRequested = state, result, reason, false
	want.UpdatedAt, want.FinishedAt, want.ExpiresAt = now, now, now.Add(want.Request.ResultTTL)
	if want.Request.NotifyURL != "" {
		want.Webhook = store.WebhookStatus{Pending: true, NextAttemptAt: now}
	}
	return want
}

func testTasks(t *testing.T, newStore newStoreFunc) {
	t.Run("Sent", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		full := taskReq()
		bare := store.NewTask{ResultTTL: time.Minute}
		hdrs := map[string]string{"type": "resize"}
		ids := e.send("q", msg("plain"), tmsg(`{"n":1}`, full),
			store.NewMessage{Body: []byte{1, 2}, Kind: store.BodyBinary, Headers: hdrs, NotBefore: base.Add(time.Minute), Task: &bare})
		e.noTask("a plain message", ids[0])
		tk := e.task(ids[1])
		wantTask(t, "sent", tk, store.Task{ID: ids[1], Queue: "q", State: store.TaskQueued, CreatedAt: base, UpdatedAt: base, Request: full})
		if tk.Version < 1 {
			t.Errorf("a new task has version %d, want at least 1", tk.Version)
		}
		// Choice: a delayed task is queued (waiting to run), like one ready.
		wantTask(t, "sent delayed", e.task(ids[2]), store.Task{ID: ids[2], Queue: "q", State: store.TaskQueued, CreatedAt: base, UpdatedAt: base, Request: bare})
		// The message of a task is an ordinary message. Choice: the store
		// adds no headers to it.
		wantStats(t, "sent", e.stats("q"), store.Stats{Ready: 2, Delayed: 1, SentTotal: 3, OldestReady: base})
		m := e.lease("q", 10)
		wantIDs(t, "lease", m, ids[0], ids[1])
		wantBody(t, m[1], []byte(`{"n":1}`), store.BodyJSON)
		wantHeaders(t, m[1], nil)
		e.ackOK("q", leases(m)...)
		e.set(base.Add(time.Minute))
		m = e.lease("q", 10)
		wantIDs(t, "lease of the delayed task", m, ids[2])
		wantBody(t, m[0], []byte{1, 2}, store.BodyBinary)
		wantHeaders(t, m[0], hdrs)
	})

	t.Run("GetTasks", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.send("q", tmsg(`{"n":1}`, taskReq()), tmsg(`{"n":2}`, taskReq()), msg("plain"))
		want := []string{ids[1], ids[0], ids[1]} // in the order asked, repeats too
		ts, err := e.s.GetTasks(e.ctx, &store.GetTasksParams{IDs: want, Now: e.now})
		if err != nil || len(ts) != len(want) {
			t.Fatalf("GetTasks(%v) = %d tasks, %v", want, len(ts), err)
		}
		for i, id := range want {
			wantTask(t, "GetTasks["+id+"]", ts[i], e.task(id))
		}
		if ts, err := e.s.GetTasks(e.ctx, &store.GetTasksParams{Now: e.now}); err != nil || len(ts) != 0 {
			t.Errorf("GetTasks of no ids = %v, %v; want none", ts, err)
		}
		// A finished task past its result TTL is gone, for GetTasks too.
		done := e.sendTask("q", store.NewTask{ResultTTL: time.Minute})
		m := e.lease("q", 10)
		e.ackOK("q", leases(m)...)
		e.set(e.now.Add(2 * time.Minute))
		for _, bad := range [][]string{{ids[0], ids[2]}, {ids[0], "not-an-id"}, {done}} {
			if ts, err := e.s.GetTasks(e.ctx, &store.GetTasksParams{IDs: bad, Now: e.now}); !errors.Is(err, store.ErrTaskNotFound) {
				t.Errorf("GetTasks(%v) with one not a task = %v, %v; want ErrTaskNotFound", bad, ts, err)
			}
		}
	})

	t.Run("Lifecycle", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config()) // 30s visibility, 3 attempts, 5s backoff
		req := taskReq()
		id := e.sendTask("q", req)
		want := store.Task{ID: id, Queue: "q", State: store.TaskQueued, CreatedAt: base, UpdatedAt: base, Request: req}
		tk := e.task(id)
		wantTask(t, "sent", tk, want)

		e.advance(time.Second)
		m := e.leaseOne("q", id)
		want.State, want.Attempt, want.UpdatedAt = store.TaskRunning, 1, e.now
		tk = e.changed("leased", tk)
		wantTask(t, "leased", tk, want)

		e.advance(time.Second)
		e.nackOK("q", m.Lease, nil, "worker crashed") // retried 5s later
		want.State, want.Error, want.UpdatedAt = store.TaskQueued, "worker crashed", e.now
		tk = e.changed("nacked", tk)
		wantTask(t, "nacked", tk, want)

		e.advance(5 * time.Second)
		m = e.leaseOne("q", id)
		// Choice: while a retry runs, Error still says why the last
		// attempt failed.
		want.State, want.Attempt, want.UpdatedAt = store.TaskRunning, 2, e.now
		tk = e.changed("leased again", tk)
		wantTask(t, "leased again", tk, want)

		// The lease expires, noticed by Tick at that very instant.
		e.set(m.LeaseExpiresAt)
		if r := e.tick(); r.Expired != 1 {
			t.Errorf("Tick %+v, want 1 expired", r)
		}
		tk = e.changed("expired", tk)
		// Choice: an expiry fails the attempt with an error of the store's
		// wording, never an empty one.
		if tk.Error == "" || tk.Error == want.Error {
			t.Errorf("error %q after an expiry, want a new, non-empty one", tk.Error)
		}
		want.State, want.Error, want.UpdatedAt = store.TaskQueued, tk.Error, e.now
		wantTask(t, "expired", tk, want)

		e.advance(5 * time.Second)
		m = e.leaseOne("q", id)
		if m.Attempt != 3 {
			t.Errorf("message attempt %d, want 3", m.Attempt)
		}
		want.State, want.Attempt, want.UpdatedAt = store.TaskRunning, 3, e.now
		tk = e.changed("third attempt", tk)
		wantTask(t, "third attempt", tk, want)

		e.advance(time.Second)
		e.ackResults("q", []string{m.Lease}, [][]byte{[]byte(`{"ok":true}`)})
		// Choice: a succeeded task has no Error, whatever its earlier
		// attempts went through.
		want = finished(want, e.now, store.TaskSucceeded, []byte(`{"ok":true}`), "")
		tk = e.changed("acked", tk)
		wantTask(t, "acked", tk, want)
		wantStats(t, "acked", e.stats("q"), store.Stats{SentTotal: 1, AckedTotal: 1})
		e.advance(time.Minute)
		e.unchanged("a minute later", tk)
	})

	t.Run("RunningOnceLeased", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.leaseNone("q") // the queue was looked at before: a store may remember it
		plain := e.sendText("q", "1")
		e.leaseOne("q", plain[0])
		id := e.sendTask("q", taskReq())
		e.leaseOne("q", id)
		if tk := e.task(id); tk.State != store.TaskRunning || tk.Attempt != 1 {
			t.Errorf("leased: %s, attempt %d; want running, 1", tk.State, tk.Attempt)
		}
	})

	t.Run("ExpiryByLease", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.VisibilityTimeout = 10 * time.Second
		e.createQueue("q", cfg)
		id := e.sendTask("q", taskReq())
		e.leaseOne("q", id)
		tk := e.task(id)
		e.set(base.Add(10 * time.Second))
		e.leaseNone("q") // noticed here: retried at +15s
		tk = e.changed("expired", tk)
		if tk.State != store.TaskQueued || tk.Attempt != 1 || tk.Error == "" {
			t.Errorf("after an expiry: %s, attempt %d, error %q; want queued, 1, an error", tk.State, tk.Attempt, tk.Error)
		}
		e.set(base.Add(15 * time.Second))
		e.leaseOne("q", id)
		if tk = e.changed("leased again", tk); tk.State != store.TaskRunning || tk.Attempt != 2 {
			t.Errorf("leased again: %s, attempt %d; want running, 2", tk.State, tk.Attempt)
		}
	})

	t.Run("ResultKeptExactly", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		id := e.sendTask("q", taskReq())
		m := e.leaseOne("q", id)
		// Choice: the result is kept byte for byte, as the worker sent it:
		// spacing, key order, number spelling, < > & and non-ASCII text.
		result := []byte("{ \"z\": [1, 2.50, 1e3],\n  \"a\": \"<b>&amp;</b> caf\u00e9 \u2028\" }")
		e.ackResults("q", []string{m.Lease}, [][]byte{result})
		if got := e.task(id).Result; !bytes.Equal(got, result) {
			t.Errorf("result\n got  %q\n want %q", got, result)
		}
	})

	t.Run("AckResultsPerLease", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.send("q", tmsg("a", taskReq()), msg("plain"), tmsg("b", taskReq()), tmsg("c", taskReq()))
		m := e.lease("q", 10)
		wantIDs(t, "lease", m, ids...)
		e.ackResults("q", leases(m[:3]), [][]byte{[]byte(`1`), []byte(`"ignored"`), nil})
		e.ackOK("q", m[3].Lease) // no Results at all
		for i, want := range [][]byte{[]byte(`1`), nil, nil, nil} {
			if i == 1 {
				e.noTask("a plain message acked with a result", ids[i])
				continue
			}
			tk := e.task(ids[i])
			if tk.State != store.TaskSucceeded || !bytes.Equal(tk.Result, want) || (want == nil) != (tk.Result == nil) {
				t.Errorf("task %d: %s with result %q (nil %v), want succeeded with %q", i, tk.State, tk.Result, tk.Result == nil, want)
			}
		}
		wantStats(t, "acked", e.stats("q"), store.Stats{SentTotal: 4, AckedTotal: 4})
	})

	t.Run("Dedup", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.DedupWindow = time.Minute
		e.createQueue("q", cfg)
		first := taskReq()
		nm := tmsg("1", first)
		nm.DedupKey = "k"
		id := e.send("q", nm)[0]
		tk := e.task(id)
		e.advance(time.Second)
		other := store.NewTask{ReplyTo: "elsewhere", ResultTTL: time.Minute}
		nm = tmsg("2", other)
		nm.DedupKey = "k"
		if res := e.sendResults("q", nm); !res[0].Duplicate || res[0].ID != id {
			t.Fatalf("second send %+v, want a duplicate of %s", res[0], id)
		}
		// A duplicate is no new task and changes nothing of the first.
		e.unchanged("after a duplicate send", tk)
	})

	t.Run("UnknownIDs", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 1
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		id := e.sendTask("q", taskReq())
		plain := e.sendText("q", "plain", "doomed")
		e.leaseFirst("q", id)
		ms := e.lease("q", 2)
		e.nackOK("q", ms[1].Lease, nil, "x") // a plain message's dead letter
		tk := e.task(id)
		bad := []string{"", "nope", "0", "-1", "00000000000000000000", "zzzzzzzzzzzzz", id + "0", id[:len(id)-1],
			" " + id, strings.Repeat("9", 1000), "\x00", "\xff\xfe", "../" + id, plain[0], plain[1]}
		for _, b := range bad {
			what := shorten(b)
			if b == plain[0] || b == plain[1] {
				what = "the id of a plain message"
			}
			e.noTask(what, b)
			_, err := e.cancelTask(b)
			wantErr(t, "CancelTask("+what+")", err, store.ErrTaskNotFound)
			_, err = e.progress(b, ms[0].Lease, 0.5, "", 0)
			wantErr(t, "Progress("+what+")", err, store.ErrTaskNotFound)
			_, err = e.s.RecordWebhook(e.ctx, &store.RecordWebhookParams{ID: b, Attempt: store.WebhookAttempt{At: e.now, Status: 200}, Delivered: true, Now: e.now})
			wantErr(t, "RecordWebhook("+what+")", err, store.ErrTaskNotFound)
		}
		e.unchanged("after calls on other ids", tk)
		if names := e.queueNames(); !slices.Equal(names, []string{"q", "q.dead"}) {
			t.Errorf("queues %v, want q and q.dead", names)
		}
	})
}
