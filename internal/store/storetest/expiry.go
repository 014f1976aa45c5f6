package storetest

import (
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// expiryConfig: 10s visibility, 5s backoff, 3 attempts.
func expiryConfig() store.QueueConfig {
	cfg := config()
	cfg.VisibilityTimeout = 10 * time.Second
	return cfg
}

func testExpiry(t *testing.T, newStore newStoreFunc) {
	t.Run("LazyByLease", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", expiryConfig())
		ids := e.sendText("q", "1")
		e.leaseOne("q", ids[0])
		// Expired at +10s, retried 5s later.
		e.set(base.Add(10 * time.Second))
		wantTime(t, "NextDue after expiry", e.leaseNone("q").NextDue, base.Add(15*time.Second))
		e.set(base.Add(15 * time.Second))
		m := e.leaseOne("q", ids[0])
		if m.Attempt != 2 {
			t.Errorf("attempt %d, want 2", m.Attempt)
		}
		wantTime(t, "LeaseExpiresAt", m.LeaseExpiresAt, base.Add(25*time.Second))
		e.set(base.Add(30 * time.Second))
		if m = e.leaseOne("q", ids[0]); m.Attempt != 3 {
			t.Errorf("attempt %d, want 3", m.Attempt)
		}
		// The third expiry uses the last attempt: dropped (no dead-letter queue).
		e.set(base.Add(40 * time.Second))
		if res := e.leaseNone("q"); !res.NextDue.IsZero() {
			t.Errorf("NextDue %v after the message was dropped, want zero", res.NextDue)
		}
		wantStats(t, "after the last expiry", e.stats("q"), store.Stats{SentTotal: 1})
		e.set(base.Add(time.Hour))
		e.leaseNone("q")
	})

	t.Run("DueWorkCountedOnce", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			name string
			at   time.Duration // when the leases and the Tick run
			want store.TickResult
		}{
			// At +10s the lease has expired (retried at +15s) and the
			// delayed message is due.
			{"expiry and promotion", 10 * time.Second, store.TickResult{Promoted: 1, Expired: 1}},
			// At +20s the retry is due too: it is ready at once, an expiry
			// and not also a promotion.
			{"expiry past its retry", 20 * time.Second, store.TickResult{Promoted: 1, Expired: 1}},
			// Past retention (1h), neither is left.
			{"past retention", 2 * time.Hour, store.TickResult{Promoted: 1, Expired: 1, Dropped: 2}},
		} {
			t.Run(c.name, func(t *testing.T) {
				e := setup(t, newStore)
				cfg := expiryConfig()
				cfg.Retention = time.Hour
				e.createQueue("q", cfg)
				ids := e.sendText("q", "1")
				later := msg("2")
				later.NotBefore = base.Add(time.Second)
				e.send("q", later)
				e.leaseOne("q", ids[0])
				e.set(base.Add(c.at))
				// Each piece of due work is counted once, by whichever
				// lease or Tick did it.
				var sum store.TickResult
				for range 2 {
					res := e.leaseResult("q", 10, 0)
					if !res.Due.NextDue.IsZero() {
						t.Errorf("a lease's Due has NextDue %v, want zero", res.Due.NextDue)
					}
					sum.Add(res.Due)
				}
				sum.Add(e.tick())
				if sum != c.want {
					t.Errorf("due work counted %+v, want %+v", sum, c.want)
				}
			})
		}
	})

	t.Run("RetryCountsFromExpiry", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", expiryConfig())
		e.createQueue("idle", expiryConfig())
		ids := e.sendText("q", "1")
		idle := e.sendText("idle", "2")
		e.leaseOne("q", ids[0])
		e.leaseOne("idle", idle[0])
		// Choice: an expired lease is retried RetryFunc's delay after the
		// lease expired, however late the store notices: the outcome does
		// not depend on when Lease or Tick happen to run.
		e.set(base.Add(12 * time.Second))
		wantTime(t, "NextDue noticed late", e.leaseNone("q").NextDue, base.Add(15*time.Second))
		e.set(base.Add(15 * time.Second))
		e.leaseOne("q", ids[0])
		// Nobody looked at "idle" for an hour: its message is there at once.
		e.set(base.Add(time.Hour))
		if m := e.leaseOne("idle", idle[0]); m.Attempt != 2 {
			t.Errorf("attempt %d, want 2", m.Attempt)
		}
	})

	t.Run("RetryFuncOnExpiry", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		rec := &recorder{}
		e.retry = rec.retry
		cfg := expiryConfig()
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1")
		e.leaseOne("q", ids[0])
		e.set(base.Add(10 * time.Second))
		e.leaseNone("q")
		calls := rec.take()
		if len(calls) != 1 || calls[0].cfg != cfg || calls[0].attempt != 1 || calls[0].explicit != nil {
			t.Errorf("RetryFunc calls %+v, want one with the queue's config, attempt 1, no explicit delay", calls)
		}
		// The recorder's delay (7s), not the queue's backoff (5s).
		e.set(base.Add(17*time.Second - time.Millisecond))
		e.leaseNone("q")
		e.set(base.Add(17 * time.Second))
		e.leaseOne("q", ids[0])
	})

	// A lease or a send can make something due sooner than anything in the
	// queue when it was last leased from: a store that remembers when each
	// queue is next due must count them.
	t.Run("ShortLeaseAfterLongOne", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", expiryConfig())
		ids := e.sendText("q", "1", "2")
		e.leaseFirst("q", ids[0]) // expires at +10s
		e.set(base.Add(time.Second))
		if ms := e.leaseResult("q", 1, 2*time.Second).Messages; len(ms) != 1 || ms[0].ID != ids[1] {
			t.Fatalf("Lease for 2s = %v, want [%s]", ms, ids[1])
		}
		e.set(base.Add(3 * time.Second)) // expired, retried 5s later
		wantTime(t, "NextDue once the short lease expired", e.leaseNone("q").NextDue, base.Add(8*time.Second))
		e.set(base.Add(8 * time.Second))
		if m := e.leaseOne("q", ids[1]); m.Attempt != 2 {
			t.Errorf("attempt %d, want 2", m.Attempt)
		}
	})

	t.Run("RetentionOfASendAfterALease", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := expiryConfig()
		cfg.Retention = time.Minute
		e.createQueue("q", cfg)
		e.leaseNone("q") // nothing in the queue
		e.sendText("q", "1")
		e.set(base.Add(time.Minute + time.Second))
		e.leaseNone("q")
		wantStats(t, "after the retention", e.stats("q"), store.Stats{SentTotal: 1})
	})

	t.Run("RetentionShortened", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", expiryConfig())
		e.sendText("q", "1")
		e.setPaused("q", true)
		e.leaseNone("q") // the queue was looked at: retention ends in 1000h
		cfg := expiryConfig()
		cfg.Retention = time.Minute
		if _, err := e.s.UpdateQueue(e.ctx, &store.UpdateQueueParams{Name: "q", Config: cfg, Now: e.now}); err != nil {
			t.Fatal(err)
		}
		e.set(base.Add(time.Minute + time.Second))
		e.leaseNone("q")
		e.setPaused("q", false)
		e.leaseNone("q")
		wantStats(t, "after the shortened retention", e.stats("q"), store.Stats{SentTotal: 1})
	})

	t.Run("ByTick", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", expiryConfig())
		ids := e.sendText("q", "1")
		old := e.leaseOne("q", ids[0])
		e.set(base.Add(10 * time.Second))
		r := e.tick()
		if r.Expired != 1 || r.DeadLettered != 0 || r.Dropped != 0 {
			t.Errorf("Tick %+v, want 1 expired", r)
		}
		wantTime(t, "Tick NextDue", r.NextDue, base.Add(15*time.Second))
		wantStats(t, "after Tick", e.stats("q"), store.Stats{Delayed: 1, SentTotal: 1})
		wantErr(t, "Ack after Tick released the lease", e.ack("q", old.Lease)[0], store.ErrLeaseExpired)
		e.set(base.Add(15 * time.Second))
		m := e.leaseOne("q", ids[0])
		if m.Attempt != 2 {
			t.Errorf("attempt %d, want 2", m.Attempt)
		}
		e.ackOK("q", m.Lease)
	})

	t.Run("DeadLetteredByTick", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := expiryConfig()
		cfg.MaxAttempts = 1
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1")
		e.leaseOne("q", ids[0])
		e.set(base.Add(10 * time.Second))
		r := e.tick()
		// Choice (left open): whether a lease that expired into the
		// dead-letter queue also counts as Expired. DeadLettered must be 1.
		if r.DeadLettered != 1 || (r.Expired != 0 && r.Expired != 1) || r.Dropped != 0 {
			t.Errorf("Tick %+v, want 1 dead-lettered", r)
		}
		wantStats(t, "source", e.stats("q"), store.Stats{Dead: 1, SentTotal: 1})
		d := e.leaseOne("q.dead", ids[0])
		wantDead(t, d, nil, "q", "1", nil)
	})
}

