package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	courier "github.com/courierhq/courier"
)

// stream is an open event stream of a task, read with a plain client.
type stream struct {
	t      *testing.T
	resp   *http.Response
	events <-chan SSEEvent
}

// serve serves f's handler over TCP (the stream needs a real connection to
// be read while it is written); the server is closed at cleanup, which
// waits for every handler to return.
func (f *fixture) serve(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	return srv
}

// events opens the event stream of task id; lastID, if set, is sent as Last-Event-ID.
func openEvents(t *testing.T, srv *httptest.Server, id, lastID string) *stream {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/v1/tasks/"+id+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{t: t, resp: resp, events: SSEStream(resp.Body)}
	t.Cleanup(func() {
		resp.Body.Close()
		for range s.events {
		}
	})
	return s
}

// next returns the stream's next event, skipping comments; it fails at EOF.
func (s *stream) next() (courier.Task, string) {
	s.t.Helper()
	for ev := range s.events {
		if ev.Comment != "" {
			continue
		}
		var tk courier.Task
		if err := decodeStrict([]byte(ev.Data), &tk); err != nil {
			s.t.Fatalf("event data %q: %v", ev.Data, err)
		}
		if ev.Event != "" {
			s.t.Fatalf("event type %q, want the default", ev.Event)
		}
		return tk, ev.ID
	}
	s.t.Fatalf("the stream ended early")
	return courier.Task{}, ""
}

// end requires the stream to end with no further event.
func (s *stream) end() {
	s.t.Helper()
	for ev := range s.events {
		if ev.Comment == "" {
			s.t.Fatalf("an event after the final state: %+v", ev)
		}
	}
}

func (s *stream) header(status int) {
	s.t.Helper()
	if s.resp.StatusCode != status {
		s.t.Fatalf("status %d, want %d", s.resp.StatusCode, status)
	}
	if status == 200 {
		h := s.resp.Header
		if h.Get("Content-Type") != "text/event-stream" || h.Get("Cache-Control") != "no-store" {
			s.t.Fatalf("stream headers: %v", h)
		}
	}
}

// TestEventsFollowTask: the stream starts with the task as it is, sends an
// event per change, the final state last, then ends. Ids are versions.
func TestEventsFollowTask(t *testing.T) {
	t.Parallel()
	f := setup(t)
	srv := f.serve(t)
	sub := f.submit(`{"body":1,"notify":{"url":"https://example.com/h","secret":"s3cr3t"}}`)
	s := openEvents(t, srv, sub.ID, "")
	s.header(200)
	tk, id0 := s.next()
	if tk.State != courier.TaskQueued || tk.ID != sub.ID || id0 == "" {
		t.Fatalf("first event %s: %+v", id0, tk)
	}
	m := f.take()
	tk, id1 := s.next()
	if tk.State != courier.TaskRunning || tk.Attempt != 1 || !greater(id1, id0) {
		t.Fatalf("after receive, event %s: %+v", id1, tk)
	}
	f.must("POST", "/v1/tasks/"+sub.ID+"/progress", `{"lease":"`+m.Lease+`","progress":0.5,"message":"half"}`, 200, nil)
	tk, id2 := s.next()
	if tk.Progress != 0.5 || tk.ProgressMessage != "half" || !greater(id2, id1) {
		t.Fatalf("progress event %s: %+v", id2, tk)
	}
	f.must("POST", "/v1/queues/q/ack", `{"lease":"`+m.Lease+`","result":{"ok":true}}`, 200, nil)
	tk, id3 := s.next()
	if tk.State != courier.TaskSucceeded || string(tk.Result) != `{"ok":true}` || tk.FinishedAt == nil || !greater(id3, id2) {
		t.Fatalf("final event %s: %+v", id3, tk)
	}
	s.end()

	// A late listener gets the final state at once, and the end.
	late := openEvents(t, srv, sub.ID, "")
	late.header(200)
	if tk, id := late.next(); tk.State != courier.TaskSucceeded || id != id3 {
		t.Fatalf("late listener: %s %+v", id, tk)
	}
	late.end()
	// Resuming after the final event: 204, so an EventSource stops.
	openEvents(t, srv, sub.ID, id3).header(204)
}

func greater(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x > y
}

// TestEventsResume: Last-Event-ID sends nothing the client has seen: the
// current state at once if the task changed since, else the next change.
func TestEventsResume(t *testing.T) {
	t.Parallel()
	f := setup(t)
	srv := f.serve(t)
	sub := f.submit(`{"body":1}`)
	first := openEvents(t, srv, sub.ID, "")
	_, id0 := first.next()
	first.resp.Body.Close() // the client goes away

	m := f.take() // a change while it was away
	s := openEvents(t, srv, sub.ID, id0)
	s.header(200)
	tk, id1 := s.next()
	if tk.State != courier.TaskRunning || !greater(id1, id0) {
		t.Fatalf("resumed after a change: %s %+v", id1, tk)
	}
	s.resp.Body.Close()

	// Resuming at the current version: the next event is the next change.
	s = openEvents(t, srv, sub.ID, id1)
	s.header(200)
	<-s.events // the "resumed" comment: the handler is past its first read
	f.must("POST", "/v1/tasks/"+sub.ID+"/progress", `{"lease":"`+m.Lease+`","progress":0.9}`, 200, nil)
	if tk, id := s.next(); tk.Progress != 0.9 || !greater(id, id1) {
		t.Fatalf("resumed at the current version: %s %+v", id, tk)
	}
	f.must("POST", "/v1/queues/q/ack", `{"lease":"`+m.Lease+`"}`, 200, nil)
	if tk, _ := s.next(); tk.State != courier.TaskSucceeded {
		t.Fatalf("final: %+v", tk)
	}
	s.end()

	// An id this task never sent (ahead of it, or not a number) starts over.
	for _, bogus := range []string{"999999", "abc"} {
		s = openEvents(t, srv, sub.ID, bogus)
		if tk, _ := s.next(); tk.State != courier.TaskSucceeded {
			t.Fatalf("Last-Event-ID %q: %+v", bogus, tk)
		}
		s.end()
	}
}

