package storetest

import (
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// release hands a leased message back unprocessed (NackParams.Release).
func (e *env) release(queue, lease string, delay *time.Duration) (store.NackResult, error) {
	e.t.Helper()
	return e.s.Nack(e.ctx, &store.NackParams{Queue: queue, Lease: lease, Delay: delay, Release: true,
		Now: e.now, Retry: e.retry})
}

func (e *env) releaseOK(queue, lease string, delay *time.Duration) store.NackResult {
	e.t.Helper()
	res, err := e.release(queue, lease, delay)
	if err != nil {
		e.t.Fatalf("at %v: Nack(%q) releasing: %v", e.since(), queue, err)
	}
	return res
}

func testRelease(t *testing.T, newStore newStoreFunc) {
	// A released message costs no attempt and is never dead-lettered, even
	// on its last attempt, and takes its place again ahead of later ones.
	t.Run("NoAttemptCounted", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		rec := &recorder{}
		e.retry = rec.retry
		cfg := config()
		cfg.MaxAttempts = 2
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1", "2")
		m := e.leaseFirst("q", ids[0])
		e.nackOK("q", m.Lease, ptr(0), "first try failed")
		rec.take()
		for range 3 {
			m = e.leaseFirst("q", ids[0])
			if m.Attempt != 2 {
				t.Fatalf("attempt %d after one nack and releases, want 2", m.Attempt)
			}
			res := e.releaseOK("q", m.Lease, nil)
			if res.DeadLettered {
				t.Fatal("a release on the last attempt dead-lettered the message")
			}
			wantTime(t, "RetryAt of a release without delay", res.RetryAt, e.now)
			wantStats(t, "after a release", e.stats("q"), store.Stats{Ready: 2, SentTotal: 2, OldestReady: base})
		}
		if calls := rec.take(); len(calls) != 0 {
			t.Errorf("RetryFunc called %d times by releases, want none", len(calls))
		}
		_, err := e.release("q", m.Lease, nil)
		wantErr(t, "second release of one lease", err, store.ErrLeaseExpired)
		if names := e.queueNames(); len(names) != 1 {
			t.Errorf("queues %v: a release dead-lettered something", names)
		}
		// The attempt that counts now fails for real: dead-lettered.
		m = e.leaseFirst("q", ids[0])
		if res := e.nackOK("q", m.Lease, ptr(0), "second try failed"); !res.DeadLettered {
			t.Errorf("nack on attempt %d of 2: %+v, want dead-lettered", m.Attempt, res)
		}
	})

	t.Run("Delay", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.sendText("q", "1")
		m := e.leaseOne("q", ids[0])
		res := e.releaseOK("q", m.Lease, ptr(5*time.Second))
		wantTime(t, "RetryAt", res.RetryAt, e.now.Add(5*time.Second))
		wantStats(t, "released for 5s", e.stats("q"), store.Stats{Delayed: 1, SentTotal: 1})
		e.advance(5*time.Second - time.Millisecond)
		wantTime(t, "NextDue", e.leaseNone("q").NextDue, res.RetryAt)
		e.advance(time.Millisecond)
		if r := e.tick(); r.Promoted != 1 {
			t.Errorf("Tick when the release's delay is over: %+v, want one promoted", r)
		}
		if m := e.leaseOne("q", ids[0]); m.Attempt != 1 {
			t.Errorf("attempt %d after a release, want 1", m.Attempt)
		}
	})

	// Released later, a message is still taken before those sent after it,
	// and after those of a higher priority; its release wakes watchers.
	t.Run("KeepsPlace", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		first := e.sendText("q", "1")[0]
		m := e.leaseOne("q", first)
		e.advance(time.Second)
		later := e.sendText("q", "2")[0]
		e.advance(time.Second)
		urgent := e.send("q", store.NewMessage{Body: []byte("3"), Kind: store.BodyJSON, Priority: 5})[0]
		e.advance(time.Second)
		w := e.s.Watch("q")
		e.releaseOK("q", m.Lease, nil)
		if !Closed(w) {
			t.Error("watch not closed after a release")
		}
		got := e.lease("q", 3)
		if len(got) != 3 || got[0].ID != urgent || got[1].ID != first || got[2].ID != later {
			t.Errorf("leased %v after the release; want %s (priority 5), %s (released), %s", ids(got), urgent, first, later)
		}
	})

	// A group's member given back is still first in line.
	t.Run("GroupKeepsOrder", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.send("q", gmsg("g1", "g"), gmsg("g2", "g"))
		m := e.leaseOne("q", ids[0])
		e.releaseOK("q", m.Lease, nil)
		m = e.leaseOne("q", ids[0])
		if m.Attempt != 1 {
			t.Errorf("attempt %d, want 1", m.Attempt)
		}
		e.ackOK("q", m.Lease)
		e.leaseOne("q", ids[1])
	})

	// A task given back is queued again, its attempt and error as before
	// the delivery; one whose cancel was requested ends cancelled instead.
	t.Run("Task", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		id := e.sendTask("q", taskReq())
		m := e.leaseOne("q", id)
		e.nackOK("q", m.Lease, ptr(0), "flaky")
		m = e.leaseOne("q", id)
		running := e.task(id)
		e.advance(time.Second)
		e.releaseOK("q", m.Lease, nil)
		tk := e.changed("released", running)
		want := running
		want.State, want.Attempt, want.Error, want.UpdatedAt = store.TaskQueued, 1, "flaky", e.now
		wantTask(t, "released", tk, want)

		m = e.leaseOne("q", id)
		if m.Attempt != 2 {
			t.Errorf("attempt %d after a nack and a release, want 2", m.Attempt)
		}
		if _, err := e.cancelTask(id); err != nil {
			t.Fatalf("CancelTask: %v", err)
		}
		if res := e.releaseOK("q", m.Lease, nil); !res.Cancelled || res.DeadLettered || !res.RetryAt.IsZero() {
			t.Errorf("release after a cancel request answered %+v; want cancelled only", res)
		}
		if tk := e.task(id); tk.State != store.TaskCancelled {
			t.Errorf("task released after a cancel request: %s, want cancelled", tk.State)
		}
		wantStats(t, "cancelled", e.stats("q"), store.Stats{SentTotal: 1})
	})

	// A plain nack after a cancel request answers the same.
	t.Run("NackCancelled", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		id := e.sendTask("q", taskReq())
		m := e.leaseOne("q", id)
		if _, err := e.cancelTask(id); err != nil {
			t.Fatalf("CancelTask: %v", err)
		}
		if res := e.nackOK("q", m.Lease, nil, "failed"); !res.Cancelled || res.DeadLettered || !res.RetryAt.IsZero() {
			t.Errorf("nack after a cancel request answered %+v; want cancelled only", res)
		}
	})
}
