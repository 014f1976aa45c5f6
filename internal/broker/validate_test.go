package broker_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

func TestInvalidQueueNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", strings.Repeat("a", broker.MaxNameLen+1), "a b", "a/b", "a:b", "é", "q*", "a\x00", ".", "..", "..."} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			t.Parallel()
			e := setup(t, broker.Options{})
			ctx := t.Context()
			_, err := e.b.PutQueue(ctx, name, broker.QueueSettings{})
			wantInvalid(t, err, "PutQueue")
			_, err = e.b.Send(ctx, name, []broker.Message{msg(`1`)})
			wantInvalid(t, err, "Send")
			_, err = e.b.Receive(ctx, name, broker.ReceiveOptions{})
			wantInvalid(t, err, "Receive")
			_, err = e.b.GetQueue(ctx, name)
			wantInvalid(t, err, "GetQueue")
			wantInvalid(t, e.b.DeleteQueue(ctx, name), "DeleteQueue")
			_, err = e.b.PurgeQueue(ctx, name)
			wantInvalid(t, err, "PurgeQueue")
			_, err = e.b.SetPaused(ctx, name, true)
			wantInvalid(t, err, "SetPaused")
			_, err = e.b.Redrive(ctx, name, 0)
			wantInvalid(t, err, "Redrive")
			_, err = e.b.Ack(ctx, name, []string{"x"})
			wantInvalid(t, err, "Ack")
			_, err = e.b.Nack(ctx, name, "x", nil, "")
			wantInvalid(t, err, "Nack")
			_, err = e.b.Extend(ctx, name, "x", 0)
			wantInvalid(t, err, "Extend")
			e.noQueues(t)
		})
	}
}

func TestValidQueueNames(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	for _, name := range []string{"a", "A-z_0.9", "orders.v2", strings.Repeat("x", broker.MaxNameLen-len(store.DeadSuffix))} {
		e.put(t, name, broker.QueueSettings{})
	}
}

// A name too long to take the default dead-letter queue is refused with an
// error that says what to do, by PutQueue and by auto-creation alike.
func TestDefaultDeadLetterQueueTooLong(t *testing.T) {
	t.Parallel()
	for _, n := range []int{broker.MaxNameLen - len(store.DeadSuffix) + 1, broker.MaxNameLen} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			e := setup(t, broker.Options{})
			name := strings.Repeat("q", n)
			_, err := e.b.PutQueue(t.Context(), name, broker.QueueSettings{})
			wantInvalid(t, err, "PutQueue")
			if !strings.Contains(err.Error(), "set dead_letter_queue") {
				t.Errorf("PutQueue: %q does not say how to fix it", err)
			}
			_, err = e.b.Send(t.Context(), name, []broker.Message{msg(`1`)})
			wantInvalid(t, err, "Send")
			_, err = e.b.Receive(t.Context(), name, broker.ReceiveOptions{})
			wantInvalid(t, err, "Receive")
			e.noQueues(t)
		})
	}
}

