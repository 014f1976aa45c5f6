package httpapi

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	courier "github.com/courierhq/courier"
)

const tasksURL = "/v1/queues/q/tasks"

// submit submits a task to queue q; it must answer 202 with Location.
func (f *fixture) submit(body string) courier.Task {
	f.t.Helper()
	w := f.do("POST", tasksURL, body)
	if w.Code != 202 {
		f.t.Fatalf("submit %s: %d %s", body, w.Code, w.Body)
	}
	var t courier.Task
	if err := decodeStrict(w.Body.Bytes(), &t); err != nil {
		f.t.Fatalf("submit answer %s: %v", w.Body, err)
	}
	if loc := w.Header().Get("Location"); loc != "/v1/tasks/"+t.ID {
		f.t.Fatalf("Location %q for task %q", loc, t.ID)
	}
	return t
}

// task gets a task, which must exist.
func (f *fixture) task(id string) courier.Task {
	f.t.Helper()
	w := f.do("GET", "/v1/tasks/"+id, "")
	if w.Code != 200 {
		f.t.Fatalf("get task %s: %d %s", id, w.Code, w.Body)
	}
	var t courier.Task
	if err := decodeStrict(w.Body.Bytes(), &t); err != nil {
		f.t.Fatalf("task answer %s: %v", w.Body, err)
	}
	return t
}

// take receives one message of queue q.
func (f *fixture) take() courier.Message {
	f.t.Helper()
	var res courier.ReceiveResult
	f.must("POST", recvURL, `{"max":1}`, 200, &res)
	if len(res.Messages) != 1 {
		f.t.Fatalf("received %d messages, want 1", len(res.Messages))
	}
	return res.Messages[0]
}

// TestTaskLifecycle: submit, a worker takes it and reports progress, acks
// with a result; each step shows in the task object, field by field.
func TestTaskLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t)
	sub := f.submit(`{"body":{"img":"a.png"},"headers":{"type":"resize"},"result_ttl":"1h",
		"reply_to":"answers","notify":{"url":"https://hooks.example.com/done?k=1","secret":"s3cr3t"}}`)
	want := courier.Task{ID: sub.ID, Queue: "q", State: courier.TaskQueued, CreatedAt: t0, UpdatedAt: t0,
		ReplyTo: "answers", ResultTTL: "1h0m0s",
		Webhook: &courier.TaskWebhook{URL: "https://hooks.example.com/done?k=1", Attempts: []courier.WebhookAttempt{}}}
	if got := mustJSON(t, sub); got != mustJSON(t, want) {
		t.Fatalf("submitted task\n got %s\nwant %s", got, mustJSON(t, want))
	}

	m := f.take()
	if m.ID != sub.ID || string(m.Body) != `{"img":"a.png"}` || m.Headers["type"] != "resize" {
		t.Fatalf("the worker got %+v", m)
	}
	if got := f.task(sub.ID); got.State != courier.TaskRunning || got.Attempt != 1 {
		t.Fatalf("after receive: %+v", got)
	}

	f.clk.Advance(time.Second)
	var pt courier.Task
	f.must("POST", "/v1/tasks/"+sub.ID+"/progress", `{"lease":"`+m.Lease+`","progress":0.4,"message":"resizing","visibility":"2m"}`, 200, &pt)
	if pt.State != courier.TaskRunning || pt.Progress != 0.4 || pt.ProgressMessage != "resizing" || !pt.UpdatedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("progress answer: %+v", pt)
	}
	// The progress report extended the lease to 2m from now.
	f.clk.Advance(90 * time.Second)
	f.must("POST", "/v1/queues/q/ack", `{"lease":"`+m.Lease+`","result":{"w": 640, "h":480}}`, 200, nil)

	done := f.task(sub.ID)
	fin := t0.Add(91 * time.Second)
	if done.State != courier.TaskSucceeded || string(done.Result) != `{"w":640,"h":480}` || done.Error != "" ||
		done.FinishedAt == nil || !done.FinishedAt.Equal(fin) || done.Progress != 0.4 {
		t.Fatalf("finished task: %+v (result %s)", done, done.Result)
	}
	if wh := done.Webhook; wh == nil || !wh.Pending || wh.Delivered || wh.NextAttemptAt == nil || !wh.NextAttemptAt.Equal(fin) {
		t.Fatalf("webhook of the finished task: %+v", wh)
	}
	// The reply went to reply_to, with the task's id in its header.
	var res courier.ReceiveResult
	f.must("POST", "/v1/queues/answers/receive", "", 200, &res)
	if len(res.Messages) != 1 || res.Messages[0].Headers["courier-task-id"] != sub.ID ||
		res.Messages[0].Headers["courier-task-state"] != "succeeded" {
		t.Fatalf("reply: %+v", res.Messages)
	}
	// The secret is never in an answer.
	for _, path := range []string{"/v1/tasks/" + sub.ID, "/v1/tasks/" + sub.ID + "/events"} {
		if w := f.do("GET", path, ""); w.Code != 200 || strings.Contains(w.Body.String(), "s3cr3t") {
			t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
		}
	}
	// After result_ttl the task is gone.
	f.clk.Advance(time.Hour)
	badCase{method: "GET", url: "/v1/tasks/" + sub.ID, status: 404, code: courier.CodeTaskNotFound, msg: sub.ID}.run(t, f)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTaskWaitWokenByAck: GET with a long wait answers as soon as the ack
