package storetest

import (
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

func testStats(t *testing.T, newStore newStoreFunc) {
	t.Run("Script", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 2
		cfg.DeadLetterQueue = "s.dead"
		e.createQueue("s", cfg)
		step := func(what string, want store.Stats) {
			t.Helper()
			wantStats(t, what, e.stats("s"), want)
			// ListQueues carries the same stats.
			qs, err := e.s.ListQueues(e.ctx, &store.ListQueuesParams{Now: e.now})
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range qs {
				if q.Name == "s" {
					wantStats(t, what+" (ListQueues)", q.Stats, want)
				}
			}
		}
		t1 := base.Add(time.Second)
		step("new queue", store.Stats{})

		ab := e.sendText("s", "a", "b")
		e.send("s", store.NewMessage{Body: []byte("c"), Kind: store.BodyJSON, NotBefore: base.Add(time.Minute)})
		step("sent a, b and delayed c", store.Stats{Ready: 2, Delayed: 1, SentTotal: 3, OldestReady: base})

		e.set(t1)
		d := e.sendText("s", "d")
		step("sent d", store.Stats{Ready: 3, Delayed: 1, SentTotal: 4, OldestReady: base})

		a := e.leaseFirst("s", ab[0])
		step("leased a", store.Stats{Ready: 2, Delayed: 1, InFlight: 1, SentTotal: 4, OldestReady: base})
		b := e.leaseFirst("s", ab[1])
		step("leased b", store.Stats{Ready: 1, Delayed: 1, InFlight: 2, SentTotal: 4, OldestReady: t1})

		e.ackOK("s", a.Lease)
		step("acked a", store.Stats{Ready: 1, Delayed: 1, InFlight: 1, SentTotal: 4, AckedTotal: 1, OldestReady: t1})

		e.nackOK("s", b.Lease, nil, "") // retry at t1+5s
		step("nacked b", store.Stats{Ready: 1, Delayed: 2, SentTotal: 4, AckedTotal: 1, OldestReady: t1})

		// Choice: stats are as of Now without waiting for a Tick: a delayed
		// message whose time has come counts as ready, and OldestReady is
		// its send time.
		e.set(base.Add(7 * time.Second))
		step("b due again", store.Stats{Ready: 2, Delayed: 1, SentTotal: 4, AckedTotal: 1, OldestReady: base})

		got := e.lease("s", 2)
		wantIDs(t, "lease b and d", got, ab[1], d[0])
		step("leased b and d", store.Stats{Delayed: 1, InFlight: 2, SentTotal: 4, AckedTotal: 1})

		if res := e.nackOK("s", got[0].Lease, nil, "dead"); !res.DeadLettered {
			t.Fatal("b was not dead-lettered at its last attempt")
		}
		step("b dead", store.Stats{Delayed: 1, InFlight: 1, Dead: 1, SentTotal: 4, AckedTotal: 1})

		e.ackOK("s", got[1].Lease)
		step("acked d", store.Stats{Delayed: 1, Dead: 1, SentTotal: 4, AckedTotal: 2})

		e.set(base.Add(time.Minute))
		step("c due", store.Stats{Ready: 1, Dead: 1, SentTotal: 4, AckedTotal: 2, OldestReady: base})
		e.tick()
		step("after Tick", store.Stats{Ready: 1, Dead: 1, SentTotal: 4, AckedTotal: 2, OldestReady: base})

		// Acks in the dead-letter queue count there, not in the source.
		dm := e.leaseFirst("s.dead", ab[1])
		e.ackOK("s.dead", dm.Lease)
		if s := e.stats("s.dead"); s.AckedTotal != 1 || s.Ready != 0 || s.InFlight != 0 {
			t.Errorf("dead-letter queue stats %+v, want 1 acked, empty", s)
		}
		step("dead letter acked", store.Stats{Ready: 1, SentTotal: 4, AckedTotal: 2, OldestReady: base})
	})
}