func testTick(t *testing.T, newStore newStoreFunc) {
	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		if r := e.tick(); r != (store.TickResult{}) {
			t.Errorf("Tick on an empty store: %+v, want zero", r)
		}
		e.createQueue("q", config())
		if r := e.tick(); r != (store.TickResult{}) {
			t.Errorf("Tick with an empty queue: %+v, want zero", r)
		}
	})

	t.Run("CountsAndNextDue", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := expiryConfig()
		cfg.MaxAttempts = 2
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		e.createQueue("r", expiryConfig())
		ab := e.sendText("q", "a", "b")
		c := e.send("q", store.NewMessage{Body: []byte("c"), Kind: store.BodyJSON, NotBefore: base.Add(20 * time.Second)})
		rs := e.sendText("r", "r")
		e.lease("q", 2)
		e.lease("r", 1)

		r := e.tick()
		if r.Promoted+r.Expired+r.DeadLettered+r.Dropped != 0 {
			t.Errorf("Tick at +0s: %+v, want no work", r)
		}
		wantTime(t, "NextDue at +0s", r.NextDue, base.Add(10*time.Second))

		// Three leases expire, in two queues, all retried 5s later.
		e.set(base.Add(10 * time.Second))
		r = e.tick()
		if r.Expired != 3 || r.DeadLettered != 0 || r.Dropped != 0 {
			t.Errorf("Tick at +10s: %+v, want 3 expired", r)
		}
		wantTime(t, "NextDue at +10s", r.NextDue, base.Add(15*time.Second))
		if r = e.tick(); r.Promoted+r.Expired+r.DeadLettered+r.Dropped != 0 {
			t.Errorf("second Tick at +10s: %+v, want no work", r)
		}

		e.set(base.Add(15 * time.Second))
		e.tick() // the retries come due (whether that counts as Promoted is open)
		wantIDs(t, "lease q at +15s", e.lease("q", 10), ab[0], ab[1])
		wantIDs(t, "lease r at +15s", e.lease("r", 10), rs[0])
		if r = e.tick(); r.Promoted+r.Expired+r.DeadLettered+r.Dropped != 0 {
			t.Errorf("Tick after leasing at +15s: %+v, want no work", r)
		}
		wantTime(t, "NextDue at +15s", r.NextDue, base.Add(20*time.Second))

		e.set(base.Add(20 * time.Second))
		r = e.tick()
		if r.Promoted != 1 || r.Expired != 0 || r.DeadLettered != 0 {
			t.Errorf("Tick at +20s: %+v, want 1 promoted", r)
		}
		wantTime(t, "NextDue at +20s", r.NextDue, base.Add(25*time.Second))
		e.leaseOne("q", c[0]) // expires at +30s

		// a and b used their last attempt: dead-lettered; r retries.
		e.set(base.Add(25 * time.Second))
		r = e.tick()
		if r.DeadLettered != 2 || r.Dropped != 0 || r.Expired < 1 || r.Expired > 3 {
			t.Errorf("Tick at +25s: %+v, want 2 dead-lettered and r's lease expired", r)
		}
		wantTime(t, "NextDue at +25s", r.NextDue, base.Add(30*time.Second))
		wantStats(t, "q at +25s", e.stats("q"), store.Stats{InFlight: 1, Dead: 2, SentTotal: 3})
		wantStats(t, "r at +25s", e.stats("r"), store.Stats{Delayed: 1, SentTotal: 1})
	})
}
