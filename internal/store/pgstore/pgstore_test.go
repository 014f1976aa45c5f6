package pgstore_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/internal/pgtest"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pgstore"
	"github.com/courierhq/courier/internal/store/storetest"
)

var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

func queueConfig() store.QueueConfig {
	c := store.DefaultConfig("q")
	c.DeadLetterQueue = ""
	return c
}

// Several nodes migrating one schema at once apply each migration exactly
// once; afterwards there is nothing left to apply.
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.Schema(t)
	ctx := context.Background()
	const nodes = 4
	applied := make([][]int, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			var err error
			if applied[i], err = pgstore.Migrate(ctx, dsn); err != nil {
				t.Errorf("Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	ms, err := pgstore.Migrations()
	if err != nil || len(ms) == 0 {
		t.Fatalf("Migrations: %v, %d", err, len(ms))
	}
	var all []int
	for _, a := range applied {
		all = append(all, a...)
	}
	slices.Sort(all)
	want := make([]int, len(ms))
	for i := range ms {
		want[i] = i + 1
	}
	if !slices.Equal(all, want) {
		t.Errorf("versions applied over all nodes: %v, want each of %v once", all, want)
	}
	if again, err := pgstore.Migrate(ctx, dsn); err != nil || len(again) != 0 {
		t.Errorf("second Migrate applied %v, %v; want nothing", again, err)
	}
}

// Open refuses an unmigrated schema unless told to migrate.
func TestOpenRefusesOutdatedSchema(t *testing.T) {
	dsn := pgtest.Schema(t)
	_, err := pgstore.Open(context.Background(), pgstore.Options{DSN: dsn, AllowUnsafeDurability: true})
	if !errors.Is(err, pgstore.ErrSchemaOutdated) {
		t.Fatalf("Open of an empty schema: %v, want ErrSchemaOutdated", err)
	}
	open(t, pgstore.Options{DSN: dsn}) // migrates
	s, err := pgstore.Open(context.Background(), pgstore.Options{DSN: dsn, AllowUnsafeDurability: true})
	if err != nil {
		t.Fatalf("Open after migrating: %v", err)
	}
	s.Close()
}

// Open refuses a server that may lose acknowledged commits (the test server
// has synchronous_commit off) unless allowed, and accepts a safe one.
func TestOpenRefusesUnsafeDurability(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	if _, err := pgstore.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	_, err := pgstore.Open(ctx, pgstore.Options{DSN: dsn})
	if !errors.Is(err, pgstore.ErrUnsafeDurability) {
		t.Fatalf("Open with synchronous_commit off: %v, want ErrUnsafeDurability", err)
	}
	safe := pgtest.Database(t, map[string]string{"synchronous_commit": "on"})
	s, err := pgstore.Open(ctx, pgstore.Options{DSN: safe, Migrate: true})
	if err != nil {
		t.Fatalf("Open of a safe database: %v", err)
	}
	s.Close()
}

// A lease token is never issued twice: not after a lease expires, and not
// by another store (node, or a restarted one) on the same database.
func TestLeaseTokensNeverRepeat(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	a := open(t, pgstore.Options{DSN: dsn})
	b := open(t, pgstore.Options{DSN: dsn})
	if _, err := a.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: queueConfig(), Now: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{{Body: []byte("1"), Kind: store.BodyJSON}}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	retry := func(store.QueueConfig, int, *time.Duration) (time.Duration, bool) { return 0, false }
	seen := map[string]bool{}
	var last string
	now := t0
	for i := range 6 {
		s := []*pgstore.Store{a, b}[i%2]
		res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Visibility: time.Second, Now: now, Retry: retry})
		if err != nil || len(res.Messages) != 1 {
			t.Fatalf("lease %d: %v, %d messages", i, err, len(res.Messages))
		}
		l := res.Messages[0].Lease
		if seen[l] {
			t.Fatalf("lease token %q issued twice", l)
		}
		seen[l] = true
		if last != "" { // the superseded token is refused
			errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{last}, Now: now})
			if err != nil || !errors.Is(errs[0], store.ErrLeaseExpired) {
				t.Errorf("ack with a superseded lease: %v, %v; want ErrLeaseExpired", errs, err)
			}
		}
		last = l
		now = now.Add(2 * time.Second)
	}
}

// A send on one node wakes a Watch on another (LISTEN/NOTIFY), and the
// listener comes back after its connection is killed: it wakes every
// watcher on reconnecting, then carries notifications again.
func TestNotifyAcrossNodes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	a := open(t, pgstore.Options{DSN: dsn, Notify: true})
	b := open(t, pgstore.Options{DSN: dsn, Notify: true})
	waitListening(t, a)
	if _, err := a.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: queueConfig(), Now: t0}); err != nil {
		t.Fatal(err)
	}
	send := func(s *pgstore.Store) {
		t.Helper()
		if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{{Body: []byte("1"), Kind: store.BodyJSON}}, Now: t0}); err != nil {
			t.Fatal(err)
		}
	}
	w := a.Watch("q")
	other := a.Watch("other")
	send(b)
	waitClosed(t, w, "watch on node a after a send on node b")
	if storetest.Closed(other) {
		t.Error("watch of another queue woken")
	}

	// Kill the listener's connection; it reconnects and wakes everyone.
	w = a.Watch("q")
	killListeners(t, dsn)
	waitClosed(t, w, "watch after the listener reconnected")
	waitListening(t, a)
	w = a.Watch("q")
	send(b)
	waitClosed(t, w, "watch after a send once the listener is back")

	// Task changes travel too.
	res, err := b.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{{Body: []byte("1"), Kind: store.BodyJSON,
		Task: &store.NewTask{ResultTTL: time.Hour}}}, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	wt := a.WatchTask(res[0].ID)
	if _, err := b.CancelTask(ctx, &store.CancelTaskParams{ID: res[0].ID, Now: t0}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, wt, "task watch on node a after a cancel on node b")
}

// waitClosed waits for ch, failing after a generous bound: the wake-up
// crosses a real database, so it is not instantaneous.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not woken", what)
	}
}

func waitListening(t *testing.T, s *pgstore.Store) {
	t.Helper()
	select {
	case <-pgstore.Listening(s):
	case <-time.After(10 * time.Second):
		t.Fatal("listener not listening")
	}
}

// killListeners ends the listeners' connections from the server side.
func killListeners(t *testing.T, dsn string) { terminate(t, dsn, "courier-listener") }

// terminate ends the connections of application app from the server side.
func terminate(t *testing.T, dsn, app string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, app).Scan(&n)
	if err != nil || n == 0 {
		t.Fatalf("terminated %d listeners: %v", n, err)
	}
}
