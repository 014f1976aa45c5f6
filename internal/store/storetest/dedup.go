package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// kmsg is a JSON message with dedup key k.
func kmsg(body, k string) store.NewMessage {
	return store.NewMessage{Body: []byte(body), Kind: store.BodyJSON, DedupKey: k}
}

func dedupConfig() store.QueueConfig {
	cfg := config()
	cfg.DedupWindow = 10 * time.Second
	return cfg
}

func testDedup(t *testing.T, newStore newStoreFunc) {
	t.Run("WithinWindow", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", dedupConfig())
		first := e.send("q", kmsg("first", "k"))
		e.advance(5 * time.Second)
		res := e.sendResults("q", kmsg("second", "k"))
		if res[0].ID != first[0] || !res[0].Duplicate {
			t.Errorf("second send: %+v, want id %s and Duplicate", res[0], first[0])
		}
		wantStats(t, "after duplicate", e.stats("q"), store.Stats{Ready: 1, SentTotal: 1, OldestReady: base})
		m := e.leaseOne("q", first[0])
		wantBody(t, m, []byte("first"), store.BodyJSON)
		// Choice: the key stays taken for the whole window even once the
		// first message is acked (it is about not doing the work twice).
		e.ackOK("q", m.Lease)
		e.advance(time.Second)
		res = e.sendResults("q", kmsg("third", "k"))
		if res[0].ID != first[0] || !res[0].Duplicate {
			t.Errorf("send after ack: %+v, want id %s and Duplicate", res[0], first[0])
		}
		wantStats(t, "after second duplicate", e.stats("q"), store.Stats{SentTotal: 1, AckedTotal: 1})
		e.leaseNone("q")
	})

	t.Run("AfterWindow", func(t *testing.T) {
		t.Parallel()
		for _, withTick := range []bool{false, true} {
			name := map[bool]string{false: "WithoutTick", true: "WithTick"}[withTick]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := setup(t, newStore)
				e.createQueue("q", dedupConfig())
				first := e.send("q", kmsg("1", "k"))
				// Choice: the window counts from the first send; duplicates
				// do not extend it.
				e.advance(9 * time.Second)
				if r := e.sendResults("q", kmsg("2", "k")); !r[0].Duplicate {
					t.Fatalf("send at +9s not a duplicate: %+v", r[0])
				}
				e.set(base.Add(10*time.Second + time.Millisecond))
				if withTick {
					e.tick()
				}
				second := e.send("q", kmsg("3", "k")) // fails if reported duplicate
				if second[0] == first[0] {
					t.Fatalf("a new message reuses the id %s", first[0])
				}
				wantStats(t, "after the window", e.stats("q"), store.Stats{Ready: 2, SentTotal: 2, OldestReady: base})
				// The new message is now the one that dedups.
				e.advance(time.Second)
				if r := e.sendResults("q", kmsg("4", "k")); r[0].ID != second[0] || !r[0].Duplicate {
					t.Errorf("send after the renewal: %+v, want id %s and Duplicate", r[0], second[0])
				}
				wantIDs(t, "lease", e.lease("q", 10), first[0], second[0])
			})
		}
	})

	t.Run("InBatch", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", dedupConfig())
		// Choice: a batch is deduplicated against itself too.
		res := e.sendResults("q", kmsg("a", "k1"), kmsg("b", "k2"), kmsg("c", "k1"), msg("d"), msg("e"))
		if res[2].ID != res[0].ID || !res[2].Duplicate {
			t.Errorf("third message of the batch: %+v, want a duplicate of %s", res[2], res[0].ID)
		}
		for _, i := range []int{0, 1, 3, 4} {
			if res[i].Duplicate {
				t.Errorf("message %d reported duplicate", i)
			}
		}
		want := []string{res[0].ID, res[1].ID, res[3].ID, res[4].ID}
		if len(slices.Compact(slices.Sorted(slices.Values(want)))) != 4 {
			t.Errorf("ids of distinct messages are not distinct: %v", want)
		}
		wantIDs(t, "lease", e.lease("q", 10), want...)
		if s := e.stats("q"); s.SentTotal != 4 {
			t.Errorf("SentTotal %d, want 4", s.SentTotal)
		}
	})

	t.Run("PerQueue", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("a", dedupConfig())
		e.createQueue("b", dedupConfig())
		a := e.send("a", kmsg("1", "k"))
		b := e.send("b", kmsg("1", "k")) // fails if reported duplicate
		if a[0] == b[0] {
			t.Errorf("two queues share id %s", a[0])
		}
		// A deleted and re-created queue forgets its keys.
		if err := e.s.DeleteQueue(e.ctx, &store.DeleteQueueParams{Name: "a"}); err != nil {
			t.Fatal(err)
		}
		e.createQueue("a", dedupConfig())
		e.send("a", kmsg("1", "k"))
	})

	t.Run("WindowZero", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config()) // DedupWindow 0
		ids := e.send("q", kmsg("1", "k"), kmsg("2", "k"))
		ids = append(ids, e.send("q", kmsg("3", "k"))...)
		wantIDs(t, "lease", e.lease("q", 10), ids...)
		if s := e.stats("q"); s.SentTotal != 3 {
			t.Errorf("SentTotal %d, want 3", s.SentTotal)
		}
	})

	t.Run("NoKey", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", dedupConfig())
		ids := e.sendText("q", "same", "same")
		if ids[0] == ids[1] {
			t.Error("messages without a dedup key were deduplicated")
		}
	})
}
