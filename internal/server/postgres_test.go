package server_test

import (
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
// woken by a send on node B, and a task submitted on A is finished on B and
// seen finished on A.
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
