package storetest

import (
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// Choice: Watch is checked right after the verb returns, without waiting: a
// store signals its own changes before the verb returns (signals from other
// nodes of a shared database may come later, but are not tested here).
func testWatch(t *testing.T, newStore newStoreFunc) {
	t.Run("Send", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("a", config())
		e.createQueue("b", config())
		wa, wb := e.s.Watch("a"), e.s.Watch("b")
		if Closed(wa) || Closed(wb) {
			t.Fatal("a fresh watch is already closed")
		}
		e.sendText("b", "1")
		if !Closed(wb) {
			t.Error("watch of b not closed after a send to b")
		}
		if Closed(wa) {
			t.Error("watch of a closed by a send to b")
		}
		e.sendText("a", "1")
		if !Closed(wa) {
			t.Error("watch of a not closed after a send to a")
		}
		// A new watch waits for the next change.
		wa2 := e.s.Watch("a")
		if Closed(wa2) {
			t.Error("a watch taken after the send is already closed")
		}
		e.sendText("a", "2")
		if !Closed(wa2) {
			t.Error("second watch not closed after a send")
		}
	})

	t.Run("Nack", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.sendText("q", "1", "2")
		got := e.lease("q", 2)
		e.ackOK("q", got[1].Lease)
		w := e.s.Watch("q")
		e.nackOK("q", got[0].Lease, ptr(0), "")
		if !Closed(w) {
			t.Error("watch not closed after a nack")
		}
	})

	t.Run("GroupFreed", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 1
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		e.send("q", gmsg("1", "g"), gmsg("2", "g"), gmsg("3", "g"))
		// An ack or a dead-lettering that lets the next message of a group
		// through makes a message available.
		m := e.lease("q", 10)[0]
		w := e.s.Watch("q")
		e.ackOK("q", m.Lease)
		if !Closed(w) {
			t.Error("watch not closed after an ack freed the next message of a group")
		}
		m = e.lease("q", 10)[0]
		w = e.s.Watch("q")
		wd := e.s.Watch("q.dead")
		e.nackOK("q", m.Lease, nil, "dead")
		if !Closed(w) {
			t.Error("watch not closed after a dead-lettering freed the next message of a group")
		}
		// Choice: a message dead-lettered into a queue wakes its watchers,
		// as a send does.
		if !Closed(wd) {
			t.Error("watch of the dead-letter queue not closed after a message moved in")
		}
	})

	t.Run("Resume", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.setPaused("q", true)
		e.sendText("q", "1")
		w := e.s.Watch("q")
		e.setPaused("q", false)
		if !Closed(w) {
			t.Error("watch not closed after resume")
		}
	})

	t.Run("ReleasedLease", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.Backoff.Initial = 0
		e.createQueue("q", cfg)
		e.sendText("q", "1")
		e.lease("q", 1)
		w := e.s.Watch("q")
		e.advance(10 * time.Second)
		e.tick()
		if Closed(w) {
			t.Error("watch closed by a Tick that released nothing")
		}
		e.advance(20 * time.Second)
		if r := e.tick(); r.Expired != 1 {
			t.Fatalf("Tick %+v, want 1 expired", r)
		}
		if !Closed(w) {
			t.Error("watch not closed after Tick released a lease")
		}
	})

	t.Run("Unrelated", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.createQueue("other", config())
		w := e.s.Watch("q")
		e.sendText("other", "1")
		e.lease("other", 1)
		e.getQueue("q")
		e.queueNames()
		e.leaseNone("q")
		e.tick()
		if Closed(w) {
			t.Error("watch of q closed though nothing happened to q")
		}
		// Watching a queue that does not exist yet is allowed.
		w2 := e.s.Watch("later")
		e.createQueue("later", config())
		e.send("later", store.NewMessage{Body: []byte("1"), Kind: store.BodyJSON})
		if !Closed(w2) {
			t.Error("watch taken before the queue existed not closed by a send")
		}
	})
}
