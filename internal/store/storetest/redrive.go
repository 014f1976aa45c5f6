package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// killAll leases every ready message of queue and nacks it with reason,
// for queues with MaxAttempts 1: each one is dead-lettered.
func (e *env) killAll(queue, reason string) {
	e.t.Helper()
	for _, m := range e.lease(queue, 100) {
		if res := e.nackOK(queue, m.Lease, nil, reason); !res.DeadLettered {
			e.t.Fatalf("nack of %s did not dead-letter it", m.ID)
		}
	}
}

func testRedrive(t *testing.T, newStore newStoreFunc) {
	t.Run("BackToSource", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 1
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		hdrs := map[string]string{"trace-id": "x"}
		ids := e.send("q",
			store.NewMessage{Body: []byte{0, 0xff}, Kind: store.BodyBinary, Headers: hdrs},
			store.NewMessage{Body: []byte(`"b"`), Kind: store.BodyJSON},
		)
		e.killAll("q", "failed")
		// Someone looked at the first dead letter and gave it back: it has
		// been delivered once in the dead-letter queue.
		if d := e.leaseFirst("q.dead", ids[0]); d.Attempt != 1 {
			t.Errorf("dead letter: attempt %d, want 1", d.Attempt)
		} else {
			e.nackOK("q.dead", d.Lease, ptr(0), "not now")
		}
		e.advance(time.Minute)
		if n := e.redrive("q", 100); n != 2 {
			t.Fatalf("Redrive = %d, want 2", n)
		}
		// Left open: the send time (and so the retention clock and
		// OldestReady) of a message moved by dead-lettering or redrive.
		// Also open: whether a redriven message counts again in SentTotal.
		if s := e.stats("q"); s.Ready != 2 || s.Dead != 0 || s.InFlight != 0 || s.Delayed != 0 {
			t.Errorf("source after redrive: %+v, want 2 ready, none dead", s)
		}
		if s := e.stats("q.dead"); s.Ready != 0 || s.InFlight != 0 || s.Delayed != 0 {
			t.Errorf("dead-letter queue after redrive: %+v, want empty", s)
		}
		e.leaseNone("q.dead")
		// Choice: a redriven message keeps its id, as dead-lettering does.
		got := e.lease("q", 10)
		wantIDs(t, "lease after redrive", got, ids...)
		for _, m := range got {
			if m.Attempt != 1 {
				t.Errorf("redriven message %s: attempt %d, want 1", m.ID, m.Attempt)
			}
			if m.Queue != "q" {
				t.Errorf("redriven message %s: queue %q, want q", m.ID, m.Queue)
			}
		}
		wantBody(t, got[0], []byte{0, 0xff}, store.BodyBinary)
		wantHeaders(t, got[0], hdrs)
		wantBody(t, got[1], []byte(`"b"`), store.BodyJSON)
		wantHeaders(t, got[1], nil)
		// Attempts start over: the message dies again after MaxAttempts.
		e.nackOK("q", got[0].Lease, nil, "again")
		e.ackOK("q", got[1].Lease)
		d := e.leaseOne("q.dead", ids[0])
		again := "again"
		wantDead(t, d, hdrs, "q", "1", &again)
	})

	t.Run("Max", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 1
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1", "2", "3", "4", "5")
		e.killAll("q", "x")
		if n := e.redrive("q", 2); n != 2 {
			t.Fatalf("Redrive(max 2) = %d, want 2", n)
		}
		if s := e.stats("q"); s.Ready != 2 || s.Dead != 3 {
			t.Errorf("source after Redrive(max 2): %+v, want 2 ready, 3 dead", s)
		}
		if n := e.redrive("q", 10); n != 3 {
			t.Fatalf("second Redrive = %d, want 3", n)
		}
		if n := e.redrive("q", 10); n != 0 {
			t.Fatalf("third Redrive = %d, want 0", n)
		}
		got := e.lease("q", 10)
		if g := sortedIDs(got); !slices.Equal(g, ids) {
			t.Errorf("messages back in q: %v, want %v", g, ids)
		}
	})

	t.Run("SharedDeadLetterQueue", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 1
		cfg.DeadLetterQueue = "shared.dead"
		e.createQueue("a", cfg)
		e.createQueue("b", cfg)
		a := e.sendText("a", "a1", "a2")
		b := e.sendText("b", "b1")
		e.killAll("a", "x")
		e.killAll("b", "y")
		wantStats(t, "a", e.stats("a"), store.Stats{Dead: 2, SentTotal: 2})
		wantStats(t, "b", e.stats("b"), store.Stats{Dead: 1, SentTotal: 1})
		if n := e.redrive("a", 100); n != 2 {
			t.Fatalf("Redrive(a) = %d, want 2", n)
		}
		wantIDs(t, "a after redrive", e.lease("a", 10), a...)
		e.leaseNone("b")
		wantStats(t, "b after redriving a", e.stats("b"), store.Stats{Dead: 1, SentTotal: 1})
		d := e.leaseOne("shared.dead", b[0])
		y := "y"
		wantDead(t, d, nil, "b", "1", &y)
	})

	t.Run("NothingDead", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		// Choice: redriving when the dead-letter queue does not exist (or
		// the queue has none) moves nothing and is not an error.
		if n := e.redrive("q", 10); n != 0 {
			t.Errorf("Redrive with no dead-letter queue yet = %d, want 0", n)
		}
		e.createQueue("none", config())
		if n := e.redrive("none", 10); n != 0 {
			t.Errorf("Redrive of a queue without a dead-letter queue = %d, want 0", n)
		}
		// Messages sent straight into a dead-letter queue were not
		// dead-lettered from q: they stay.
		e.createQueue("q.dead", store.DefaultConfig("q.dead"))
		direct := e.sendText("q.dead", "direct")
		if n := e.redrive("q", 10); n != 0 {
			t.Errorf("Redrive moved %d messages that were never dead-lettered", n)
		}
		e.leaseOne("q.dead", direct[0])
	})
}

// sortedIDs returns the ids of ms, sorted.
func sortedIDs(ms []store.Message) []string {
	out := ids(ms)
	slices.Sort(out)
	return out
}
