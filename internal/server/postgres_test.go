package server_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/pgtest"
	"github.com/courierhq/courier/internal/server"
	"github.com/courierhq/courier/internal/store/pgstore"
)

// pgConfig is a node of a cluster over the schema dsn. The test server has
// synchronous_commit off, which a node must be told to accept.
func pgConfig(dsn string) server.Config {
	return server.Config{Store: dsn, Migrate: true, AllowUnsafeDurability: true}
}

// Two nodes over one database behave as one: a long-poll on node A is
// woken by a send on node B, and a lease taken on A is acked on B.
func TestTwoNodesOneDatabase(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t)
	// A fallback poll slower than the receive's wait: only a notification
	// can answer it early.
	cfg := pgConfig(dsn)
	cfg.PollEvery = time.Minute
	_, a := start(t, cfg)
	_, b := start(t, cfg)
	ctx := t.Context()
	if _, err := a.Receive(ctx, "q", courier.ReceiveRequest{}); err != nil { // creates q
		t.Fatal(err)
	}
	type got struct {
		msgs []courier.Message
		err  error
		at   time.Duration
	}
	ch := make(chan got, 1)
	begin := time.Now()
	go func() {
		msgs, err := a.Receive(ctx, "q", courier.ReceiveRequest{Wait: "20s"})
		ch <- got{msgs, err, time.Since(begin)}
	}()
	// The receive may not be waiting yet (then the test proves less, but
	// never passes wrongly); if it is, only B's notification can wake it
	// before its 20s are up.
	if _, err := b.Send(ctx, "q", body("hello")); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil || len(r.msgs) != 1 {
		t.Fatalf("receive on A: %d messages, %v; want the one sent on B", len(r.msgs), r.err)
	}
	if r.at > 10*time.Second {
		t.Errorf("the long-poll took %v: not woken by the send on the other node", r.at)
	}
	if err := b.Ack(ctx, "q", r.msgs[0].Lease); err != nil {
		t.Errorf("ack on B of a lease from A: %v", err)
	}
}

// A task submitted on node A and watched on node B, by a long-poll (GET
// /v1/tasks/{id}?wait) and an event stream (GET /v1/tasks/{id}/events), is
// received and finished through node A: B's watchers see it finish, with
// its result, woken by A's notification (B's fallback poll is slower than
// the test allows).
func TestTaskEventsAcrossNodes(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(pgtest.Schema(t))
	cfg.PollEvery = time.Minute
	_, a := start(t, cfg)
	_, b := start(t, cfg)
	ctx := t.Context()
	f, err := a.Submit(ctx, "jobs", courier.SubmitTask{NewMessage: body("resize")})
	if err != nil {
		t.Fatal(err)
	}
	type waited struct {
		task courier.Task
		err  error
		took time.Duration
	}
	polled := make(chan waited, 1)
	begin := time.Now()
	go func() {
		tk, err := b.GetTask(ctx, f.ID(), 30*time.Second)
		polled <- waited{tk, err, time.Since(begin)}
	}()
	opened := make(chan struct{})
	type stream struct {
		evs   []courier.TaskEvent
		ended time.Time
	}
	streamed := make(chan stream, 1)
	go func() {
		var evs []courier.TaskEvent
		defer func() { streamed <- stream{evs, time.Now()} }()
		for ev, err := range b.WatchTask(ctx, f.ID(), "") {
			if err != nil {
				t.Errorf("event stream on B: %v", err)
				return
			}
			if evs = append(evs, ev); len(evs) == 1 {
				close(opened)
			}
		}
	}()
	select {
	case <-opened: // the stream is open: what follows reaches it by notification
	case <-time.After(10 * time.Second):
		t.Fatal("no first event on B's stream")
	}

	msgs, err := a.Receive(ctx, "jobs", courier.ReceiveRequest{Wait: "10s"})
	if err != nil || len(msgs) != 1 || msgs[0].ID != f.ID() {
		t.Fatalf("receive on A: %v, %v; want the task's message", msgs, err)
	}
	if err := a.AckResult(ctx, "jobs", msgs[0].Lease, json.RawMessage(`{"width":640}`)); err != nil {
		t.Fatal(err)
	}
	acked := time.Now()

	r := <-polled
	if r.err != nil || r.task.State != courier.TaskSucceeded || string(r.task.Result) != `{"width":640}` {
		t.Errorf("long-poll on B: %+v, %v; want succeeded with the result", r.task, r.err)
	}
	if r.took > 10*time.Second {
		t.Errorf("the long-poll on B took %v: not woken by the ack on A", r.took)
	}
	var st stream
	select {
	case st = <-streamed:
	case <-time.After(time.Minute):
		t.Fatal("B's event stream did not end after the task finished on A")
	}
	if took := st.ended.Sub(acked); took > 10*time.Second {
		t.Errorf("B's event stream ended %v after the ack on A: not woken by it", took)
	}
	evs := st.evs
	if len(evs) == 0 {
		t.Fatal("no events on B's stream")
	}
	last := evs[len(evs)-1].Task
	if evs[0].Task.State != courier.TaskQueued || last.State != courier.TaskSucceeded || string(last.Result) != `{"width":640}` {
		var states []courier.TaskState
		for _, ev := range evs {
			states = append(states, ev.Task.State)
		}
		t.Errorf("events on B: states %v, last result %s; want queued first, succeeded with the result last", states, last.Result)
	}
}

// A node refuses to start on a server that may lose acknowledged commits,
// and on a schema that was never migrated, unless told otherwise.
func TestPostgresRefusals(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t)
	cfg := server.Config{Addr: "127.0.0.1:0", Store: dsn, AllowUnsafeDurability: true}
	if _, err := server.Start(t.Context(), cfg); !errors.Is(err, pgstore.ErrSchemaOutdated) {
		t.Errorf("start on an empty schema without Migrate: %v, want ErrSchemaOutdated", err)
	}
	cfg.Migrate, cfg.AllowUnsafeDurability = true, false
	if _, err := server.Start(t.Context(), cfg); !errors.Is(err, pgstore.ErrUnsafeDurability) {
		t.Errorf("start with synchronous_commit off: %v, want ErrUnsafeDurability", err)
	}
	cfg.Store = "mysql://x"
	if _, err := server.Start(t.Context(), cfg); err == nil {
		t.Error("start with a store that is not postgres:// succeeded")
	}
}