func TestInvalidQueueSettings(t *testing.T) {
	t.Parallel()
	bo := func(b broker.BackoffSettings) broker.QueueSettings { return broker.QueueSettings{Backoff: &b} }
	for _, tc := range []struct {
		field string
		s     broker.QueueSettings
	}{
		{"visibility_timeout", broker.QueueSettings{VisibilityTimeout: ptr(time.Duration(0))}},
		{"visibility_timeout", broker.QueueSettings{VisibilityTimeout: ptr(-time.Second)}},
		{"visibility_timeout", broker.QueueSettings{VisibilityTimeout: ptr(broker.MinVisibility - 1)}},
		{"visibility_timeout", broker.QueueSettings{VisibilityTimeout: ptr(broker.MaxVisibility + 1)}},
		{"max_attempts", broker.QueueSettings{MaxAttempts: ptr(-1)}},
		{"max_attempts", broker.QueueSettings{MaxAttempts: ptr(broker.MaxAttemptsLimit + 1)}},
		{"backoff.initial", bo(broker.BackoffSettings{Initial: ptr(time.Duration(0))})},
		{"backoff.initial", bo(broker.BackoffSettings{Initial: ptr(time.Millisecond - 1)})},
		{"backoff.initial", bo(broker.BackoffSettings{Initial: ptr(broker.MaxBackoff + 1), Max: ptr(broker.MaxBackoff + 1)})},
		{"backoff.max", bo(broker.BackoffSettings{Max: ptr(500 * time.Millisecond)})}, // below the default initial
		{"backoff.max", bo(broker.BackoffSettings{Initial: ptr(11 * time.Minute)})},   // above the default max
		{"backoff.max", bo(broker.BackoffSettings{Max: ptr(broker.MaxBackoff + 1)})},
		{"backoff.multiplier", bo(broker.BackoffSettings{Multiplier: ptr(math.NaN())})},
		{"backoff.multiplier", bo(broker.BackoffSettings{Multiplier: ptr(0.5)})},
		{"backoff.multiplier", bo(broker.BackoffSettings{Multiplier: ptr(0.0)})},
		{"backoff.multiplier", bo(broker.BackoffSettings{Multiplier: ptr(-2.0)})},
		{"backoff.multiplier", bo(broker.BackoffSettings{Multiplier: ptr(101.0)})},
		{"backoff.multiplier", bo(broker.BackoffSettings{Multiplier: ptr(math.Inf(1))})},
		{"backoff.jitter", bo(broker.BackoffSettings{Jitter: ptr(-0.1)})},
		{"backoff.jitter", bo(broker.BackoffSettings{Jitter: ptr(1.1)})},
		{"backoff.jitter", bo(broker.BackoffSettings{Jitter: ptr(math.NaN())})},
		{"dead_letter_queue", broker.QueueSettings{DeadLetterQueue: ptr("q")}},
		{"dead_letter_queue", broker.QueueSettings{DeadLetterQueue: ptr("bad name")}},
		{"dead_letter_queue", broker.QueueSettings{DeadLetterQueue: ptr(strings.Repeat("d", broker.MaxNameLen+1))}},
		{"retention", broker.QueueSettings{Retention: ptr(broker.MinRetention - 1)}},
		{"retention", broker.QueueSettings{Retention: ptr(broker.MaxRetention + 1)}},
		{"max_message_bytes", broker.QueueSettings{MaxMessageBytes: ptr(0)}},
		{"max_message_bytes", broker.QueueSettings{MaxMessageBytes: ptr(broker.MaxMessageBytes + 1)}},
		{"dedup_window", broker.QueueSettings{DedupWindow: ptr(-time.Nanosecond)}},
		{"dedup_window", broker.QueueSettings{DedupWindow: ptr(broker.MaxDedupWindow + 1)}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			t.Parallel()
			e := setup(t, broker.Options{})
			_, err := e.b.PutQueue(t.Context(), "q", tc.s)
			wantInvalid(t, err, "create")
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("create: %q does not name the field %s", err, tc.field)
			}
			e.noQueues(t)

			e.put(t, "q", broker.QueueSettings{})
			_, err = e.b.PutQueue(t.Context(), "q", tc.s)
			wantInvalid(t, err, "update")
			if q, err := e.b.GetQueue(t.Context(), "q"); err != nil || q.Config != store.DefaultConfig("q") {
				t.Fatalf("after a refused update: %+v, %v; want the defaults unchanged", q.Config, err)
			}
		})
	}
}

func TestQueueSettingsLimitsAccepted(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	for i, s := range []broker.QueueSettings{
		{VisibilityTimeout: ptr(broker.MinVisibility), MaxAttempts: ptr(0), Retention: ptr(broker.MinRetention),
			MaxMessageBytes: ptr(1), DedupWindow: ptr(time.Duration(0)),
			Backoff: &broker.BackoffSettings{Initial: ptr(time.Millisecond), Max: ptr(time.Millisecond), Multiplier: ptr(1.0), Jitter: ptr(0.0)}},
		{VisibilityTimeout: ptr(broker.MaxVisibility), MaxAttempts: ptr(broker.MaxAttemptsLimit), Retention: ptr(broker.MaxRetention),
			MaxMessageBytes: ptr(broker.MaxMessageBytes), DedupWindow: ptr(broker.MaxDedupWindow),
			Backoff: &broker.BackoffSettings{Initial: ptr(broker.MaxBackoff), Max: ptr(broker.MaxBackoff), Multiplier: ptr(100.0), Jitter: ptr(1.0)}},
	} {
		e.put(t, fmt.Sprint("q", i), s)
	}
}

