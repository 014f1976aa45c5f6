package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

// wantBody asserts that a finished Receive returned exactly one message with body.
func wantBody(t *testing.T, r received, body string) store.Message {
	t.Helper()
	if r.err != nil || len(r.msgs) != 1 || string(r.msgs[0].Body) != body {
		t.Fatalf("Receive = %d messages, err %v; want one with body %s", len(r.msgs), r.err, body)
	}
	return r.msgs[0]
}

func TestReceiveWokenBySend(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.put(t, "q", broker.QueueSettings{})
	added := e.clk.TimerAdded()
	ch := e.receiveAsync(t.Context(), "q", broker.ReceiveOptions{Wait: 30 * time.Second})
	<-added // blocked, waiting
	pending(t, ch)

	sent := make(chan error)
	go func() {
		_, err := e.b.Send(t.Context(), "q", []broker.Message{msg(`"hi"`)})
		sent <- err
	}()
	if err := <-sent; err != nil {
		t.Fatalf("Send: %v", err)
	}
	wantBody(t, <-ch, `"hi"`)
	if now := e.clk.Now(); !now.Equal(t0) {
		t.Fatalf("clock moved to %v", now)
	}
}

func TestReceiveWokenWhenDelayedMessageComesDue(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.send(t, "q", broker.Message{Body: []byte(`1`), Kind: store.BodyJSON, Delay: 5 * time.Second})
	added := e.clk.TimerAdded()
	ch := e.receiveAsync(t.Context(), "q", broker.ReceiveOptions{Wait: 30 * time.Second})
	<-added
	e.clk.Advance(5*time.Second - time.Nanosecond) // not yet due: the timer is for the due time, not the wait's end
	pending(t, ch)
	e.clk.Advance(time.Nanosecond)
	m := wantBody(t, <-ch, `1`)
	if m.Attempt != 1 {
		t.Fatalf("attempt %d, want 1", m.Attempt)
	}
}

func TestReceiveWaitEnds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		delay time.Duration // of a message that is not due before the wait ends; 0 none
	}{
		{"empty queue", 0},
		{"due after the wait", time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, broker.Options{})
			e.put(t, "q", broker.QueueSettings{})
			if tc.delay > 0 {
				e.send(t, "q", broker.Message{Body: []byte(`1`), Kind: store.BodyJSON, Delay: tc.delay})
			}
			added := e.clk.TimerAdded()
			ch := e.receiveAsync(t.Context(), "q", broker.ReceiveOptions{Wait: 30 * time.Second})
			<-added
			e.clk.Advance(30*time.Second - time.Nanosecond)
			pending(t, ch)
			e.clk.Advance(time.Nanosecond)
			if r := <-ch; r.err != nil || len(r.msgs) != 0 {
				t.Fatalf("Receive = %d messages, err %v; want none after the wait", len(r.msgs), r.err)
			}
			if n := e.clk.Timers(); n != 0 {
				t.Fatalf("%d timers left behind", n)
			}
		})
	}
}

func TestReceiveWithoutWaitAnswersAtOnce(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.send(t, "q", broker.Message{Body: []byte(`1`), Kind: store.BodyJSON, Delay: time.Second})
	e.receiveNone(t, "q")
	if n := e.clk.Timers(); n != 0 {
		t.Fatalf("%d timers, want none", n)
	}
}

func TestReceiveCancelled(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.put(t, "q", broker.QueueSettings{})
	ctx, cancel := context.WithCancel(t.Context())
	added := e.clk.TimerAdded()
	ch := e.receiveAsync(ctx, "q", broker.ReceiveOptions{Wait: broker.MaxWait})
	<-added
	cancel()
	if r := <-ch; r.err != nil || r.msgs != nil {
		t.Fatalf("Receive = %v, %v after cancel; want nil, nil", r.msgs, r.err)
	}
	if n := e.clk.Timers(); n != 0 {
		t.Fatalf("%d timers left behind", n)
	}
	// The receive that left withdrew its claim: nothing is leased for it.
	e.send(t, "q", msg(`"later"`))
	if st := e.stats(t, "q"); st.Ready != 1 || st.InFlight != 0 {
		t.Fatalf("after a send, stats %+v; want the message ready for the next receive", st)
	}
}

