package courierpgx_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/courierpgx"
	"github.com/courierhq/courier/internal/pgtest"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pgstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.WithServer(m)) }

// env is a migrated schema with a courier node's store on it (which wakes
// on other nodes' notifications) and an application connection.
type env struct {
	st   *pgstore.Store
	conn *pgx.Conn
}

func setup(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	st, err := pgstore.Open(ctx, pgstore.Options{DSN: dsn, Migrate: true, AllowUnsafeDurability: true, Notify: true, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	return &env{st: st, conn: conn}
}

// waitListening returns once the node's listener is up: a watch closed
// after a committed send proves it (the listener wakes every watcher once
// when it starts listening, and only notifications after that).
func (e *env) waitListening(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	w := e.st.Watch("warmup")
	err := pgx.BeginFunc(ctx, e.conn, func(tx pgx.Tx) error {
		_, err := courierpgx.Send(ctx, tx, "warmup", courier.NewMessage{Body: json.RawMessage(`0`)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-w:
	case <-time.After(10 * time.Second):
		t.Fatal("the node's listener never came up")
	}
}

func (e *env) leaseAll(t *testing.T, queue string) []store.Message {
	t.Helper()
	res, err := e.st.Lease(context.Background(), &store.LeaseParams{Queue: queue, Max: 100, Now: time.Now(),
		Retry: func(store.QueueConfig, int, *time.Duration) (time.Duration, bool) { return 0, false }})
	if err != nil && !errors.Is(err, store.ErrQueueNotFound) {
		t.Fatal(err)
	}
	return res.Messages
}

// A message sent in a transaction that commits exists, with the business
// change; the commit wakes the nodes' watchers, and nothing wakes them
// before it.
func TestSendCommits(t *testing.T) {
	e := setup(t)
	e.waitListening(t)
	ctx := context.Background()
	tx, err := e.conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO orders VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	w := e.st.Watch("emails")
	ids, err := courierpgx.Send(ctx, tx, "emails", courier.NewMessage{Body: json.RawMessage(`{"order":42}`),
		Headers: map[string]string{"kind": "receipt"}})
	if err != nil || len(ids) != 1 {
		t.Fatalf("Send: %v, %v", ids, err)
	}
	if got := e.leaseAll(t, "emails"); len(got) != 0 {
		t.Fatalf("before the commit, a node sees %d messages", len(got))
	}
	select {
	case <-w:
		t.Fatal("the node was woken before the commit")
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w:
	case <-time.After(10 * time.Second):
		t.Fatal("the commit did not wake the node's watchers")
	}
	got := e.leaseAll(t, "emails")
	if len(got) != 1 || got[0].ID != ids[0] || string(got[0].Body) != `{"order":42}` || got[0].Headers["kind"] != "receipt" {
		t.Fatalf("after the commit: %+v, want message %s", got, ids[0])
	}
}

// A message sent in a transaction that rolls back never exists.
func TestSendRollsBack(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	tx, err := e.conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := courierpgx.Send(ctx, tx, "emails", courier.NewMessage{Body: json.RawMessage(`1`)}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.leaseAll(t, "emails"); len(got) != 0 {
		t.Fatalf("after a rollback: %d messages, want none", len(got))
	}
}

// A refused message is the API's error, changes nothing, and leaves the
// transaction usable.
func TestSendRefusedKeepsTransaction(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	tx, err := e.conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	_, err = courierpgx.Send(ctx, tx, "emails", courier.NewMessage{Body: json.RawMessage(`1`), Priority: 1000})
	if !errors.Is(err, courier.ErrInvalidArgument) {
		t.Fatalf("Send with priority 1000: %v, want ErrInvalidArgument", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO orders VALUES (1)`); err != nil {
		t.Fatalf("the transaction is unusable after a refused send: %v", err)
	}
	if _, err := courierpgx.Send(ctx, tx, "emails", courier.NewMessage{Body: json.RawMessage(`2`)}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.leaseAll(t, "emails"); len(got) != 1 || string(got[0].Body) != "2" {
		t.Fatalf("after the commit: %d messages, want only the valid one", len(got))
	}
}

// A task submitted in a transaction exists once it commits, queued.
func TestSubmitTask(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	tx, err := e.conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := courierpgx.SubmitTask(ctx, tx, "jobs", courier.SubmitTask{
		NewMessage: courier.NewMessage{Body: json.RawMessage(`{"resize":1}`)}, ResultTTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tk, err := e.st.GetTask(ctx, &store.GetTaskParams{ID: id, Now: time.Now()})
	if err != nil || tk.State != store.TaskQueued || tk.Request.ResultTTL != time.Hour {
		t.Fatalf("task %s after the commit: %+v, %v; want queued with a 1h TTL", id, tk, err)
	}
}