func TestInvalidMessages(t *testing.T) {
	t.Parallel()
	headers := func(n int) map[string]string {
		h := map[string]string{}
		for i := range n {
			h[fmt.Sprint("h", i)] = "v"
		}
		return h
	}
	big := make([]byte, 1<<20+1)
	for _, tc := range []struct {
		name string
		m    broker.Message
		want error
	}{
		{"no kind", broker.Message{Body: []byte(`1`)}, broker.ErrInvalid},
		{"too many headers", broker.Message{Kind: store.BodyJSON, Headers: headers(broker.MaxHeaders + 1)}, broker.ErrInvalid},
		{"empty header name", broker.Message{Kind: store.BodyJSON, Headers: map[string]string{"": "v"}}, broker.ErrInvalid},
		{"long header name", broker.Message{Kind: store.BodyJSON, Headers: map[string]string{strings.Repeat("k", broker.MaxHeaderKeyLen+1): "v"}}, broker.ErrInvalid},
		{"long header value", broker.Message{Kind: store.BodyJSON, Headers: map[string]string{"k": strings.Repeat("v", broker.MaxHeaderValueLen+1)}}, broker.ErrInvalid},
		{"priority above", broker.Message{Kind: store.BodyJSON, Priority: broker.MaxPriority + 1}, broker.ErrInvalid},
		{"priority below", broker.Message{Kind: store.BodyJSON, Priority: broker.MinPriority - 1}, broker.ErrInvalid},
		{"long dedup key", broker.Message{Kind: store.BodyJSON, DedupKey: strings.Repeat("d", broker.MaxDedupKeyLen+1)}, broker.ErrInvalid},
		{"long group", broker.Message{Kind: store.BodyJSON, Group: strings.Repeat("g", broker.MaxGroupLen+1)}, broker.ErrInvalid},
		{"delay and not_before", broker.Message{Kind: store.BodyJSON, Delay: time.Second, NotBefore: t0.Add(time.Hour)}, broker.ErrInvalid},
		{"negative delay", broker.Message{Kind: store.BodyJSON, Delay: -time.Second}, broker.ErrInvalid},
		{"delay too far", broker.Message{Kind: store.BodyJSON, Delay: broker.MaxDelay + 1}, broker.ErrInvalid},
		{"not_before too far", broker.Message{Kind: store.BodyJSON, NotBefore: t0.Add(broker.MaxDelay + 1)}, broker.ErrInvalid},
		{"body too large", broker.Message{Kind: store.BodyBinary, Body: big}, broker.ErrTooLarge},
		{"headers make it too large", broker.Message{Kind: store.BodyBinary, Body: big[:1<<20-2], Headers: map[string]string{"k": "vv"}}, broker.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, broker.Options{})
			_, err := e.b.Send(t.Context(), "q", []broker.Message{tc.m})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Send: %v, want %v", err, tc.want)
			}
			e.noQueues(t) // a refused send creates no queue

			// In a batch to an existing queue: the error names the message, and nothing is stored.
			e.put(t, "q", broker.QueueSettings{})
			_, err = e.b.Send(t.Context(), "q", []broker.Message{msg(`1`), tc.m})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "messages[1]") {
				t.Fatalf("batch Send: %v, want %v naming messages[1]", err, tc.want)
			}
			if s := e.stats(t, "q"); s != (store.Stats{}) {
				t.Fatalf("stats after a refused batch: %+v, want zero", s)
			}
		})
	}
}

func TestMessageLimitsAccepted(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.put(t, "q", broker.QueueSettings{Retention: ptr(broker.MaxRetention)}) // keeps a message delayed the most
	h := map[string]string{strings.Repeat("k", broker.MaxHeaderKeyLen): strings.Repeat("v", broker.MaxHeaderValueLen)}
	for i := 1; i < broker.MaxHeaders; i++ {
		h[fmt.Sprint(i)] = ""
	}
	e.send(t, "q",
		broker.Message{Kind: store.BodyJSON, Body: []byte(`1`), Headers: h, Priority: broker.MaxPriority,
			DedupKey: strings.Repeat("d", broker.MaxDedupKeyLen), Group: strings.Repeat("g", broker.MaxGroupLen)},
		broker.Message{Kind: store.BodyJSON, Priority: broker.MinPriority, Delay: broker.MaxDelay},
		broker.Message{Kind: store.BodyJSON, NotBefore: t0.Add(broker.MaxDelay)},
		broker.Message{Kind: store.BodyBinary, Body: make([]byte, 1<<20)}, // exactly max_message_bytes
	)
	if s := e.stats(t, "q"); s.SentTotal != 4 || s.Delayed != 2 || s.Ready != 2 {
		t.Fatalf("stats %+v, want 2 ready and 2 delayed", s)
	}
}

