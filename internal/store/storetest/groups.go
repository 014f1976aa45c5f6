package storetest

import (
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// gmsg is a JSON message of group g.
func gmsg(body, g string) store.NewMessage {
	return store.NewMessage{Body: []byte(body), Kind: store.BodyJSON, Group: g}
}

func testGroups(t *testing.T, newStore newStoreFunc) {
	t.Run("OneAtATimeInSendOrder", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.send("q", gmsg("g1", "g"), msg("u1"), gmsg("g2", "g"))
		g3 := e.send("q", gmsg("g3", "g"), msg("u2"))
		g1, u1, g2, u2 := ids[0], ids[1], ids[2], g3[1]
		got := e.lease("q", 10)
		wantIDs(t, "first lease", got, g1, u1, u2)
		e.leaseNone("q")
		// Group members waiting for their turn count as ready. Choice:
		// OldestReady is taken over the same messages as Ready.
		wantStats(t, "one of the group in flight", e.stats("q"), store.Stats{Ready: 2, InFlight: 3, SentTotal: 5, OldestReady: base})
		e.ackOK("q", got[1].Lease, got[2].Lease) // ungrouped acks free nothing
		e.leaseNone("q")
		e.ackOK("q", got[0].Lease)
		m := e.leaseOne("q", g2)
		e.ackOK("q", m.Lease)
		m = e.leaseOne("q", g3[0])
		if m.Group != "g" {
			t.Errorf("group %q, want g", m.Group)
		}
		e.ackOK("q", m.Lease)
		e.leaseNone("q")
	})

	t.Run("GroupsInParallel", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.createQueue("other", config())
		ids := e.send("q", gmsg("a1", "a"), gmsg("b1", "b"), gmsg("a2", "a"), gmsg("b2", "b"), gmsg("c1", "c"))
		got := e.lease("q", 10)
		wantIDs(t, "heads of three groups", got, ids[0], ids[1], ids[4])
		// Groups are per queue: the same name elsewhere is not blocked.
		o := e.send("other", gmsg("o1", "a"))
		e.leaseOne("other", o[0])
		e.ackOK("q", got[0].Lease)
		e.leaseOne("q", ids[2])
		e.ackOK("q", got[1].Lease)
		e.leaseOne("q", ids[3])
	})

	t.Run("NackKeepsGroupBlocked", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.send("q", gmsg("g1", "g"), gmsg("g2", "g"))
		m := e.leaseOne("q", ids[0])
		e.nackOK("q", m.Lease, ptr(10*time.Second), "not now")
		e.leaseNone("q")
		e.set(base.Add(10 * time.Second))
		m = e.leaseOne("q", ids[0])
		if m.Attempt != 2 {
			t.Errorf("attempt %d, want 2", m.Attempt)
		}
		e.nackOK("q", m.Lease, ptr(0), "again")
		m = e.leaseOne("q", ids[0]) // still first in line
		e.ackOK("q", m.Lease)
		e.leaseOne("q", ids[1])
	})

	t.Run("ExpiryKeepsOrder", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", expiryConfig())
		ids := e.send("q", gmsg("g1", "g"), gmsg("g2", "g"))
		e.leaseOne("q", ids[0])
		e.set(base.Add(10 * time.Second))
		e.leaseNone("q") // g1 waits for its retry at +15s; g2 waits for g1
		e.set(base.Add(15 * time.Second))
		m := e.leaseOne("q", ids[0])
		e.ackOK("q", m.Lease)
		e.leaseOne("q", ids[1])
	})

	t.Run("NextAfterDeadLetter", func(t *testing.T) {
		t.Parallel()
		for _, byExpiry := range []bool{false, true} {
			name := map[bool]string{false: "Nack", true: "Expiry"}[byExpiry]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := setup(t, newStore)
				cfg := expiryConfig()
				cfg.MaxAttempts = 1
				cfg.DeadLetterQueue = "q.dead"
				e.createQueue("q", cfg)
				ids := e.send("q", gmsg("g1", "g"), gmsg("g2", "g"), gmsg("g3", "g"))
				m := e.leaseOne("q", ids[0])
				if byExpiry {
					e.set(m.LeaseExpiresAt)
				} else {
					e.nackOK("q", m.Lease, nil, "dead")
				}
				m = e.leaseOne("q", ids[1])
				e.ackOK("q", m.Lease)
				e.leaseOne("q", ids[2])
				e.leaseOne("q.dead", ids[0])
			})
		}
	})

	// Several members of one group leaving at once, in one store operation,
	// each pass the head to the next: the queue must stay consistent.
	t.Run("RetentionDropsWholeGroup", func(t *testing.T) {
		t.Parallel()
		for _, byTick := range []bool{true, false} {
			e := setup(t, newStore)
			cfg := config()
			cfg.Retention = time.Second
			e.createQueue("q", cfg)
			e.send("q", gmsg("g1", "g"), gmsg("g2", "g"), gmsg("g3", "g"))
			e.advance(2 * time.Second)
			if byTick {
				e.tick()
			}
			e.leaseNone("q")
			if s := e.stats("q"); s.Ready+s.Delayed+s.InFlight != 0 {
				t.Fatalf("byTick=%v: stats after retention %+v, want empty", byTick, s)
			}
			later := e.send("q", gmsg("g4", "g"), msg("plain"))
			got := e.lease("q", 10)
			wantIDs(t, "after retention", got, later...)
		}
	})

	t.Run("RedriveWholeGroup", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 1
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		ids := e.send("q", gmsg("g1", "g"), gmsg("g2", "g"), gmsg("g3", "g"))
		for _, id := range ids {
			e.nackOK("q", e.leaseOne("q", id).Lease, nil, "dead")
		}
		if n := e.redrive("q", 10); n != 3 {
			t.Fatalf("redrove %d, want 3", n)
		}
		e.leaseNone("q.dead")
		for _, id := range ids { // back in order, one at a time
			e.ackOK("q", e.leaseOne("q", id).Lease)
		}
		e.leaseNone("q")
	})

	t.Run("PurgeWholeGroup", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.send("q", gmsg("g1", "g"), gmsg("g2", "g"), gmsg("g3", "g"))
		if n, err := e.s.PurgeQueue(e.ctx, &store.PurgeQueueParams{Name: "q", Now: e.now}); err != nil || n != 3 {
			t.Fatalf("purge: %d, %v; want 3", n, err)
		}
		later := e.send("q", gmsg("g4", "g"))
		e.leaseOne("q", later[0])
	})

	t.Run("RedrivenOlderMemberRejoins", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 1
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		ids := e.send("q", gmsg("g1", "g"), gmsg("g2", "g"))
		e.nackOK("q", e.leaseOne("q", ids[0]).Lease, nil, "dead") // g2 becomes the head
		m2 := e.leaseOne("q", ids[1])
		if n := e.redrive("q", 10); n != 1 {
			t.Fatalf("redrove %d, want 1", n)
		}
		later := e.send("q", gmsg("g3", "g"))
		e.leaseNone("q") // g2 still holds the group
		e.ackOK("q", m2.Lease)
		// Choice: a redriven member takes its place by its original send
		// order, so it goes before members sent after it.
		e.ackOK("q", e.leaseOne("q", ids[0]).Lease)
		e.ackOK("q", e.leaseOne("q", later[0]).Lease)
		e.leaseNone("q")
		g4 := e.send("q", gmsg("g4", "g")) // the group, emptied, starts afresh
		e.leaseOne("q", g4[0])
	})

	t.Run("PriorityDoesNotJumpTheGroup", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		// Choice: within a group, send order wins over priority.
		ids := e.send("q",
			store.NewMessage{Body: []byte("1"), Kind: store.BodyJSON, Group: "g", Priority: -10},
			store.NewMessage{Body: []byte("2"), Kind: store.BodyJSON, Group: "g", Priority: 50},
			store.NewMessage{Body: []byte("3"), Kind: store.BodyJSON, Priority: 0},
		)
		got := e.lease("q", 10)
		wantIDs(t, "lease", got, ids[2], ids[0])
	})

	t.Run("DelayedHeadBlocksGroup", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		// Choice: FIFO per group is strict: a later message of the group
		// waits for an earlier one that is delayed.
		first := store.NewMessage{Body: []byte("1"), Kind: store.BodyJSON, Group: "g", NotBefore: base.Add(10 * time.Second)}
		ids := e.send("q", first, gmsg("2", "g"))
		wantTime(t, "NextDue", e.leaseNone("q").NextDue, base.Add(10*time.Second))
		e.set(base.Add(10 * time.Second))
		m := e.leaseOne("q", ids[0])
		e.ackOK("q", m.Lease)
		e.leaseOne("q", ids[1])
	})

	t.Run("PurgeThenNext", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.send("q", gmsg("1", "g"), gmsg("2", "g"))
		m := e.leaseOne("q", ids[0])
		if n, err := e.s.PurgeQueue(e.ctx, &store.PurgeQueueParams{Name: "q", Now: e.now}); err != nil || n != 1 {
			t.Fatalf("PurgeQueue = %d, %v; want 1", n, err)
		}
		e.ackOK("q", m.Lease)
		e.leaseNone("q")
		// A group whose members were all purged starts afresh.
		more := e.send("q", gmsg("3", "g"))
		e.leaseOne("q", more[0])
	})
}