// lands. The clock is fake and never moves, so only the ack can end it.
func TestTaskWaitWokenByAck(t *testing.T) {
	t.Parallel()
	f := setup(t)
	sub := f.submit(`{"body":1}`)
	m := f.take()
	added := f.clk.TimerAdded() // before the GET, so its timer cannot slip by
	got := make(chan courier.Task, 1)
	go func() {
		var tk courier.Task
		w := f.do("GET", "/v1/tasks/"+sub.ID+"?wait=60s", "")
		if w.Code == 200 {
			_ = json.Unmarshal(w.Body.Bytes(), &tk)
		}
		got <- tk
	}()
	<-added // the GET is waiting
	f.must("POST", "/v1/queues/q/ack", `{"lease":"`+m.Lease+`","result":"done"}`, 200, nil)
	if tk := <-got; tk.State != courier.TaskSucceeded || string(tk.Result) != `"done"` {
		t.Fatalf("long-poll answered %+v", tk)
	}
	// A finished task answers a waiting GET at once.
	w := f.do("GET", "/v1/tasks/"+sub.ID+"?wait=60s", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"state":"succeeded"`) {
		t.Fatalf("GET of a finished task: %d %s", w.Code, w.Body)
	}
}

// TestTaskWaitCancelled: a waiting GET whose context ends (the server
// stopping) answers the task as it is.
func TestTaskWaitCancelled(t *testing.T) {
	t.Parallel()
	f := setup(t)
	sub := f.submit(`{"body":1}`)
	ctx, cancel := context.WithCancel(context.Background())
	added := f.clk.TimerAdded()
	go func() {
		<-added
		cancel()
	}()
	w := f.doCtx(ctx, "GET", "/v1/tasks/"+sub.ID+"?wait=30s", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"state":"queued"`) {
		t.Fatalf("cancelled wait: %d %s", w.Code, w.Body)
	}
}

