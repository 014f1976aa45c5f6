package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/httpapi"
	"github.com/courierhq/courier/internal/server"
)

// request sends body (JSON text, "" for none) with extra headers and
// returns the answer with its body read.
func (c *client) request(ctx context.Context, method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp, data
}

// submit submits a task; it must answer 202 with the task's Location.
func (c *client) submit(queue, body string) courier.Task {
	c.t.Helper()
	resp, data := c.request(context.Background(), "POST", "/v1/queues/"+queue+"/tasks", body, nil)
	var tk courier.Task
	if resp.StatusCode != 202 || json.Unmarshal(data, &tk) != nil || tk.ID == "" {
		c.t.Fatalf("submit: %d %s", resp.StatusCode, data)
	}
	if loc := resp.Header.Get("Location"); loc != "/v1/tasks/"+tk.ID {
		c.t.Fatalf("Location %q for task %s", loc, tk.ID)
	}
	return tk
}

func (c *client) task(id, query string) courier.Task {
	c.t.Helper()
	var tk courier.Task
	c.must("GET", "/v1/tasks/"+id+query, nil, 200, &tk)
	return tk
}

// events follows a task's event stream with a plain HTTP client and a line
// parser, as any SSE client would.
type events struct {
	t    *testing.T
	resp *http.Response
	ch   <-chan httpapi.SSEEvent
}

func (c *client) events(id string, hdr map[string]string) *events {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), "GET", c.base+"/v1/tasks/"+id+"/events", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		c.t.Fatalf("events: %d %v", resp.StatusCode, resp.Header)
	}
	e := &events{t: c.t, resp: resp, ch: httpapi.SSEStream(resp.Body)}
	c.t.Cleanup(func() {
		resp.Body.Close()
		for range e.ch {
		}
	})
	return e
}

// next is the next event's task, comments skipped; the stream must not end.
func (e *events) next() (courier.Task, string) {
	e.t.Helper()
	for ev := range e.ch {
		if ev.Comment != "" {
			continue
		}
		var tk courier.Task
		if err := json.Unmarshal([]byte(ev.Data), &tk); err != nil {
			e.t.Fatalf("event data %q: %v", ev.Data, err)
		}
		return tk, ev.ID
	}
	e.t.Fatal("the event stream ended early")
	return courier.Task{}, ""
}

// eof requires the stream to end without another event.
func (e *events) eof() {
	e.t.Helper()
	for ev := range e.ch {
		if ev.Comment == "" {
			e.t.Fatalf("an event after the final one: %+v", ev)
		}
	}
}

// TestE2ETaskRoundTrip: submit (202 + Location), a listener on the event
// stream, a worker that takes the task, reports progress and acks with a
// result; a GET waiting 60s answers as soon as the ack lands (the clock is
// fake and never moves, so nothing else can end the wait); the outcome also
// reaches the reply_to queue.
func TestE2ETaskRoundTrip(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
	c := startWith(t, fake)
	sub := c.submit("img", `{"body":{"src":"a.png"},"reply_to":"img.replies","result_ttl":"1h"}`)
	if sub.State != courier.TaskQueued || sub.Queue != "img" || sub.ReplyTo != "img.replies" || sub.ResultTTL != "1h0m0s" {
		t.Fatalf("submitted: %+v", sub)
	}
	ev := c.events(sub.ID, nil)
	if tk, _ := ev.next(); tk.State != courier.TaskQueued {
		t.Fatalf("first event: %+v", tk)
	}

	msgs := c.receive("img", courier.ReceiveRequest{})
	if len(msgs) != 1 || msgs[0].ID != sub.ID || string(msgs[0].Body) != `{"src":"a.png"}` {
		t.Fatalf("worker received %+v", msgs)
	}
	lease := msgs[0].Lease
	if tk, _ := ev.next(); tk.State != courier.TaskRunning || tk.Attempt != 1 {
		t.Fatalf("running event: %+v", tk)
	}
	var pt courier.Task
	c.must("POST", "/v1/tasks/"+sub.ID+"/progress", courier.ProgressRequest{Lease: lease, Progress: 0.5, Message: "resizing"}, 200, &pt)
	if pt.Progress != 0.5 {
		t.Fatalf("progress answer: %+v", pt)
	}
	if tk, _ := ev.next(); tk.Progress != 0.5 || tk.ProgressMessage != "resizing" {
		t.Fatalf("progress event: %+v", tk)
	}

	type got struct {
		tk      courier.Task
		elapsed time.Duration
	}
	waited := make(chan got, 1)
	timers := fake.Timers() // the server's own loops; the waiting GET adds one
	go func() {
		start := time.Now()
		_, data := c.request(context.Background(), "GET", "/v1/tasks/"+sub.ID+"?wait=60s", "", nil)
		var tk courier.Task
		_ = json.Unmarshal(data, &tk)
		waited <- got{tk, time.Since(start)}
	}()
	waitTimers(t, fake, timers+1)
	c.must("POST", "/v1/queues/img/ack", courier.AckRequest{Lease: lease, Result: json.RawMessage(`{"w":640}`)}, 200, nil)
	g := <-waited
	if g.tk.State != courier.TaskSucceeded || string(g.tk.Result) != `{"w":640}` || g.tk.FinishedAt == nil {
		t.Fatalf("long-poll answered %+v", g.tk)
	}
	if g.elapsed > 15*time.Second {
		t.Fatalf("long-poll answered after %v, not at the ack", g.elapsed)
	}
	if tk, _ := ev.next(); tk.State != courier.TaskSucceeded || string(tk.Result) != `{"w":640}` {
		t.Fatalf("final event: %+v", tk)
	}
	ev.eof()

	replies := c.receive("img.replies", courier.ReceiveRequest{})
	if len(replies) != 1 || replies[0].Headers["courier-task-id"] != sub.ID ||
		replies[0].Headers["courier-task-state"] != "succeeded" || !strings.Contains(string(replies[0].Body), `"w":640`) {
		t.Fatalf("reply: %+v", replies)
	}
}

