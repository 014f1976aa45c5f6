package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// retryCall is one call of a recording RetryFunc.
type retryCall struct {
	cfg      store.QueueConfig
	attempt  int
	explicit *time.Duration
}

// recorder is a RetryFunc that records its calls. It answers like retry,
// but its backoff is 7s per attempt, so a store that computes a delay by
// itself instead of asking the RetryFunc is caught.
type recorder struct {
	mu    sync.Mutex // guards calls
	calls []retryCall
}

func (r *recorder) retry(q store.QueueConfig, attempt int, explicit *time.Duration) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := retryCall{cfg: q, attempt: attempt}
	if explicit != nil {
		d := *explicit
		c.explicit = &d
	}
	r.calls = append(r.calls, c)
	if q.MaxAttempts > 0 && attempt >= q.MaxAttempts {
		return 0, true
	}
	if explicit != nil {
		return *explicit, false
	}
	return time.Duration(attempt) * 7 * time.Second, false
}

func (r *recorder) take() []retryCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func testNack(t *testing.T, newStore newStoreFunc) {
	t.Run("ExplicitDelay", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.sendText("q", "1")
		m := e.leaseOne("q", ids[0])
		e.advance(time.Second)
		res := e.nackOK("q", m.Lease, ptr(20*time.Second), "later")
		at := base.Add(21 * time.Second)
		if res.DeadLettered {
			t.Error("NackResult.DeadLettered on a retry")
		}
		wantTime(t, "RetryAt", res.RetryAt, at)
		wantStats(t, "after nack", e.stats("q"), store.Stats{Delayed: 1, SentTotal: 1})
		e.set(at.Add(-time.Millisecond))
		wantTime(t, "NextDue", e.leaseNone("q").NextDue, at)
		e.set(at)
		m = e.leaseOne("q", ids[0])
		if m.Attempt != 2 {
			t.Errorf("attempt %d after one nack, want 2", m.Attempt)
		}
		wantBody(t, m, []byte("1"), store.BodyJSON)
	})

	t.Run("ZeroDelay", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.sendText("q", "1")
		m := e.leaseOne("q", ids[0])
		res := e.nackOK("q", m.Lease, ptr(0), "")
		wantTime(t, "RetryAt", res.RetryAt, e.now)
		wantStats(t, "after nack", e.stats("q"), store.Stats{Ready: 1, SentTotal: 1, OldestReady: base})
		if m2 := e.leaseOne("q", ids[0]); m2.Attempt != 2 || m2.Lease == m.Lease {
			t.Errorf("redelivery: attempt %d (want 2), same lease %v", m2.Attempt, m2.Lease == m.Lease)
		}
	})

	t.Run("RetryFuncDecides", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		rec := &recorder{}
		e.retry = rec.retry
		cfg := config()
		cfg.MaxAttempts = 4
		cfg.Backoff = store.Backoff{Initial: 3 * time.Second, Max: time.Minute, Multiplier: 1.5, Jitter: 0.1}
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1")
		// Without a delay: the RetryFunc's answer, with the queue's config,
		// the attempt that failed, and no explicit delay.
		m := e.leaseOne("q", ids[0])
		res := e.nackOK("q", m.Lease, nil, "")
		wantTime(t, "RetryAt from the RetryFunc", res.RetryAt, e.now.Add(7*time.Second))
		calls := rec.take()
		if len(calls) != 1 || calls[0].cfg != cfg || calls[0].attempt != 1 || calls[0].explicit != nil {
			t.Errorf("RetryFunc calls %+v, want one with the queue's config, attempt 1, no explicit delay", calls)
		}
		e.advance(7 * time.Second)
		m = e.leaseOne("q", ids[0])
		res = e.nackOK("q", m.Lease, nil, "")
		wantTime(t, "RetryAt after attempt 2", res.RetryAt, e.now.Add(14*time.Second))
		e.advance(14 * time.Second)
		// With a delay: the RetryFunc still decides (it is told the delay).
		m = e.leaseOne("q", ids[0])
		res = e.nackOK("q", m.Lease, ptr(time.Second), "")
		wantTime(t, "RetryAt with an explicit delay", res.RetryAt, e.now.Add(time.Second))
		calls = rec.take()
		if len(calls) != 2 || calls[1].attempt != 3 || calls[1].explicit == nil || *calls[1].explicit != time.Second {
			t.Errorf("RetryFunc calls %+v, want attempts 2 and 3, the last with explicit 1s", calls)
		}
		// At MaxAttempts an explicit delay does not save the message.
		e.advance(time.Second)
		m = e.leaseOne("q", ids[0])
		if m.Attempt != 4 {
			t.Fatalf("attempt %d, want 4", m.Attempt)
		}
		res = e.nackOK("q", m.Lease, ptr(time.Second), "")
		if !res.DeadLettered || !res.RetryAt.IsZero() {
			t.Errorf("nack at MaxAttempts with a delay: %+v, want dead-lettered, zero RetryAt", res)
		}
	})

	t.Run("UnlimitedAttempts", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 0
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1")
		for attempt := 1; attempt <= 12; attempt++ {
			m := e.leaseOne("q", ids[0])
			if m.Attempt != attempt {
				t.Fatalf("attempt %d, want %d", m.Attempt, attempt)
			}
			if res := e.nackOK("q", m.Lease, ptr(0), "again"); res.DeadLettered {
				t.Fatalf("dead-lettered at attempt %d with MaxAttempts 0", attempt)
			}
		}
		if s := e.stats("q"); s.Dead != 0 || s.Ready != 1 {
			t.Errorf("stats %+v, want the message ready and none dead", s)
		}
	})

	t.Run("Stale", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 2
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1", "2")
		got := e.lease("q", 2)
		e.nackOK("q", got[0].Lease, ptr(time.Minute), "first")
		// Nacking again, even asking for no delay, is refused and changes
		// nothing: the message still waits its minute.
		_, err := e.nack("q", got[0].Lease, ptr(0), "second")
		wantErr(t, "second Nack", err, store.ErrLeaseExpired)
		e.ackOK("q", got[1].Lease)
		_, err = e.nack("q", got[1].Lease, ptr(0), "after ack")
		wantErr(t, "Nack after Ack", err, store.ErrLeaseExpired)
		wantStats(t, "after stale nacks", e.stats("q"), store.Stats{Delayed: 1, SentTotal: 2, AckedTotal: 1})
		e.leaseNone("q")
		if names := e.queueNames(); len(names) != 1 {
			t.Errorf("queues %v: a refused nack dead-lettered something", names)
		}
		e.advance(time.Minute)
		if m := e.leaseOne("q", ids[0]); m.Attempt != 2 {
			t.Errorf("attempt %d, want 2", m.Attempt)
		}
	})

	t.Run("AtExpiry", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.sendText("q", "1")
		m := e.lease("q", 1)[0]
		e.set(m.LeaseExpiresAt)
		_, err := e.nack("q", m.Lease, ptr(0), "too late")
		wantErr(t, "Nack at LeaseExpiresAt", err, store.ErrLeaseExpired)
	})
}