// TestReceiveWaitersServedInOrder: receives waiting on an empty queue are
// handed a send's messages oldest first, each up to its max, and the one
// left over keeps waiting.
func TestReceiveWaitersServedInOrder(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.put(t, "q", broker.QueueSettings{})
	var chs []<-chan received
	for _, max := range []int{2, 1, 1} {
		added := e.clk.TimerAdded()
		chs = append(chs, e.receiveAsync(t.Context(), "q", broker.ReceiveOptions{Max: max, Wait: 30 * time.Second}))
		<-added
	}
	e.send(t, "q", msg(`1`), msg(`2`), msg(`3`))
	r0, r1 := <-chs[0], <-chs[1]
	if r0.err != nil || len(r0.msgs) != 2 || string(r0.msgs[0].Body) != `1` || string(r0.msgs[1].Body) != `2` {
		t.Fatalf("first receive = %+v, %v; want 1 and 2", r0.msgs, r0.err)
	}
	wantBody(t, r1, `3`)
	pending(t, chs[2])
	e.send(t, "q", msg(`4`))
	wantBody(t, <-chs[2], `4`)
	if st := e.stats(t, "q"); st.Ready != 0 || st.InFlight != 4 {
		t.Fatalf("stats %+v, want 4 in flight", st)
	}
}

func TestReceiveWokenByResume(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.send(t, "q", msg(`1`))
	if _, err := e.b.SetPaused(t.Context(), "q", true); err != nil {
		t.Fatal(err)
	}
	added := e.clk.TimerAdded()
	ch := e.receiveAsync(t.Context(), "q", broker.ReceiveOptions{Wait: 30 * time.Second})
	<-added
	pending(t, ch)
	if _, err := e.b.SetPaused(t.Context(), "q", false); err != nil {
		t.Fatal(err)
	}
	wantBody(t, <-ch, `1`)
}

// Another consumer's lease expires: the message is retried after the
// queue's backoff, counted from the lease's end, and the waiting receive
// gets it then.
func TestReceiveWokenByLeaseExpiry(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	bo := store.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	e.put(t, "q", broker.QueueSettings{Backoff: backoffSettings(bo)})
	e.send(t, "q", msg(`1`))
	first := e.receive(t, "q", broker.ReceiveOptions{Visibility: 2 * time.Second})
	if len(first) != 1 || !first[0].LeaseExpiresAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("first receive: %+v", first)
	}

	added := e.clk.TimerAdded()
	ch := e.receiveAsync(t.Context(), "q", broker.ReceiveOptions{Wait: 30 * time.Second})
	<-added // waits for the lease's expiry
	added = e.clk.TimerAdded()
	e.clk.Advance(2 * time.Second)
	<-added // the lease expired; now waits for the backoff
	pending(t, ch)
	if s := e.stats(t, "q"); s.Delayed != 1 || s.InFlight != 0 {
		t.Fatalf("stats after expiry: %+v, want 1 delayed", s)
	}
	e.clk.Advance(bo.Initial)
	m := wantBody(t, <-ch, `1`)
	if m.Attempt != 2 || m.Lease == first[0].Lease {
		t.Fatalf("redelivery: attempt %d, lease reused %v; want attempt 2 and a new lease", m.Attempt, m.Lease == first[0].Lease)
	}
	errs, err := e.b.Ack(t.Context(), "q", []string{first[0].Lease})
	if err != nil || len(errs) != 1 || !errors.Is(errs[0], store.ErrLeaseExpired) {
		t.Fatalf("ack of the expired lease: %v, %v; want ErrLeaseExpired", errs, err)
	}
}

// With max_attempts 1 an expired lease dead-letters instead: a receive
// waiting on the queue is not handed the message.
func TestReceiveLeaseExpiryDeadLetters(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.put(t, "q", broker.QueueSettings{MaxAttempts: ptr(1)})
	e.send(t, "q", msg(`1`))
	e.receive(t, "q", broker.ReceiveOptions{Visibility: 2 * time.Second})

	added := e.clk.TimerAdded()
	ch := e.receiveAsync(t.Context(), "q", broker.ReceiveOptions{Wait: 30 * time.Second})
	<-added
	added = e.clk.TimerAdded()
	e.clk.Advance(2 * time.Second)
	<-added // nothing more is due: waits for the end of the wait
	pending(t, ch)
	if s := e.stats(t, "q"); s.Dead != 1 {
		t.Fatalf("stats %+v, want 1 dead", s)
	}
	e.clk.Advance(28 * time.Second)
	if r := <-ch; r.err != nil || len(r.msgs) != 0 {
		t.Fatalf("Receive = %d messages, %v; want none", len(r.msgs), r.err)
	}
	wantBody(t, received{msgs: e.receive(t, "q.dead", broker.ReceiveOptions{})}, `1`)
}

func TestReceiveMaxDefaultsToOne(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.send(t, "q", msg(`1`), msg(`2`), msg(`3`))
	if got := e.receive(t, "q", broker.ReceiveOptions{}); len(got) != 1 {
		t.Fatalf("Max 0: %d messages, want 1", len(got))
	}
	if got := e.receive(t, "q", broker.ReceiveOptions{Max: broker.MaxReceive}); len(got) != 2 {
		t.Fatalf("Max %d: %d messages, want the other 2", broker.MaxReceive, len(got))
	}
}