// TestAckResults: a batch ack records each task's result by index; a null
// result is a result; a message that is not a task is acked as usual.
func TestAckResults(t *testing.T) {
	t.Parallel()
	f := setup(t)
	a, b := f.submit(`{"body":"a"}`), f.submit(`{"body":"b"}`)
	f.must("POST", sendURL, `{"body":"plain"}`, 201, nil)
	var res courier.ReceiveResult
	f.must("POST", recvURL, `{"max":3}`, 200, &res)
	if len(res.Messages) != 3 {
		t.Fatalf("received %d", len(res.Messages))
	}
	leases := `"` + res.Messages[0].Lease + `","` + res.Messages[1].Lease + `","` + res.Messages[2].Lease + `"`
	var ar courier.AckResult
	f.must("POST", "/v1/queues/q/ack", `{"leases":[`+leases+`],"results":[[1, 2],null,{"x":1}]}`, 200, &ar)
	if ar.Acked != 3 || ar.Failed != nil {
		t.Fatalf("ack: %+v", ar)
	}
	if ta := f.task(a.ID); ta.State != courier.TaskSucceeded || string(ta.Result) != `[1,2]` {
		t.Fatalf("task a: %+v %s", ta, ta.Result)
	}
	w := f.do("GET", "/v1/tasks/"+b.ID, "")
	if !strings.Contains(w.Body.String(), `"state":"succeeded"`) || !strings.Contains(w.Body.String(), `"result":null`) {
		t.Fatalf("task b (null result): %s", w.Body)
	}
	// Without a result, the task succeeds without one.
	c := f.submit(`{"body":"c"}`)
	f.must("POST", "/v1/queues/q/ack", `{"lease":"`+f.take().Lease+`"}`, 200, nil)
	if w := f.do("GET", "/v1/tasks/"+c.ID, ""); strings.Contains(w.Body.String(), `"result"`) ||
		!strings.Contains(w.Body.String(), `"state":"succeeded"`) {
		t.Fatalf("task c: %s", w.Body)
	}
}

// TestTerminate: a terminated task's message is dead-lettered at once, on
// its first attempt, and the task ends failed with the reason.
func TestTerminate(t *testing.T) {
	t.Parallel()
	f := setup(t)
	sub := f.submit(`{"body":1}`)
	m := f.take()
	var nr courier.NackResult
	f.must("POST", "/v1/queues/q/nack", `{"lease":"`+m.Lease+`","terminate":true,"error":"image is corrupt"}`, 200, &nr)
	if !nr.DeadLettered || nr.RetryAt != nil {
		t.Fatalf("terminate answered %+v", nr)
	}
	if tk := f.task(sub.ID); tk.State != courier.TaskFailed || tk.Error != "image is corrupt" || tk.FinishedAt == nil || tk.Attempt != 1 {
		t.Fatalf("terminated task: %+v", tk)
	}
	var res courier.ReceiveResult
	f.must("POST", "/v1/queues/q.dead/receive", "", 200, &res)
	if len(res.Messages) != 1 || res.Messages[0].Headers["courier-dead-reason"] != "terminated" ||
		res.Messages[0].Headers["courier-error"] != "image is corrupt" {
		t.Fatalf("dead letter: %+v", res.Messages)
	}
	// A nack with an error (not terminate) keeps the task going, error shown.
	sub2 := f.submit(`{"body":2}`)
	f.must("POST", "/v1/queues/q/nack", `{"lease":"`+f.take().Lease+`","error":"busy","delay":"1m"}`, 200, nil)
	if tk := f.task(sub2.ID); tk.State != courier.TaskQueued || tk.Error != "busy" || tk.FinishedAt != nil {
		t.Fatalf("nacked task: %+v", tk)
	}
}

