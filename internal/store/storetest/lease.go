package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

func testLease(t *testing.T, newStore newStoreFunc) {
	t.Run("PriorityThenSendOrder", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		p := func(prio int) store.NewMessage {
			return store.NewMessage{Body: []byte(fmt.Sprint(prio)), Kind: store.BodyJSON, Priority: prio}
		}
		a := e.send("q", p(-5), p(0))
		e.advance(time.Second)
		b := e.send("q", p(10))
		c := e.send("q", p(10), p(0), p(100))
		e.advance(time.Second)
		d := e.send("q", p(-100), p(1))
		// Choice: the messages of one Lease come in the order they were
		// chosen: priority, then send order.
		wantIDs(t, "first lease", e.lease("q", 3), c[2], b[0], c[0])
		wantIDs(t, "second lease", e.lease("q", 2), d[1], a[1])
		wantIDs(t, "third lease", e.lease("q", 10), c[1], a[0], d[0])
		e.leaseNone("q")
	})

	t.Run("MaxBytes", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.leaseNone("q") // the queue was looked at before the sends
		body := func(n int) store.NewMessage {
			return store.NewMessage{Body: make([]byte, n), Kind: store.BodyBinary}
		}
		ids := e.send("q", body(60), body(60), body(60))
		leaseBytes := func(maxBytes int) []store.Message {
			t.Helper()
			res, err := e.s.Lease(e.ctx, &store.LeaseParams{Queue: "q", Max: 10, MaxBytes: maxBytes, Now: e.now, Retry: e.retry})
			if err != nil {
				t.Fatalf("Lease: %v", err)
			}
			return res.Messages
		}
		// The lease stops once the bodies reach MaxBytes: the one that
		// crosses it is handed out, the next is not.
		wantIDs(t, "first lease, 100 bytes", leaseBytes(100), ids[0], ids[1])
		wantIDs(t, "second lease, 100 bytes", leaseBytes(100), ids[2])
		big := e.send("q", body(150), body(10))
		wantIDs(t, "a body over the limit comes alone", leaseBytes(100), big[0])
		wantIDs(t, "then the rest", leaseBytes(100), big[1])
		exact := e.send("q", body(50), body(50), body(50))
		wantIDs(t, "reaching the limit exactly", leaseBytes(100), exact[0], exact[1])
		wantIDs(t, "no limit", leaseBytes(0), exact[2])
	})

	t.Run("OldestFirstBySendTime", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		// Choice: "oldest first" means by send order, also for a message
		// that became ready late: one that was delayed, or one given back by
		// a nack, keeps its place ahead of messages sent after it.
		delayed := e.send("q", store.NewMessage{Body: []byte("1"), Kind: store.BodyJSON, NotBefore: base.Add(10 * time.Second)})
		first := e.sendText("q", "2")
		e.advance(5 * time.Second)
		later := e.sendText("q", "3", "4")
		m := e.leaseFirst("q", first[0])
		e.nackOK("q", m.Lease, ptr(0), "again")
		e.set(base.Add(10 * time.Second))
		got := e.lease("q", 10)
		wantIDs(t, "lease", got, delayed[0], first[0], later[0], later[1])
		if got[1].Attempt != 2 {
			t.Errorf("nacked message: attempt %d, want 2", got[1].Attempt)
		}
	})

	t.Run("Max", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.sendText("q", "1", "2", "3", "4", "5")
		wantIDs(t, "max 1", e.lease("q", 1), ids[0])
		wantIDs(t, "max 2", e.lease("q", 2), ids[1], ids[2])
		wantIDs(t, "max 5", e.lease("q", 5), ids[3], ids[4])
		e.leaseNone("q")
	})

	t.Run("FreshLease", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.VisibilityTimeout = 42 * time.Second
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1", "2", "3")
		e.advance(time.Second)
		res := e.leaseResult("q", 2, 90*time.Second)
		wantIDs(t, "lease with visibility", res.Messages, ids[0], ids[1])
		got := e.lease("q", 1) // visibility 0: the queue's timeout
		wantIDs(t, "lease with default visibility", got, ids[2])
		all := append(res.Messages, got...)
		seen := map[string]bool{}
		for i, m := range all {
			if m.Attempt != 1 {
				t.Errorf("message %d: attempt %d on first delivery, want 1", i, m.Attempt)
			}
			if m.Lease == "" || seen[m.Lease] {
				t.Errorf("message %d: lease %q is empty or not unique", i, m.Lease)
			}
			seen[m.Lease] = true
			want := e.now.Add(90 * time.Second)
			if i == 2 {
				want = e.now.Add(42 * time.Second)
			}
			wantTime(t, fmt.Sprintf("message %d LeaseExpiresAt", i), m.LeaseExpiresAt, want)
		}
	})

	t.Run("NotHandedOutTwiceWhileLeased", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.sendText("q", "1", "2")
		if n := len(e.lease("q", 10)); n != 2 {
			t.Fatalf("leased %d, want 2", n)
		}
		more := e.sendText("q", "3")
		e.advance(30*time.Second - time.Millisecond)
		if r := e.tick(); r.Expired+r.DeadLettered != 0 {
			t.Errorf("Tick before expiry released leases: %+v", r)
		}
		wantIDs(t, "lease just before expiry", e.lease("q", 10), more[0])
		e.leaseNone("q")
	})

	t.Run("NotBefore", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		due := base.Add(10 * time.Second)
		ids := e.send("q", store.NewMessage{Body: []byte("1"), Kind: store.BodyJSON, NotBefore: due})
		wantStats(t, "delayed", e.stats("q"), store.Stats{Delayed: 1, SentTotal: 1})
		res := e.leaseNone("q")
		wantTime(t, "NextDue", res.NextDue, due)
		e.set(due.Add(-time.Millisecond))
		res = e.leaseNone("q")
		wantTime(t, "NextDue just before", res.NextDue, due)
		// Due means due at that instant: a caller woken at NextDue finds it.
		e.set(due)
		m := e.leaseOne("q", ids[0])
		if m.Attempt != 1 {
			t.Errorf("attempt %d, want 1", m.Attempt)
		}
		wantTime(t, "SentAt", m.SentAt, base)
	})

	t.Run("NextDue", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		if res := e.leaseNone("q"); !res.NextDue.IsZero() {
			t.Errorf("NextDue of an empty queue = %v, want zero", res.NextDue)
		}
		e.sendText("q", "1")
		// A Lease that hands messages out need not say (its caller does not
		// wait); the next that hands out none does: the lease will expire.
		res := e.leaseResult("q", 1, 0)
		if len(res.Messages) != 1 {
			t.Fatalf("leased %d, want 1", len(res.Messages))
		}
		if !res.NextDue.IsZero() {
			wantTime(t, "NextDue of the lease that handed one out", res.NextDue, base.Add(30*time.Second))
		}
		wantTime(t, "NextDue with one message in flight", e.leaseNone("q").NextDue, base.Add(30*time.Second))
		e.send("q", store.NewMessage{Body: []byte("2"), Kind: store.BodyJSON, NotBefore: base.Add(10 * time.Second)})
		wantTime(t, "NextDue with a delayed message due first", e.leaseNone("q").NextDue, base.Add(10*time.Second))
		e.advance(time.Second)
		e.ackOK("q", res.Messages[0].Lease)
		wantTime(t, "NextDue after the ack", e.leaseNone("q").NextDue, base.Add(10*time.Second))
	})
}

