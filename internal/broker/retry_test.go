package broker_test

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

// exact is a backoff without jitter, so retry times are exact.
var exact = store.Backoff{Initial: time.Second, Max: 4 * time.Second, Multiplier: 2}

func backoffSettings(bo store.Backoff) *broker.BackoffSettings {
	return &broker.BackoffSettings{Initial: &bo.Initial, Max: &bo.Max, Multiplier: &bo.Multiplier, Jitter: &bo.Jitter}
}

// retryAt checks a nack's result and the queue's stats while the message
// waits, then that it is handed out again exactly at want, with attempt next.
func retryAt(t *testing.T, e *env, queue string, res store.NackResult, want time.Time, next int) store.Message {
	t.Helper()
	if res.DeadLettered || !res.RetryAt.Equal(want) {
		t.Fatalf("nack result %+v, want retry at %v", res, want)
	}
	if s := e.stats(t, queue); s.Delayed != 1 || s.Ready != 0 || s.InFlight != 0 {
		t.Fatalf("stats while waiting: %+v, want 1 delayed", s)
	}
	e.clk.Set(want.Add(-time.Nanosecond))
	e.receiveNone(t, queue)
	e.clk.Set(want)
	if s := e.stats(t, queue); s.Ready != 1 || s.Delayed != 0 {
		t.Fatalf("stats when due: %+v, want 1 ready", s)
	}
	m := e.receiveOne(t, queue)
	if m.Attempt != next {
		t.Fatalf("attempt %d, want %d", m.Attempt, next)
	}
	return m
}

func nack(t *testing.T, e *env, queue, lease string, delay *time.Duration, reason string) store.NackResult {
	t.Helper()
	res, err := e.b.Nack(t.Context(), queue, lease, delay, reason)
	if err != nil {
		t.Fatalf("Nack: %v", err)
	}
	return res
}

func TestNackRetriesAfterBackoffThenDeadLetters(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.put(t, "q", broker.QueueSettings{MaxAttempts: ptr(4), Backoff: backoffSettings(exact)})
	e.send(t, "q", broker.Message{Body: []byte(`"x"`), Kind: store.BodyJSON, Headers: map[string]string{"k": "v"}})
	m := e.receiveOne(t, "q")
	for attempt, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} { // capped at 4s
		res := nack(t, e, "q", m.Lease, nil, "boom "+strconv.Itoa(attempt+1))
		m = retryAt(t, e, "q", res, e.clk.Now().Add(wait), attempt+2)
	}
	res := nack(t, e, "q", m.Lease, nil, "boom 4")
	if !res.DeadLettered {
		t.Fatalf("nack at max_attempts: %+v, want dead-lettered", res)
	}
	if s := e.stats(t, "q"); s.Dead != 1 || s.Ready+s.Delayed+s.InFlight != 0 {
		t.Fatalf("stats after dead-lettering: %+v", s)
	}
	d := e.receiveOne(t, "q.dead") // created on demand, ready at once
	want := map[string]string{"k": "v", store.HeaderSourceQueue: "q", store.HeaderAttempts: "4",
		store.HeaderError: "boom 4", store.HeaderDeadReason: "max_attempts"}
	for k, v := range want {
		if d.Headers[k] != v {
			t.Errorf("dead letter header %s = %q, want %q", k, d.Headers[k], v)
		}
	}
	if d.ID != m.ID || string(d.Body) != `"x"` || d.Attempt != 1 {
		t.Errorf("dead letter %+v, want the same id and body, attempt 1", d)
	}
}

// With jitter, the broker draws one number from Options.Rand per decision.
func TestNackBackoffUsesRand(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{Rand: rand.New(rand.NewPCG(1, 2))})
	shadow := rand.New(rand.NewPCG(1, 2)) // the same sequence
	bo := store.Backoff{Initial: 10 * time.Second, Max: time.Hour, Multiplier: 3, Jitter: 0.5}
	e.put(t, "q", broker.QueueSettings{MaxAttempts: ptr(0), Backoff: backoffSettings(bo)})
	e.send(t, "q", msg(`1`))
	m := e.receiveOne(t, "q")
	for attempt := 1; attempt <= 4; attempt++ {
		want := e.clk.Now().Add(broker.Backoff(bo, attempt, shadow.Float64()))
		m = retryAt(t, e, "q", nack(t, e, "q", m.Lease, nil, ""), want, attempt+1)
	}
}