// TestRelease: a released message is ready again at once, or after its
// delay, and its next delivery has the same attempt; a task goes back to
// queued with its error kept. Refusals are in TestBadTaskCalls.
func TestRelease(t *testing.T) {
	t.Parallel()
	f := setup(t)
	sub := f.submit(`{"body":1}`)
	f.must("POST", "/v1/queues/q/nack", `{"lease":"`+f.take().Lease+`","error":"flaky","delay":"0s"}`, 200, nil)
	m := f.take()
	var nr courier.NackResult
	f.must("POST", "/v1/queues/q/nack", `{"lease":"`+m.Lease+`","release":true}`, 200, &nr)
	if nr.DeadLettered || nr.RetryAt == nil || !nr.RetryAt.Equal(t0) {
		t.Fatalf("release answered %+v; want retry_at now", nr)
	}
	if tk := f.task(sub.ID); tk.State != courier.TaskQueued || tk.Attempt != 1 || tk.Error != "flaky" {
		t.Fatalf("released task: %+v; want queued, attempt 1, its error kept", tk)
	}
	again := f.take()
	if again.ID != m.ID || again.Attempt != m.Attempt {
		t.Fatalf("after the release: %s attempt %d; want %s attempt %d again", again.ID, again.Attempt, m.ID, m.Attempt)
	}
	f.must("POST", "/v1/queues/q/nack", `{"lease":"`+again.Lease+`","release":true,"delay":"1m"}`, 200, &nr)
	if nr.RetryAt == nil || !nr.RetryAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("release with a delay answered %+v", nr)
	}
	if q := f.queue("q"); q.Stats.Delayed != 1 || q.Stats.InFlight != 0 {
		t.Fatalf("stats after a delayed release: %+v", q.Stats)
	}
	// A task whose cancel was requested ends cancelled instead, and says so.
	sub2 := f.submit(`{"body":2}`)
	m = f.take()
	f.must("POST", "/v1/tasks/"+sub2.ID+"/cancel", "", 200, nil)
	if w := f.do("POST", "/v1/queues/q/nack", `{"lease":"`+m.Lease+`","release":true}`); w.Code != 200 ||
		w.Body.String() != "{\"dead_lettered\":false,\"cancelled\":true}\n" {
		t.Fatalf("release of a cancel-requested task: %d %s", w.Code, w.Body)
	}
	if tk := f.task(sub2.ID); tk.State != courier.TaskCancelled {
		t.Fatalf("released task after its cancel request: %+v", tk)
	}
}

// TestCancelTask: a queued task is cancelled at once (its message is gone);
// a running one is marked, and its worker learns it on its next progress
// report or extend (409 conflict), which ends it.
func TestCancelTask(t *testing.T) {
	t.Parallel()
	f := setup(t)
	queued := f.submit(`{"body":"q"}`)
	var ct courier.Task
	f.must("POST", "/v1/tasks/"+queued.ID+"/cancel", "", 200, &ct)
	if ct.State != courier.TaskCancelled || ct.FinishedAt == nil || ct.CancelRequested {
		t.Fatalf("cancelled queued task: %+v", ct)
	}
	if q := f.queue("q"); q.Stats.Ready != 0 {
		t.Fatalf("the cancelled task's message is still there: %+v", q.Stats)
	}

	running := f.submit(`{"body":"r"}`)
	m := f.take()
	ct = courier.Task{} // must decodes into it, keeping what the answer leaves out
	f.must("POST", "/v1/tasks/"+running.ID+"/cancel", "{}", 200, &ct)
	if ct.State != courier.TaskRunning || !ct.CancelRequested || ct.FinishedAt != nil {
		t.Fatalf("cancel of a running task: %+v", ct)
	}
	badCase{method: "POST", url: "/v1/tasks/" + running.ID + "/progress", body: `{"lease":"` + m.Lease + `","progress":0.5}`,
		status: 409, code: courier.CodeConflict, msg: "the task was cancelled"}.run(t, f)
	if tk := f.task(running.ID); tk.State != courier.TaskCancelled || tk.FinishedAt == nil {
		t.Fatalf("after the worker learnt it: %+v", tk)
	}
	// Its lease is gone with it.
	badCase{method: "POST", url: "/v1/queues/q/ack", body: `{"lease":"` + m.Lease + `"}`,
		status: 409, code: courier.CodeLeaseExpired, msg: "lease"}.run(t, f)
	// The same through extend.
	third := f.submit(`{"body":"x"}`)
	m = f.take()
	f.must("POST", "/v1/tasks/"+third.ID+"/cancel", "", 200, nil)
	badCase{method: "POST", url: "/v1/queues/q/extend", body: `{"lease":"` + m.Lease + `"}`,
		status: 409, code: courier.CodeConflict, msg: "cancelled"}.run(t, f)
	// Cancelling a finished task changes nothing.
	f.must("POST", "/v1/tasks/"+third.ID+"/cancel", "", 200, &ct)
	if ct.State != courier.TaskCancelled {
		t.Fatalf("second cancel: %+v", ct)
	}
}

