package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/pgtest"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pgstore"
)

// One of two nodes leads; only the leader's Tick does the work; when the
// leader goes, the other takes over.
func TestLeaderElection(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	o := pgstore.Options{DSN: dsn, Elect: true, ElectEvery: 20 * time.Millisecond}
	a := open(t, o)
	waitLeading(t, a, true)
	b := open(t, o)
	if pgstore.Leading(b) {
		t.Fatal("two leaders")
	}
	if _, err := a.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: queueConfig(), Now: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{{Body: []byte("1"), Kind: store.BodyJSON}}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	retry := func(store.QueueConfig, int, *time.Duration) (time.Duration, bool) { return 0, false }
	if _, err := a.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Visibility: time.Second, Now: t0, Retry: retry}); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(time.Minute)
	if r, err := b.Tick(ctx, &store.TickParams{Now: later, Retry: retry}); err != nil || r.Expired != 0 {
		t.Errorf("follower's Tick = %+v, %v; want no work", r, err)
	}
	if r, err := a.Tick(ctx, &store.TickParams{Now: later, Retry: retry}); err != nil || r.Expired != 1 {
		t.Errorf("leader's Tick = %+v, %v; want 1 expired", r, err)
	}
	a.Close()
	waitLeading(t, b, true)
}

// A leader whose connection is killed loses the lead and (with nobody else
// around) wins it back on a new connection.
func TestLeaderReconnects(t *testing.T) {
	dsn := pgtest.Schema(t)
	a := open(t, pgstore.Options{DSN: dsn, Elect: true, ElectEvery: 20 * time.Millisecond})
	waitLeading(t, a, true)
	terminate(t, dsn, "courier-leader")
	waitLeading(t, a, false)
	waitLeading(t, a, true)
}

func waitLeading(t *testing.T, s *pgstore.Store, want bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for pgstore.Leading(s) != want {
		select {
		case <-pgstore.LeaderChanged(s):
		case <-deadline:
			t.Fatalf("leading never became %v", want)
		}
	}
}

// The database clock reads the server's time even when the local clock is
// far off: every node stamps its verbs with the same clock.
func TestDBClock(t *testing.T) {
	s := open(t, pgstore.Options{})
	local := clock.NewFake(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	c, err := pgstore.NewDBClock(context.Background(), s, local, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	var db time.Time
	if err := pgstore.Pool(s).QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if d := c.Now().Sub(db); d < -5*time.Second || d > 5*time.Second {
		t.Errorf("DBClock.Now() = %v, database says %v (local clock %v)", c.Now(), db, local.Now())
	}
}

// The database clock is never ahead of the database's: a node that ran
// ahead would expire leases before the time it told their consumers.
func TestDBClockNeverAhead(t *testing.T) {
	s := open(t, pgstore.Options{})
	ctx := context.Background()
	for i := range 200 {
		c, err := pgstore.NewDBClock(ctx, s, clock.Real(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		now := c.Now()
		c.Stop()
		var db time.Time
		if err := pgstore.Pool(s).QueryRow(ctx, "SELECT clock_timestamp()").Scan(&db); err != nil {
			t.Fatal(err)
		}
		if now.After(db) {
			t.Fatalf("measurement %d: DBClock.Now() = %v is ahead of the database's %v read after it", i, now, db)
		}
	}
}
