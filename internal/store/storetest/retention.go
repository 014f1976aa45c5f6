package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

func testRetention(t *testing.T, newStore newStoreFunc) {
	// Retention boundaries are checked a millisecond either side: the
	// exact instant is not part of the contract.
	retCfg := func() store.QueueConfig {
		cfg := config()
		cfg.Retention = time.Hour
		cfg.DeadLetterQueue = "q.dead"
		return cfg
	}
	for _, byTick := range []bool{false, true} {
		name := map[bool]string{false: "ByLease", true: "ByTick"}[byTick]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, newStore)
			e.createQueue("q", retCfg())
			e.sendText("q", "old")
			e.advance(30 * time.Minute)
			young := e.sendText("q", "young")
			e.set(base.Add(time.Hour - time.Millisecond))
			wantStats(t, "just before", e.stats("q"), store.Stats{Ready: 2, SentTotal: 2, OldestReady: base})
			e.set(base.Add(time.Hour + time.Millisecond))
			if byTick {
				if r := e.tick(); r.Dropped != 1 || r.DeadLettered != 0 {
					t.Errorf("Tick %+v, want 1 dropped", r)
				}
				wantStats(t, "after Tick", e.stats("q"), store.Stats{Ready: 1, SentTotal: 2, OldestReady: base.Add(30 * time.Minute)})
			}
			e.leaseOne("q", young[0])
			wantStats(t, "after Lease", e.stats("q"), store.Stats{InFlight: 1, SentTotal: 2})
			// Dropped, not dead-lettered.
			if names := e.queueNames(); !slices.Equal(names, []string{"q"}) {
				t.Errorf("queues %v, want only q", names)
			}
		})
	}

	t.Run("InFlightKept", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", retCfg())
		ids := e.sendText("q", "1")
		e.set(base.Add(59 * time.Minute))
		m := e.leaseResult("q", 1, 10*time.Minute).Messages
		wantIDs(t, "lease", m, ids...)
		// Choice: retention limits how long a message waits unreceived; a
		// message in flight is never dropped under its consumer.
		e.set(base.Add(65 * time.Minute))
		if r := e.tick(); r.Dropped != 0 {
			t.Errorf("Tick dropped %d in-flight messages", r.Dropped)
		}
		e.ackOK("q", m[0].Lease)
	})
}