// TestBadTaskCalls: malformed task calls are refused with a clear 4xx and
// change nothing.
func TestBadTaskCalls(t *testing.T) {
	t.Parallel()
	f := setup(t)
	sub := f.submit(`{"body":1}`)
	f.submit(`{"body":2}`)
	var res courier.ReceiveResult
	f.must("POST", recvURL, `{"max":2}`, 200, &res)
	lease, lease2 := res.Messages[0].Lease, res.Messages[1].Lease
	id := sub.ID
	l := func(s string) string {
		return strings.NewReplacer("LEASE2", lease2, "LEASE", lease, "ID", id).Replace(s)
	}
	big := `"` + strings.Repeat("x", 1<<20) + `"`
	notFound := courier.CodeTaskNotFound
	cases := []badCase{
		{name: "get unknown", method: "GET", url: "/v1/tasks/1HTSM7550ZFT2", status: 404, code: notFound, msg: `task "1HTSM7550ZFT2" does not exist`},
		{name: "get malformed id", method: "GET", url: "/v1/tasks/not-an-id", status: 404, code: notFound, msg: "not-an-id"},
		{name: "events unknown", method: "GET", url: "/v1/tasks/nope/events", status: 404, code: notFound, msg: "nope"},
		{name: "cancel unknown", url: "/v1/tasks/nope/cancel", status: 404, code: notFound, msg: "nope"},
		{name: "progress unknown", url: "/v1/tasks/1HTSM7550ZFT2/progress", body: l(`{"lease":"LEASE","progress":0.5}`), status: 404, code: notFound, msg: "does not exist"},
		{name: "get wait 61s", method: "GET", url: "/v1/tasks/ID?wait=61s", msg: "wait must be"},
		{name: "get wait syntax", method: "GET", url: "/v1/tasks/ID?wait=soon", msg: "wait must be a duration"},
		{name: "get unknown query", method: "GET", url: "/v1/tasks/ID?wiat=1s", msg: `unknown query parameter "wiat"`},
		{name: "get wait twice", method: "GET", url: "/v1/tasks/ID?wait=1s&wait=2s", msg: "2 times"},
		{name: "events query", method: "GET", url: "/v1/tasks/ID/events?since=3", msg: `unknown query parameter "since"`},
		{name: "progress 1.5", url: "/v1/tasks/ID/progress", body: `{"lease":"LEASE","progress":1.5}`, msg: "progress must be 0 to 1, got 1.5"},
		{name: "progress negative", url: "/v1/tasks/ID/progress", body: `{"lease":"LEASE","progress":-0.1}`, msg: "progress must be 0 to 1"},
		{name: "progress missing", url: "/v1/tasks/ID/progress", body: `{"lease":"LEASE","message":"hi"}`, msg: "progress is required"},
		{name: "progress type", url: "/v1/tasks/ID/progress", body: `{"lease":"LEASE","progress":"half"}`, msg: `"progress" must be a number`},
		{name: "progress no lease", url: "/v1/tasks/ID/progress", body: `{"progress":0.5}`, msg: "lease is required"},
		{name: "progress forged lease", url: "/v1/tasks/ID/progress", body: `{"lease":"forged","progress":0.5}`, msg: "not a lease token"},
		{name: "progress other task's lease", url: "/v1/tasks/ID/progress", body: `{"lease":"LEASE2","progress":0.5}`, status: 409, code: courier.CodeLeaseExpired, msg: "lease"},
		{name: "progress message too long", url: "/v1/tasks/ID/progress", body: `{"lease":"LEASE","progress":0.5,"message":"` + strings.Repeat("m", 1025) + `"}`, msg: "message"},
		{name: "progress visibility", url: "/v1/tasks/ID/progress", body: `{"lease":"LEASE","progress":0.5,"visibility":"13h"}`, msg: "visibility must be"},
		{name: "progress unknown field", url: "/v1/tasks/ID/progress", body: `{"lease":"LEASE","progress":0.5,"pct":50}`, msg: `unknown field "pct"`},
		{name: "cancel with body", url: "/v1/tasks/ID/cancel", body: `{"reason":"x"}`, msg: `unknown field "reason"`},
		{name: "ack result over limit", url: "/v1/queues/q/ack", body: `{"lease":"LEASE","result":` + big + `}`, status: 413, code: tooLarge, msg: "result is 1048578 bytes"},
		{name: "ack results over limit", url: "/v1/queues/q/ack", body: `{"leases":["LEASE"],"results":[` + big + `]}`, status: 413, code: tooLarge, msg: "the server allows 1048576"},
		{name: "ack results length", url: "/v1/queues/q/ack", body: `{"leases":["LEASE","LEASE2"],"results":[1]}`, msg: "one result per lease: 2 leases, 1 results"},
		{name: "ack results empty", url: "/v1/queues/q/ack", body: `{"leases":["LEASE"],"results":[]}`, msg: "one result per lease"},
		{name: "ack result with leases", url: "/v1/queues/q/ack", body: `{"leases":["LEASE"],"result":1}`, msg: "results"},
		{name: "ack results with lease", url: "/v1/queues/q/ack", body: `{"lease":"LEASE","results":[1]}`, msg: "result"},
		{name: "ack result not JSON", url: "/v1/queues/q/ack", body: `{"lease":"LEASE","result":tru}`, msg: "not valid JSON"},
		{name: "nack terminate with delay", url: "/v1/queues/q/nack", body: `{"lease":"LEASE","terminate":true,"delay":"5s"}`, msg: "terminate"},
		{name: "nack terminate type", url: "/v1/queues/q/nack", body: `{"lease":"LEASE","terminate":"yes"}`, msg: `"terminate" must be true or false`},
		{name: "release with terminate", url: "/v1/queues/q/nack", body: `{"lease":"LEASE","release":true,"terminate":true}`, msg: "release and terminate exclude each other"},
		{name: "release with error", url: "/v1/queues/q/nack", body: `{"lease":"LEASE","release":true,"error":"stopping"}`, msg: "it takes no error"},
		{name: "release delay", url: "/v1/queues/q/nack", body: `{"lease":"LEASE","release":true,"delay":"-1s"}`, msg: "delay"},
		{name: "release type", url: "/v1/queues/q/nack", body: `{"lease":"LEASE","release":1}`, msg: `"release" must be true or false`},
		{name: "release stale lease", url: "/v1/queues/q/nack", body: `{"lease":"GOs0OUoPv0JP7evg2_Vrvg","release":true}`, status: 409, code: courier.CodeLeaseExpired, msg: "lease"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.method == "" {
				c.method = "POST"
			}
			if c.status == 0 {
				c.status, c.code = 400, inv
			}
			c.url, c.body = l(c.url), l(c.body)
			before := f.task(id)
			c.run(t, f)
			if after := f.task(id); mustJSON(t, after) != mustJSON(t, before) {
				t.Fatalf("task changed: %+v → %+v", before, after)
			}
		})
	}
	// The leases still work after all that.
	f.must("POST", "/v1/queues/q/ack", l(`{"leases":["LEASE","LEASE2"]}`), 200, nil)
}