func testExtend(t *testing.T, newStore newStoreFunc) {
	t.Run("NewExpiry", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.Backoff.Initial = 0
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1")
		m := e.lease("q", 1)[0] // expires at +30s
		e.advance(20 * time.Second)
		exp, err := e.extend("q", m.Lease, 60*time.Second)
		if err != nil {
			t.Fatalf("Extend: %v", err)
		}
		wantTime(t, "Extend result", exp, base.Add(80*time.Second))
		// Not redelivered before the new expiry.
		e.set(base.Add(80*time.Second - time.Millisecond))
		if r := e.tick(); r.Expired+r.DeadLettered != 0 {
			t.Errorf("Tick before the extended expiry released the lease: %+v", r)
		}
		res := e.leaseNone("q")
		wantTime(t, "NextDue", res.NextDue, base.Add(80*time.Second))
		// Extend keeps the same lease: it is still valid.
		exp, err = e.extend("q", m.Lease, 0) // 0: the queue's visibility timeout
		if err != nil {
			t.Fatalf("second Extend: %v", err)
		}
		wantTime(t, "Extend with visibility 0", exp, e.now.Add(30*time.Second))
		// Choice: Extend sets the expiry to Now+Visibility even when that
		// is sooner than the current expiry (it can shorten a lease).
		exp, err = e.extend("q", m.Lease, time.Second)
		if err != nil {
			t.Fatalf("shortening Extend: %v", err)
		}
		wantTime(t, "shortening Extend", exp, e.now.Add(time.Second))
		e.advance(time.Second)
		m2 := e.leaseOne("q", ids[0])
		if m2.Attempt != 2 {
			t.Errorf("attempt after expiry %d, want 2", m2.Attempt)
		}
		_, err = e.extend("q", m.Lease, time.Minute)
		wantErr(t, "Extend of the superseded lease", err, store.ErrLeaseExpired)
		e.ackOK("q", m2.Lease)
	})

	t.Run("Stale", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.Backoff.Initial = 0
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1", "2")
		got := e.lease("q", 2)
		e.ackOK("q", got[0].Lease)
		_, err := e.extend("q", got[0].Lease, time.Minute)
		wantErr(t, "Extend of an acked lease", err, store.ErrLeaseExpired)
		_, err = e.extend("q", "garbage", time.Minute)
		wantErr(t, "Extend of a garbage lease", err, store.ErrInvalidLease, store.ErrLeaseExpired)
		// Expired (Now at LeaseExpiresAt) but not yet released by anyone.
		e.set(got[1].LeaseExpiresAt)
		_, err = e.extend("q", got[1].Lease, time.Minute)
		wantErr(t, "Extend of an expired lease", err, store.ErrLeaseExpired)
		m := e.leaseOne("q", ids[1])
		if m.Attempt != 2 {
			t.Errorf("attempt %d after a refused Extend, want 2", m.Attempt)
		}
	})
}