// max_attempts 0 never dead-letters; the backoff stays at its cap.
func TestUnlimitedAttempts(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.put(t, "q", broker.QueueSettings{MaxAttempts: ptr(0), Backoff: backoffSettings(exact)})
	e.send(t, "q", msg(`1`))
	m := e.receiveOne(t, "q")
	for attempt := 1; attempt <= 20; attempt++ {
		want := e.clk.Now().Add(broker.Backoff(exact, attempt, 0))
		m = retryAt(t, e, "q", nack(t, e, "q", m.Lease, nil, "again"), want, attempt+1)
	}
	if s := e.stats(t, "q"); s.Dead != 0 || s.InFlight != 1 {
		t.Fatalf("stats %+v, want 1 in flight and none dead", s)
	}
	if names := e.queueNames(t); len(names) != 1 {
		t.Fatalf("queues %q, want only q (no dead-letter queue)", names)
	}
}

func TestNackExplicitDelay(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.put(t, "q", broker.QueueSettings{MaxAttempts: ptr(3), Backoff: backoffSettings(exact)})
	e.send(t, "q", msg(`1`))
	m := e.receiveOne(t, "q")
	m = retryAt(t, e, "q", nack(t, e, "q", m.Lease, ptr(10*time.Minute), ""), t0.Add(10*time.Minute), 2)
	res := nack(t, e, "q", m.Lease, ptr(time.Duration(0)), "")
	if res.DeadLettered || !res.RetryAt.Equal(e.clk.Now()) {
		t.Fatalf("nack with delay 0: %+v, want ready now", res)
	}
	m = e.receiveOne(t, "q")
	// An explicit delay does not buy attempts: the last one still dead-letters.
	if res := nack(t, e, "q", m.Lease, ptr(time.Minute), ""); !res.DeadLettered {
		t.Fatalf("nack with delay at max_attempts: %+v, want dead-lettered", res)
	}
}

// The error text is cut to MaxErrorLen, at a character boundary.
func TestNackErrorTextCut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, reason string
		wantLen      int
	}{
		{"at the limit", strings.Repeat("e", broker.MaxErrorLen), broker.MaxErrorLen},
		{"ascii", strings.Repeat("e", broker.MaxErrorLen+100), broker.MaxErrorLen},
		{"multibyte", "x" + strings.Repeat("é", broker.MaxErrorLen), broker.MaxErrorLen - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, broker.Options{})
			e.put(t, "q", broker.QueueSettings{MaxAttempts: ptr(1)})
			e.send(t, "q", msg(`1`))
			if res := nack(t, e, "q", e.receiveOne(t, "q").Lease, nil, tc.reason); !res.DeadLettered {
				t.Fatalf("nack: %+v, want dead-lettered", res)
			}
			got := e.receiveOne(t, "q.dead").Headers[store.HeaderError]
			if len(got) != tc.wantLen || !strings.HasPrefix(tc.reason, got) || !utf8.ValidString(got) {
				t.Fatalf("error header: %d bytes (valid UTF-8: %v), want a %d-byte prefix of the reason",
					len(got), utf8.ValidString(got), tc.wantLen)
			}
		})
	}
}

func TestTick(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	vis := ptr(2 * time.Second)
	e.put(t, "once", broker.QueueSettings{VisibilityTimeout: vis, MaxAttempts: ptr(1)})
	e.put(t, "again", broker.QueueSettings{VisibilityTimeout: vis, MaxAttempts: ptr(5), Backoff: backoffSettings(exact)})
	e.send(t, "once", msg(`1`))
	e.send(t, "again", msg(`2`))
	e.send(t, "later", broker.Message{Body: []byte(`3`), Kind: store.BodyJSON, Delay: time.Hour})
	e.receiveOne(t, "once")
	e.receiveOne(t, "again")

	tick := func(want store.TickResult) {
		t.Helper()
		res, err := e.b.Tick(t.Context())
		if err != nil {
			t.Fatalf("Tick: %v", err)
		}
		if res != want {
			t.Fatalf("Tick at %v = %+v, want %+v", e.clk.Now(), res, want)
		}
	}
	tick(store.TickResult{NextDue: t0.Add(2 * time.Second)}) // the leases expire first
	e.clk.Advance(2 * time.Second)
	// once's lease dead-letters; again's is retried after backoff(1) from the lease's end.
	tick(store.TickResult{Expired: 1, DeadLettered: 1, NextDue: t0.Add(3 * time.Second)})
	if s := e.stats(t, "once"); s.Dead != 1 || s.InFlight != 0 {
		t.Fatalf("once: %+v, want 1 dead", s)
	}
	if s := e.stats(t, "once.dead"); s.Ready != 1 {
		t.Fatalf("once.dead: %+v, want 1 ready", s)
	}
	if s := e.stats(t, "again"); s.Delayed != 1 || s.InFlight != 0 {
		t.Fatalf("again: %+v, want 1 delayed", s)
	}
	e.clk.Advance(time.Second)
	tick(store.TickResult{Promoted: 1, NextDue: t0.Add(time.Hour)})
	if m := e.receiveOne(t, "again"); m.Attempt != 2 {
		t.Fatalf("again: attempt %d, want 2", m.Attempt)
	}
}