// TestBadSubmits: malformed submits are refused and store nothing.
func TestBadSubmits(t *testing.T) {
	t.Parallel()
	f := setupWith(t, Options{MaxRequestBytes: 64 << 10})
	f.must("PUT", "/v1/queues/q", `{"max_message_bytes":100}`, 200, nil)
	before := f.queue("q")
	long := "https://example.com/" + strings.Repeat("p", 2048)
	cases := []badCase{
		{name: "no body", body: `{"reply_to":"r"}`, msg: "needs body"},
		{name: "empty request", body: ``, contentType: "-", msg: "needs body"},
		{name: "batch", body: `{"messages":[{"body":1}]}`, msg: `unknown field "messages"`},
		{name: "unknown field", body: `{"body":1,"callback":"x"}`, msg: `unknown field "callback"`},
		{name: "notify ftp", body: `{"body":1,"notify":{"url":"ftp://example.com/x"}}`, msg: "notify.url must be an http:// or https:// URL"},
		{name: "notify relative", body: `{"body":1,"notify":{"url":"/hook"}}`, msg: "notify.url must be"},
		{name: "notify javascript", body: `{"body":1,"notify":{"url":"javascript:alert(1)"}}`, msg: "notify.url must be"},
		{name: "notify credentials", body: `{"body":1,"notify":{"url":"https://u:p@example.com/"}}`, msg: "without credentials"},
		{name: "notify too long", body: `{"body":1,"notify":{"url":"` + long + `"}}`, msg: "notify.url is at most 2048 bytes"},
		{name: "notify no url", body: `{"body":1,"notify":{"secret":"s"}}`, msg: "notify.url is required"},
		{name: "notify secret too long", body: `{"body":1,"notify":{"url":"https://example.com/","secret":"` + strings.Repeat("s", 257) + `"}}`, msg: "notify.secret"},
		{name: "notify type", body: `{"body":1,"notify":"https://example.com/"}`, msg: `"notify" must be an object`},
		{name: "notify unknown field", body: `{"body":1,"notify":{"url":"https://example.com/","token":"x"}}`, msg: `unknown field "token"`},
		{name: "reply_to bad name", body: `{"body":1,"reply_to":"no way"}`, msg: "reply_to"},
		{name: "result_ttl syntax", body: `{"body":1,"result_ttl":"a day"}`, msg: "result_ttl must be a duration"},
		{name: "result_ttl short", body: `{"body":1,"result_ttl":"10ms"}`, msg: "result_ttl must be"},
		{name: "result_ttl long", body: `{"body":1,"result_ttl":"1000h"}`, msg: "result_ttl must be"},
		{name: "priority", body: `{"body":1,"priority":101}`, msg: "priority must be -100 to 100"},
		{name: "over queue limit", body: `{"body":"` + strings.Repeat("x", 200) + `"}`, status: 413, code: tooLarge, msg: "the queue allows 100"},
		{name: "over server limit", body: `{"body":"` + strings.Repeat("x", 70<<10) + `"}`, status: 413, code: tooLarge, msg: "larger than 65536 bytes"},
		{name: "bad queue name", url: "/v1/queues/a%20b/tasks", body: `{"body":1}`, msg: "outside A-Z"},
		{name: "batch empty", body: `{"tasks":[]}`, msg: "tasks must hold 1 to 1000 tasks, got 0"},
		{name: "batch too many", body: `{"tasks":[` + strings.Repeat(`{"body":1},`, 1000) + `{"body":1}]}`, msg: "tasks must hold 1 to 1000 tasks, got 1001"},
		{name: "batch mixed", body: `{"body":1,"tasks":[{"body":1}]}`, msg: `a batch submit has only the field "tasks"`},
		{name: "batch mixed notify", body: `{"notify":{"url":"https://example.com/"},"tasks":[{"body":1}]}`, msg: `a batch submit has only the field "tasks"`},
		{name: "batch no body", body: `{"tasks":[{"body":1},{"reply_to":"r"}]}`, msg: "tasks[1]: a message needs body"},
		{name: "batch bad reply_to", body: `{"tasks":[{"body":1},{"body":1,"reply_to":"no way"}]}`, msg: "tasks[1]: reply_to"},
		{name: "batch bad priority", body: `{"tasks":[{"body":1},{"body":2},{"body":1,"priority":101}]}`, msg: "tasks[2]: priority must be -100 to 100"},
		{name: "batch over queue limit", body: `{"tasks":[{"body":1},{"body":"` + strings.Repeat("x", 200) + `"}]}`, status: 413, code: tooLarge, msg: "tasks[1]"},
		{name: "batch unknown field", body: `{"tasks":[{"body":1,"callback":"x"}]}`, msg: `unknown field "callback"`},
		{name: "text content type", contentType: "text/plain", body: `{"body":1}`, msg: "Content-Type must be application/json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.method = "POST"
			if c.url == "" {
				c.url = tasksURL
			}
			if c.status == 0 {
				c.status, c.code = 400, inv
			}
			c.run(t, f)
			if after := f.queue("q"); after.Stats != before.Stats {
				t.Fatalf("stats changed: %+v → %+v", before.Stats, after.Stats)
			}
		})
	}
	if names := f.queueNames(); len(names) != 1 {
		t.Fatalf("queues after bad submits: %v", names)
	}
}

