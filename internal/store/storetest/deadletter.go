package storetest

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// deadHeaders are the headers a store adds when it dead-letters a message.
var deadHeaders = []string{store.HeaderSourceQueue, store.HeaderAttempts, store.HeaderError, store.HeaderDeadReason}

// wantDead checks a message leased from a dead-letter queue: the original
// headers, plus source queue and attempts, the error if errText is not nil,
// and possibly a dead reason; nothing else.
func wantDead(t *testing.T, m store.Message, orig map[string]string, source, attempts string, errText *string) {
	t.Helper()
	h := maps.Clone(m.Headers)
	if got := h[store.HeaderSourceQueue]; got != source {
		t.Errorf("dead message %s: %s = %q, want %q", m.ID, store.HeaderSourceQueue, got, source)
	}
	if got := h[store.HeaderAttempts]; got != attempts {
		t.Errorf("dead message %s: %s = %q, want %q", m.ID, store.HeaderAttempts, got, attempts)
	}
	if errText != nil {
		if got, ok := h[store.HeaderError]; !ok || got != *errText {
			t.Errorf("dead message %s: %s = %q (present %v), want %q", m.ID, store.HeaderError, got, ok, *errText)
		}
	}
	for _, k := range deadHeaders {
		delete(h, k)
	}
	if !maps.Equal(h, orig) {
		t.Errorf("dead message %s: other headers %v, want the original %v", m.ID, h, orig)
	}
	if m.Attempt != 1 {
		t.Errorf("dead message %s: attempt %d, want 1 (reset)", m.ID, m.Attempt)
	}
}