// waitTimers returns once the fake clock holds n timers (a long-poll is
// waiting on one).
func waitTimers(t *testing.T, fake *clock.Fake, n int) {
	t.Helper()
	guard := time.After(30 * time.Second)
	for {
		added := fake.TimerAdded() // before counting, so no timer slips between
		if fake.Timers() >= n {
			return
		}
		select {
		case <-added:
		case <-guard:
			t.Fatalf("no long-poll is waiting (%d timers, want %d)", fake.Timers(), n)
		}
	}
}

// TestE2EEventsEndAtStop: a server that stops ends its open event streams
// promptly (Stop waits for every handler, so a stream that did not end would
// make it wait for its deadline and fail).
func TestE2EEventsEndAtStop(t *testing.T) {
	t.Parallel()
	s, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), MinFreeBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	c := &client{t: t, base: s.URL(), hc: hc}
	sub := c.submit("stop", `{"body":1}`)
	ev := c.events(sub.ID, nil)
	ev.next()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop with an open event stream: %v", err)
	}
	ev.eof()
}

// TestE2ETaskFinishedBeforeListening: a task that finished before anyone
// asked is still reported by a GET, a waiting GET (at once) and the event
// stream (its final state at once, then the end); resuming after the final
// event answers 204.
func TestE2ETaskFinishedBeforeListening(t *testing.T) {
	t.Parallel()
	c := start(t)
	sub := c.submit("early", `{"body":1}`)
	m := c.receive("early", courier.ReceiveRequest{})[0]
	c.must("POST", "/v1/queues/early/ack", `{"lease":"`+m.Lease+`","result":"done"}`, 200, nil)

	if tk := c.task(sub.ID, ""); tk.State != courier.TaskSucceeded || string(tk.Result) != `"done"` {
		t.Fatalf("GET: %+v", tk)
	}
	start := time.Now()
	if tk := c.task(sub.ID, "?wait=60s"); tk.State != courier.TaskSucceeded || time.Since(start) > 15*time.Second {
		t.Fatalf("GET with wait: %+v after %v", tk, time.Since(start))
	}
	ev := c.events(sub.ID, nil)
	tk, id := ev.next()
	if tk.State != courier.TaskSucceeded || string(tk.Result) != `"done"` {
		t.Fatalf("event: %+v", tk)
	}
	ev.eof()
	resp, _ := c.request(context.Background(), "GET", "/v1/tasks/"+sub.ID+"/events", "", map[string]string{"Last-Event-ID": id})
	if resp.StatusCode != 204 {
		t.Fatalf("resume after the end: %d", resp.StatusCode)
	}
	// An unknown task answers 404 JSON, on every task route.
	for _, p := range []string{"/v1/tasks/nope", "/v1/tasks/nope/events"} {
		var eb courier.ErrorBody
		c.must("GET", p, nil, 404, &eb)
		if eb.Error.Code != courier.CodeTaskNotFound {
			t.Fatalf("GET %s: %+v", p, eb)
		}
	}
}