// TestSubmitDedup: a second submit with the same dedup key answers the
// first task.
func TestSubmitDedup(t *testing.T) {
	t.Parallel()
	f := setup(t)
	a := f.submit(`{"body":1,"dedup_key":"k"}`)
	b := f.submit(`{"body":2,"dedup_key":"k"}`)
	if a.ID != b.ID || f.queue("q").Stats.Ready != 1 {
		t.Fatalf("dedup: %s and %s", a.ID, b.ID)
	}
}

// TestSubmitBatch: {"tasks": [...]} stores every task, answers them in order
// with 202 and no Location, and each is a task like a single submit's.
func TestSubmitBatch(t *testing.T) {
	t.Parallel()
	f := setup(t)
	w := f.do("POST", tasksURL, `{"tasks":[{"body":{"n":0},"reply_to":"answers"},{"body":{"n":1},"result_ttl":"1h"},
		{"body_base64":"AAE=","dedup_key":"k"},{"body":3,"dedup_key":"k"}]}`)
	if w.Code != 202 || w.Header().Get("Location") != "" {
		t.Fatalf("batch submit: %d Location %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	var got courier.TaskList
	if err := decodeStrict(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("answer %s: %v", w.Body, err)
	}
	if len(got.Tasks) != 4 {
		t.Fatalf("answered %d tasks, want 4", len(got.Tasks))
	}
	ts := got.Tasks
	if ts[0].ReplyTo != "answers" || ts[1].ResultTTL != "1h0m0s" || ts[0].ResultTTL != "24h0m0s" {
		t.Fatalf("task fields: %+v / %+v", ts[0], ts[1])
	}
	// The dedup key repeats within the batch: the second is the first.
	if ts[2].ID != ts[3].ID || ts[0].ID == ts[1].ID || ts[1].ID == ts[2].ID {
		t.Fatalf("ids %s %s %s %s", ts[0].ID, ts[1].ID, ts[2].ID, ts[3].ID)
	}
	for _, tk := range ts {
		if stored := f.task(tk.ID); mustJSON(t, stored) != mustJSON(t, tk) || stored.State != courier.TaskQueued {
			t.Fatalf("stored task %+v, answered %+v", stored, tk)
		}
	}
	if n := f.queue("q").Stats.Ready; n != 3 {
		t.Fatalf("ready = %d, want 3", n)
	}
	// Delivered in order, and each one finishes its own task.
	for i, want := range []string{`{"n":0}`, `{"n":1}`, `"AAE="`} {
		m := f.take()
		body := string(m.Body)
		if m.BodyBase64 != nil {
			body = `"` + *m.BodyBase64 + `"`
		}
		if m.ID != ts[i].ID || body != want {
			t.Fatalf("message %d: %s %s, want %s %s", i, m.ID, body, ts[i].ID, want)
		}
		f.must("POST", "/v1/queues/q/ack", `{"lease":"`+m.Lease+`","result":`+strconv.Itoa(i)+`}`, 200, nil)
		if tk := f.task(m.ID); tk.State != courier.TaskSucceeded || string(tk.Result) != strconv.Itoa(i) {
			t.Fatalf("task %d after ack: %+v", i, tk)
		}
	}
}