func testDeadLetter(t *testing.T, newStore newStoreFunc) {
	t.Run("ByNack", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 2
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		hdrs := map[string]string{"trace-id": "t-1", "k": ""}
		body := []byte{0, 1, 0xff, 0x80}
		ids := e.send("q", store.NewMessage{Body: body, Kind: store.BodyBinary, Headers: hdrs, Priority: 7})
		m := e.leaseOne("q", ids[0])
		e.nackOK("q", m.Lease, ptr(0), "first failure")
		m = e.leaseOne("q", ids[0])
		e.advance(time.Second)
		res := e.nackOK("q", m.Lease, nil, "boom: it broke")
		if !res.DeadLettered || !res.RetryAt.IsZero() {
			t.Errorf("NackResult %+v, want DeadLettered and zero RetryAt", res)
		}
		// The dead-letter queue is created on demand, with DefaultConfig.
		dq := e.getQueue("q.dead")
		wantQueue(t, "created dead-letter queue", dq, store.Queue{Name: "q.dead", Config: store.DefaultConfig("q.dead"), CreatedAt: e.now})
		wantStats(t, "source", e.stats("q"), store.Stats{Dead: 1, SentTotal: 1})
		if s := dq.Stats; s.Ready != 1 || s.InFlight != 0 || s.Delayed != 0 {
			t.Errorf("dead-letter queue stats %+v, want 1 ready", s)
		}
		e.leaseNone("q")
		d := e.leaseOne("q.dead", ids[0]) // same id
		wantBody(t, d, body, store.BodyBinary)
		errText := "boom: it broke"
		wantDead(t, d, hdrs, "q", "2", &errText)
		if d.Queue != "q.dead" {
			t.Errorf("dead message Queue %q, want q.dead", d.Queue)
		}
		// Stats.Dead counts dead letters still in a dead-letter queue.
		e.ackOK("q.dead", d.Lease)
		if s := e.stats("q"); s.Dead != 0 {
			t.Errorf("source Dead %d after the dead letter was acked, want 0", s.Dead)
		}
	})

	t.Run("DefaultConfigOfOtherName", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 1
		cfg.DeadLetterQueue = "graveyard"
		e.createQueue("q", cfg)
		e.sendText("q", "1")
		e.nackOK("q", e.lease("q", 1)[0].Lease, nil, "x")
		wantQueue(t, "dead-letter queue", e.getQueue("graveyard"),
			store.Queue{Name: "graveyard", Config: store.DefaultConfig("graveyard"), CreatedAt: base})
	})

	t.Run("ExistingQueueKept", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		dcfg := config()
		dcfg.VisibilityTimeout = 3 * time.Second
		e.createQueue("dlq", dcfg)
		before := e.sendText("dlq", "already here")
		e.advance(time.Minute)
		cfg := config()
		cfg.MaxAttempts = 1
		cfg.DeadLetterQueue = "dlq"
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1")
		e.nackOK("q", e.lease("q", 1)[0].Lease, nil, "x")
		wantQueue(t, "existing dead-letter queue", e.getQueue("dlq"), store.Queue{Name: "dlq", Config: dcfg, CreatedAt: base})
		wantIDs(t, "dead-letter queue", e.lease("dlq", 10), before[0], ids[0])
	})

	t.Run("NoQueueDrops", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 1
		e.createQueue("q", cfg) // DeadLetterQueue ""
		e.sendText("q", "1")
		res := e.nackOK("q", e.lease("q", 1)[0].Lease, nil, "x")
		// Choice: DeadLettered reports that the message is not retried,
		// also when, having no dead-letter queue, it is dropped.
		if !res.DeadLettered {
			t.Errorf("NackResult %+v, want DeadLettered", res)
		}
		wantStats(t, "after drop", e.stats("q"), store.Stats{SentTotal: 1})
		if names := e.queueNames(); !slices.Equal(names, []string{"q"}) {
			t.Errorf("queues %v, want only q", names)
		}
		e.advance(time.Hour)
		e.leaseNone("q")
	})

	t.Run("ByExpiry", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 2
		cfg.VisibilityTimeout = 10 * time.Second
		cfg.Backoff.Initial = 0
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		hdrs := map[string]string{"a": "b"}
		ids := e.send("q", store.NewMessage{Body: []byte(`{"x":1}`), Kind: store.BodyJSON, Headers: hdrs})
		e.leaseOne("q", ids[0])
		e.advance(10 * time.Second)
		e.leaseOne("q", ids[0])
		e.advance(10 * time.Second)
		e.leaseNone("q") // the lazy expiry dead-letters it
		d := e.leaseOne("q.dead", ids[0])
		wantBody(t, d, []byte(`{"x":1}`), store.BodyJSON)
		wantDead(t, d, hdrs, "q", "2", nil)
		wantStats(t, "source", e.stats("q"), store.Stats{Dead: 1, SentTotal: 1})
	})

	t.Run("DeadCountFollowsTheDeadLetterQueue", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name string
			do   func(e *env)
		}{
			{"Purge", func(e *env) {
				if _, err := e.s.PurgeQueue(e.ctx, &store.PurgeQueueParams{Name: "q.dead", Now: e.now}); err != nil {
					e.t.Fatal(err)
				}
			}},
			{"Delete", func(e *env) {
				if err := e.s.DeleteQueue(e.ctx, &store.DeleteQueueParams{Name: "q.dead"}); err != nil {
					e.t.Fatal(err)
				}
			}},
			{"Redrive", func(e *env) {
				if n := e.redrive("q", 10); n != 2 {
					e.t.Fatalf("Redrive moved %d, want 2", n)
				}
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				e := setup(t, newStore)
				cfg := config()
				cfg.MaxAttempts = 1
				cfg.DeadLetterQueue = "q.dead"
				e.createQueue("q", cfg)
				e.sendText("q", "1", "2")
				for _, m := range e.lease("q", 2) {
					e.nackOK("q", m.Lease, nil, "x")
				}
				if s := e.stats("q"); s.Dead != 2 {
					t.Fatalf("Dead %d, want 2", s.Dead)
				}
				tc.do(e)
				if s := e.stats("q"); s.Dead != 0 {
					t.Errorf("Dead %d after %s, want 0", s.Dead, tc.name)
				}
			})
		}
	})
}
