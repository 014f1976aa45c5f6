package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

func testQueues(t *testing.T, newStore newStoreFunc) {
	t.Run("Ready", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		if err := e.s.Ready(e.ctx); err != nil {
			t.Fatalf("Ready on a fresh store: %v", err)
		}
	})

	t.Run("CreateGet", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.DeadLetterQueue = "orders.dead"
		cfg.DedupWindow = 7 * time.Minute
		cfg.Backoff.Jitter = 0.25
		q := e.createQueue("orders", cfg)
		want := store.Queue{Name: "orders", Config: cfg, CreatedAt: base}
		wantQueue(t, "CreateQueue", q, want)

		e.advance(time.Second)
		wantQueue(t, "GetQueue", e.getQueue("orders"), want)

		_, err := e.s.CreateQueue(e.ctx, &store.CreateQueueParams{Name: "orders", Config: config(), Now: e.now})
		wantErr(t, "second CreateQueue", err, store.ErrQueueExists)
		// The failed create changed nothing.
		wantQueue(t, "GetQueue after second create", e.getQueue("orders"), want)
	})

	t.Run("ConfigOnly", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 7
		e.createQueue("q", cfg)
		e.sendText("q", "1", "2")
		q, err := e.s.GetQueue(e.ctx, &store.GetQueueParams{Name: "q", Now: e.now, ConfigOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if q.Name != "q" || q.Config != cfg || q.Stats != (store.Stats{}) {
			t.Errorf("ConfigOnly: got %+v; want the config and zero stats", q)
		}
		if _, err := e.s.GetQueue(e.ctx, &store.GetQueueParams{Name: "nope", Now: e.now, ConfigOnly: true}); !errors.Is(err, store.ErrQueueNotFound) {
			t.Errorf("ConfigOnly on a missing queue: %v, want ErrQueueNotFound", err)
		}
	})

	t.Run("GetMissing", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("a", config())
		_, err := e.s.GetQueue(e.ctx, &store.GetQueueParams{Name: "b", Now: e.now})
		wantErr(t, "GetQueue(missing)", err, store.ErrQueueNotFound)
		_, err = e.s.GetQueue(e.ctx, &store.GetQueueParams{Name: "A", Now: e.now})
		wantErr(t, "GetQueue(other case)", err, store.ErrQueueNotFound)
	})

	t.Run("MissingQueue", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		ctx, now := e.ctx, e.now
		_, err := e.s.UpdateQueue(ctx, &store.UpdateQueueParams{Name: "nope", Config: config(), Now: now})
		wantErr(t, "UpdateQueue", err, store.ErrQueueNotFound)
		// Choice: deleting a queue that does not exist is an error, not a no-op.
		err = e.s.DeleteQueue(ctx, &store.DeleteQueueParams{Name: "nope"})
		wantErr(t, "DeleteQueue", err, store.ErrQueueNotFound)
		_, err = e.s.PurgeQueue(ctx, &store.PurgeQueueParams{Name: "nope", Now: now})
		wantErr(t, "PurgeQueue", err, store.ErrQueueNotFound)
		_, err = e.s.SetPaused(ctx, &store.SetPausedParams{Name: "nope", Paused: true, Now: now})
		wantErr(t, "SetPaused", err, store.ErrQueueNotFound)
		_, err = e.s.Send(ctx, &store.SendParams{Queue: "nope", Messages: []store.NewMessage{msg("1")}, Now: now})
		wantErr(t, "Send", err, store.ErrQueueNotFound)
		_, err = e.s.Lease(ctx, &store.LeaseParams{Queue: "nope", Max: 1, Now: now, Retry: e.retry})
		wantErr(t, "Lease", err, store.ErrQueueNotFound)
		_, err = e.s.Redrive(ctx, &store.RedriveParams{Queue: "nope", Max: 10, Now: now})
		wantErr(t, "Redrive", err, store.ErrQueueNotFound)
		if names := e.queueNames(); len(names) != 0 {
			t.Errorf("calls on a missing queue created queues %v", names)
		}
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.setPaused("q", true)
		e.advance(time.Minute)
		cfg := config()
		cfg.VisibilityTimeout = 7 * time.Second
		cfg.MaxAttempts = 9
		cfg.DeadLetterQueue = "elsewhere"
		cfg.Backoff = store.Backoff{Initial: 2 * time.Second, Max: time.Hour, Multiplier: 3, Jitter: 0.5}
		q, err := e.s.UpdateQueue(e.ctx, &store.UpdateQueueParams{Name: "q", Config: cfg, Now: e.now})
		if err != nil {
			t.Fatalf("UpdateQueue: %v", err)
		}
		// Choice: an update changes the configuration only; it keeps the
		// creation time and does not resume a paused queue.
		want := store.Queue{Name: "q", Config: cfg, Paused: true, CreatedAt: base}
		wantQueue(t, "UpdateQueue", q, want)
		wantQueue(t, "GetQueue after update", e.getQueue("q"), want)

		// The new configuration is the one used: a lease without an
		// explicit visibility gets the new timeout.
		e.setPaused("q", false)
		e.sendText("q", "1")
		m := e.lease("q", 1)
		if len(m) != 1 {
			t.Fatalf("Lease after update: %d messages, want 1", len(m))
		}
		wantTime(t, "LeaseExpiresAt with the updated visibility", m[0].LeaseExpiresAt, e.now.Add(7*time.Second))
	})

	t.Run("ListSorted", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		if names := e.queueNames(); len(names) != 0 {
			t.Fatalf("ListQueues on an empty store: %v", names)
		}
		names := []string{"orders", "a.dead", "B", "a", "a-b", "a_b", "z9", "a.b", "Z", "0"}
		for i, n := range names {
			cfg := config()
			cfg.MaxAttempts = i + 1
			e.createQueue(n, cfg)
		}
		e.sendText("orders", "1", "2")
		want := slices.Clone(names)
		slices.Sort(want) // byte order
		if got := e.queueNames(); !slices.Equal(got, want) {
			t.Fatalf("ListQueues = %v, want %v", got, want)
		}
		qs, err := e.s.ListQueues(e.ctx, &store.ListQueuesParams{Now: e.now})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			i := slices.Index(names, q.Name)
			if q.Config.MaxAttempts != i+1 {
				t.Errorf("ListQueues: queue %q has MaxAttempts %d, want %d", q.Name, q.Config.MaxAttempts, i+1)
			}
			if q.Name == "orders" && (q.Stats.Ready != 2 || q.Stats.SentTotal != 2) {
				t.Errorf("ListQueues: orders stats %+v, want Ready 2 and SentTotal 2", q.Stats)
			}
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.createQueue("other", config())
		e.sendText("q", "1", "2", "3")
		e.send("q", store.NewMessage{Body: []byte("later"), Kind: store.BodyJSON, NotBefore: base.Add(time.Minute)})
		otherIDs := e.sendText("other", "x")
		held := e.lease("q", 1)

		if err := e.s.DeleteQueue(e.ctx, &store.DeleteQueueParams{Name: "q"}); err != nil {
			t.Fatalf("DeleteQueue: %v", err)
		}
		_, err := e.s.GetQueue(e.ctx, &store.GetQueueParams{Name: "q", Now: e.now})
		wantErr(t, "GetQueue after delete", err, store.ErrQueueNotFound)
		if got := e.queueNames(); !slices.Equal(got, []string{"other"}) {
			t.Errorf("ListQueues after delete = %v, want [other]", got)
		}
		// Deleting one queue leaves the others alone.
		e.leaseOne("other", otherIDs[0])

		e.advance(time.Hour) // the delayed message would be due now
		cfg := config()
		cfg.MaxAttempts = 7
		q := e.createQueue("q", cfg)
		wantQueue(t, "re-created queue", q, store.Queue{Name: "q", Config: cfg, CreatedAt: e.now})
		wantStats(t, "re-created queue", e.stats("q"), store.Stats{})
		e.leaseNone("q")
		// A lease from before the delete does not ack anything in the new queue.
		errs := e.ack("q", held[0].Lease)
		wantErr(t, "Ack of a lease from the deleted queue", errs[0], store.ErrLeaseExpired, store.ErrInvalidLease)
		wantStats(t, "re-created queue after stale ack", e.stats("q"), store.Stats{})
	})

	t.Run("Pause", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.leaseNone("q")
		first := e.sendText("q", "1")
		inFlight := e.leaseOne("q", first[0])

		q, err := e.s.SetPaused(e.ctx, &store.SetPausedParams{Name: "q", Paused: true, Now: e.now})
		if err != nil {
			t.Fatalf("SetPaused(true): %v", err)
		}
		if !q.Paused || !e.getQueue("q").Paused {
			t.Errorf("after pause: Paused = %v (result), %v (GetQueue), want true", q.Paused, e.getQueue("q").Paused)
		}
		// Pausing twice is fine.
		if _, err := e.s.SetPaused(e.ctx, &store.SetPausedParams{Name: "q", Paused: true, Now: e.now}); err != nil {
			t.Errorf("second SetPaused(true): %v", err)
		}
		// A paused queue accepts sends but hands out nothing.
		ids := e.sendText("q", "2", "3")
		e.leaseNone("q")
		wantStats(t, "paused", e.stats("q"), store.Stats{Ready: 2, InFlight: 1, SentTotal: 3, OldestReady: base})
		// Choice: a paused queue still takes acks of messages already handed out.
		e.ackOK("q", inFlight.Lease)

		q, err = e.s.SetPaused(e.ctx, &store.SetPausedParams{Name: "q", Paused: false, Now: e.now})
		if err != nil {
			t.Fatalf("SetPaused(false): %v", err)
		}
		if q.Paused || e.getQueue("q").Paused {
			t.Error("after resume: still paused")
		}
		wantIDs(t, "Lease after resume", e.lease("q", 10), ids...)
	})

	t.Run("Purge", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.createQueue("other", config())
		ready := e.sendText("q", "r1", "r2")
		e.send("q", store.NewMessage{Body: []byte(`"delayed"`), Kind: store.BodyJSON, NotBefore: base.Add(time.Hour)})
		grp := e.send("q",
			store.NewMessage{Body: []byte(`"g1"`), Kind: store.BodyJSON, Group: "g"},
			store.NewMessage{Body: []byte(`"g2"`), Kind: store.BodyJSON, Group: "g"})
		nacked := e.sendText("q", "n")
		e.sendText("other", "o")

		// r1 and g1 go in flight; n is nacked and waits for its retry.
		got := e.leaseResult("q", 3, 3*time.Hour).Messages
		wantIDs(t, "lease before purge", got, ready[0], ready[1], grp[0])
		e.ackOK("q", got[1].Lease)
		n := e.leaseOne("q", nacked[0])
		e.nackOK("q", n.Lease, ptr(time.Minute), "later")

		// Dropped: delayed, g2 (waiting for its group), n (waiting to retry).
		count, err := e.s.PurgeQueue(e.ctx, &store.PurgeQueueParams{Name: "q", Now: e.now})
		if err != nil {
			t.Fatalf("PurgeQueue: %v", err)
		}
		if count != 3 {
			t.Errorf("PurgeQueue = %d, want 3 (delayed, group-waiting, retry-waiting)", count)
		}
		wantStats(t, "after purge", e.stats("q"), store.Stats{InFlight: 2, SentTotal: 6, AckedTotal: 1})
		e.set(base.Add(2 * time.Hour)) // everything dropped would be due by now
		e.leaseNone("q")
		// In-flight messages stay and can be acked.
		e.ackOK("q", got[0].Lease, got[2].Lease)
		wantStats(t, "after acks", e.stats("q"), store.Stats{SentTotal: 6, AckedTotal: 3})
		// Other queues keep their messages.
		if s := e.stats("other"); s.Ready != 1 {
			t.Errorf("other queue after purge: Ready %d, want 1", s.Ready)
		}
		// The queue works as before.
		after := e.sendText("q", "after")
		e.leaseOne("q", after[0])
	})
}

// wantQueue compares everything but the stats.
func wantQueue(t *testing.T, what string, got, want store.Queue) {
	t.Helper()
	if got.Name != want.Name || got.Config != want.Config || got.Paused != want.Paused {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
	}
	wantTime(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt)
}