// TestEventsHeartbeat: a quiet stream carries comment lines.
func TestEventsHeartbeat(t *testing.T) {
	t.Parallel()
	f := setupWith(t, Options{EventHeartbeat: 5 * time.Millisecond})
	srv := f.serve(t)
	sub := f.submit(`{"body":1}`)
	s := openEvents(t, srv, sub.ID, "")
	s.next()
	beats := 0
	for ev := range s.events {
		if ev.Comment != "keep-alive" {
			t.Fatalf("a quiet stream sent %+v", ev)
		}
		if beats++; beats == 3 {
			break
		}
	}
	// The stream still follows the task between heartbeats.
	f.take()
	if tk, _ := s.next(); tk.State != courier.TaskRunning {
		t.Fatalf("after heartbeats: %+v", tk)
	}
}

// TestEventsEndWithClient: a stream whose client goes away ends (the
// server's Close, at cleanup, waits for every handler; goleak checks).
func TestEventsEndWithClient(t *testing.T) {
	t.Parallel()
	f := setup(t)
	srv := f.serve(t)
	sub := f.submit(`{"body":1}`)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/tasks/"+sub.ID+"/events", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events := SSEStream(resp.Body)
	<-events
	cancel()
	for range events {
	}
	resp.Body.Close()
}

// TestEventsStuckReader: a reader that stops reading loses its stream once
// a write has waited EventWriteTimeout; nothing else waits for it.
func TestEventsStuckReader(t *testing.T) {
	t.Parallel()
	f := setupWith(t, Options{EventWriteTimeout: 20 * time.Millisecond})
	sub := f.submit(`{"body":1}`)
	w := &stuckWriter{header: http.Header{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/tasks/"+sub.ID+"/events", nil))
	}()
	<-done // the first write blocked until its deadline, and the handler ended
	if w.status != 200 || w.deadlines == 0 {
		t.Fatalf("stuck stream: status %d, %d deadlines set", w.status, w.deadlines)
	}
	// The task goes on regardless.
	f.take()
}

// stuckWriter is a connection whose reader never reads: a write blocks
// until the write deadline passes, as on a full TCP window.
type stuckWriter struct {
	header    http.Header
	status    int
	mu        sync.Mutex // guards deadline, deadlines
	deadline  time.Time
	deadlines int
}

func (w *stuckWriter) Header() http.Header  { return w.header }
func (w *stuckWriter) WriteHeader(code int) { w.status = code }
func (w *stuckWriter) Flush()               {}

func (w *stuckWriter) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadline, w.deadlines = t, w.deadlines+1
	return nil
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	d := w.deadline
	w.mu.Unlock()
	if d.IsZero() {
		return 0, errors.New("a write without a deadline would block forever")
	}
	<-time.After(time.Until(d))
	return 0, os.ErrDeadlineExceeded
}

// TestEventsSurviveReadTimeout: a server's ReadTimeout, which bounds slow
// uploads, does not cut a stream that outlives it.
func TestEventsSurviveReadTimeout(t *testing.T) {
	t.Parallel()
	f := setupWith(t, Options{EventHeartbeat: 10 * time.Millisecond})
	srv := httptest.NewUnstartedServer(f.h)
	srv.Config.ReadTimeout = 50 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	sub := f.submit(`{"body":1}`)
	s := openEvents(t, srv, sub.ID, "")
	s.next()
	start := time.Now()
	for ev := range s.events { // heartbeats, until well past the read timeout
		if ev.Comment == "" {
			t.Fatalf("unexpected event %+v", ev)
		}
		if time.Since(start) > 200*time.Millisecond {
			break
		}
	}
	m := f.take()
	f.must("POST", "/v1/queues/q/ack", `{"lease":"`+m.Lease+`"}`, 200, nil)
	for {
		tk, _ := s.next()
		if tk.State == courier.TaskSucceeded {
			break
		}
	}
	s.end()
}

// TestEventsHead: HEAD answers the stream's headers without following it.
func TestEventsHead(t *testing.T) {
	t.Parallel()
	f := setup(t)
	sub := f.submit(`{"body":1}`)
	w := f.do("HEAD", "/v1/tasks/"+sub.ID+"/events", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/event-stream" || w.Body.Len() != 0 {
		t.Fatalf("HEAD: %d %v %q", w.Code, w.Header(), w.Body)
	}
}

// TestEventDataIsOneLine: a task whose result and messages hold newlines
// still sends each event's data on one line.
func TestEventDataIsOneLine(t *testing.T) {
	t.Parallel()
	f := setup(t)
	sub := f.submit(`{"body":1}`)
	m := f.take()
	f.must("POST", "/v1/queues/q/ack", `{"lease":"`+m.Lease+`","result":{"text":"a\nb\r\nc",
		"n": [1,
		2]}}`, 200, nil)
	w := f.do("GET", "/v1/tasks/"+sub.ID+"/events", "")
	lines := strings.Split(strings.TrimSuffix(w.Body.String(), "\n\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "id: ") || !strings.HasPrefix(lines[1], "data: ") {
		t.Fatalf("event %q", w.Body)
	}
	var tk courier.Task
	if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &tk); err != nil ||
		string(tk.Result) != `{"text":"a\nb\r\nc","n":[1,2]}` {
		t.Fatalf("data %s: %v", lines[1], err)
	}
}