func TestSendNotBefore(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.clk.Advance(time.Hour)
	now := e.clk.Now()
	e.send(t, "q",
		broker.Message{Kind: store.BodyJSON, Body: []byte(`"past"`), NotBefore: now.Add(-time.Minute)},
		broker.Message{Kind: store.BodyJSON, Body: []byte(`"now"`), NotBefore: now},
		broker.Message{Kind: store.BodyJSON, Body: []byte(`"later"`), NotBefore: now.Add(time.Minute).In(time.FixedZone("X", 3600))},
	)
	if s := e.stats(t, "q"); s.Ready != 2 || s.Delayed != 1 {
		t.Fatalf("stats %+v, want the past and present ready, the future delayed", s)
	}
	if got := e.receive(t, "q", broker.ReceiveOptions{Max: 10, Visibility: time.Hour}); len(got) != 2 {
		t.Fatalf("received %d now, want 2", len(got))
	}
	e.clk.Advance(time.Minute)
	if m := e.receiveOne(t, "q"); string(m.Body) != `"later"` {
		t.Fatalf("received %s, want the later one", m.Body)
	}
}

func TestSendBatchSize(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	for _, n := range []int{0, broker.MaxBatch + 1} {
		_, err := e.b.Send(t.Context(), "q", make([]broker.Message, n))
		wantInvalid(t, err, fmt.Sprintf("Send of %d", n))
	}
	e.noQueues(t)
	batch := make([]broker.Message, broker.MaxBatch)
	for i := range batch {
		batch[i] = msg(fmt.Sprint(i))
	}
	if res := e.send(t, "q", batch...); len(res) != broker.MaxBatch {
		t.Fatalf("%d results, want %d", len(res), broker.MaxBatch)
	}
}

func TestInvalidReceiveOptions(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	for _, o := range []broker.ReceiveOptions{
		{Max: -1}, {Max: broker.MaxReceive + 1},
		{Wait: -time.Nanosecond}, {Wait: broker.MaxWait + time.Nanosecond},
		{Visibility: -time.Second}, {Visibility: broker.MinVisibility - 1}, {Visibility: broker.MaxVisibility + 1},
	} {
		_, err := e.b.Receive(t.Context(), "q", o)
		wantInvalid(t, err, fmt.Sprintf("Receive(%+v)", o))
	}
	e.noQueues(t)
}

// Refused nack, extend and ack calls leave the message in flight under its lease.
func TestInvalidLeaseCalls(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.send(t, "q", msg(`1`))
	m := e.receiveOne(t, "q")
	ctx := t.Context()
	for _, d := range []time.Duration{-time.Nanosecond, broker.MaxDelay + 1} {
		_, err := e.b.Nack(ctx, "q", m.Lease, &d, "")
		wantInvalid(t, err, fmt.Sprintf("Nack with delay %v", d))
	}
	for _, v := range []time.Duration{-time.Second, broker.MinVisibility - 1, broker.MaxVisibility + 1} {
		_, err := e.b.Extend(ctx, "q", m.Lease, v)
		wantInvalid(t, err, fmt.Sprintf("Extend by %v", v))
	}
	for _, n := range []int{0, broker.MaxBatch + 1} {
		_, err := e.b.Ack(ctx, "q", make([]string, n))
		wantInvalid(t, err, fmt.Sprintf("Ack of %d", n))
	}
	for _, n := range []int{-1, 100*broker.MaxBatch + 1} {
		_, err := e.b.Redrive(ctx, "q", n)
		wantInvalid(t, err, fmt.Sprintf("Redrive of %d", n))
	}
	if s := e.stats(t, "q"); s.InFlight != 1 || s.Ready+s.Delayed != 0 {
		t.Fatalf("stats %+v, want the message still in flight", s)
	}
	if exp, err := e.b.Extend(ctx, "q", m.Lease, broker.MaxVisibility); err != nil || !exp.Equal(t0.Add(broker.MaxVisibility)) {
		t.Fatalf("Extend = %v, %v; want the lease still valid", exp, err)
	}
	if errs, err := e.b.Ack(ctx, "q", []string{m.Lease}); err != nil || errs[0] != nil {
		t.Fatalf("Ack = %v, %v; want the lease still valid", errs, err)
	}
}

// TestDelayPastRetention: a message that would come due only after its
// queue's retention dropped it is refused, not silently lost.
func TestDelayPastRetention(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.put(t, "q", broker.QueueSettings{Retention: ptr(time.Hour)})
	_, err := e.b.Send(t.Context(), "q", []broker.Message{{Kind: store.BodyJSON, Body: []byte(`1`), Delay: time.Hour}})
	if !errors.Is(err, broker.ErrInvalid) || !strings.Contains(err.Error(), "retention") {
		t.Fatalf("delay = retention: %v, want ErrInvalid naming retention", err)
	}
	e.send(t, "q", broker.Message{Kind: store.BodyJSON, Body: []byte(`1`), Delay: time.Hour - time.Second})
}