// TestE2ETaskResume: a listener that reconnects with Last-Event-ID gets
// the current state at once when the task changed while it was away.
func TestE2ETaskResume(t *testing.T) {
	t.Parallel()
	c := start(t)
	sub := c.submit("res", `{"body":1}`)
	ev := c.events(sub.ID, nil)
	_, id := ev.next()
	ev.resp.Body.Close()

	m := c.receive("res", courier.ReceiveRequest{})[0] // a change while away
	ev = c.events(sub.ID, map[string]string{"Last-Event-ID": id})
	if tk, id2 := ev.next(); tk.State != courier.TaskRunning || id2 == id {
		t.Fatalf("resumed: %s %+v", id2, tk)
	}
	c.must("POST", "/v1/queues/res/nack", courier.NackRequest{Lease: m.Lease, Terminate: true, Error: "unreadable input"}, 200, nil)
	if tk, _ := ev.next(); tk.State != courier.TaskFailed || tk.Error != "unreadable input" {
		t.Fatalf("final: %+v", tk)
	}
	ev.eof()
}

// TestE2ECancel: a queued task is cancelled at once; a running one is
// marked, and its worker's next progress report answers 409 conflict and
// ends it.
func TestE2ECancel(t *testing.T) {
	t.Parallel()
	c := start(t)
	queued := c.submit("cx", `{"body":1,"delay":"1h"}`)
	var tk courier.Task
	c.must("POST", "/v1/tasks/"+queued.ID+"/cancel", nil, 200, &tk)
	if tk.State != courier.TaskCancelled || tk.FinishedAt == nil {
		t.Fatalf("cancel queued: %+v", tk)
	}
	if s := c.stats("cx"); s.Delayed != 0 || s.Ready != 0 {
		t.Fatalf("the cancelled task's message remains: %+v", s)
	}

	running := c.submit("cx", `{"body":2}`)
	m := c.receive("cx", courier.ReceiveRequest{})[0]
	tk = courier.Task{}
	c.must("POST", "/v1/tasks/"+running.ID+"/cancel", nil, 200, &tk)
	if tk.State != courier.TaskRunning || !tk.CancelRequested {
		t.Fatalf("cancel running: %+v", tk)
	}
	var eb courier.ErrorBody
	c.must("POST", "/v1/tasks/"+running.ID+"/progress", courier.ProgressRequest{Lease: m.Lease, Progress: 0.1}, 409, &eb)
	if eb.Error.Code != courier.CodeConflict || !strings.Contains(eb.Error.Message, "cancelled") {
		t.Fatalf("progress of a cancelled task: %+v", eb)
	}
	if tk := c.task(running.ID, "?wait=1s"); tk.State != courier.TaskCancelled || tk.CancelRequested {
		t.Fatalf("after the worker learnt it: %+v", tk)
	}
}

// TestE2ECORS: with an allowed origin, answers (event streams included) and
// preflights carry the CORS headers; other origins get none.
func TestE2ECORS(t *testing.T) {
	t.Parallel()
	const app = "http://localhost:5173"
	c := startConfig(t, server.Config{CORSOrigins: []string{app}})
	sub := c.submit("web", `{"body":1}`)
	ev := c.events(sub.ID, map[string]string{"Origin": app})
	if got := ev.resp.Header.Get("Access-Control-Allow-Origin"); got != app {
		t.Fatalf("event stream for %s: Access-Control-Allow-Origin %q", app, got)
	}
	ev.next()

	resp, _ := c.request(context.Background(), "OPTIONS", "/v1/tasks/"+sub.ID+"/events", "",
		map[string]string{"Origin": app, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "last-event-id"})
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Last-Event-ID") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = c.request(context.Background(), "GET", "/v1/tasks/"+sub.ID, "", map[string]string{"Origin": "https://evil.example"})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin: %d %v", resp.StatusCode, resp.Header)
	}
	// A server without origins sends no CORS headers.
	plain := start(t)
	resp, _ = plain.request(context.Background(), "GET", "/v1/queues", "", map[string]string{"Origin": app})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Vary") != "" {
		t.Fatalf("no origins configured: %v", resp.Header)
	}
	// A bad origin is refused at start.
	if _, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(),
		CORSOrigins: []string{"localhost:5173"}}); err == nil || !strings.Contains(err.Error(), "cors origin") {
		t.Fatalf("bad origin: %v", err)
	}
}
