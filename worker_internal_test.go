package courier

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestLeaseStart(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	vis := 30 * time.Second
	cases := []struct {
		answered time.Duration // after sending
		want     time.Duration // lease start, after sending
	}{
		{5 * time.Millisecond, 0},            // a prompt answer: from the send
		{10 * time.Second, 0},                // within a third of the visibility
		{19 * time.Second, 9 * time.Second},  // a long-poll that waited: shortly before the answer
		{60 * time.Second, 50 * time.Second}, // waited longer than the visibility
	}
	for _, tc := range cases {
		if got := leaseStart(t0, t0.Add(tc.answered), vis).Sub(t0); got != tc.want {
			t.Errorf("answered after %v: lease start %v, want %v", tc.answered, got, tc.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	if got := errorText(errors.New("")); got != "*errors.errorString" {
		t.Errorf("empty error: %q", got)
	}
	long := errors.New(strings.Repeat("€", 2000)) // 6000 bytes
	got := errorText(long)
	if len(got) > maxErrorText || len(got) < maxErrorText-3 || !utf8.ValidString(got) {
		t.Errorf("long error cut to %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

// TestGather: a receive asks for every free handler; when fewer than half
// of a batch are free it waits (up to the linger) for that many, unless no
// handler is running to free one.
func TestGather(t *testing.T) {
	t.Parallel()
	w := NewWorker(NewClient("http://127.0.0.1:1"), "q", HandlerFunc(nil), WorkerOptions{Concurrency: 10, MaxBatch: 8})
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	take := func(n int) {
		for range n {
			w.sem <- struct{}{}
		}
	}
	give := func(n int) {
		for range n {
			<-w.sem
		}
	}

	take(1) // the caller's token; the other nine are free
	if n := w.gather(t.Context(), linger); n != 8 {
		t.Errorf("all free: gather = %d, want MaxBatch 8", n)
	}
	give(8)

	w.linger = time.Hour // only enough free handlers end the wait
	take(10)             // every handler busy, the caller holding one
	w.running.Store(9)
	freed := make(chan struct{})
	go func() {
		give(4) // four handlers finish while gather waits
		w.running.Add(-4)
		close(freed)
	}()
	// Half a batch is 4: the caller's token and three more, or the four
	// freed if they were all free before gather looked.
	if n := w.gather(t.Context(), linger); n < 4 || n > 5 {
		t.Errorf("gather = %d, want half a batch (4, or 5)", n)
	}
	<-freed

	// The tokens not free are another receive's (a long-poll's), no
	// handler's: waiting would not free any, so gather does not wait.
	for len(w.sem) < cap(w.sem) {
		w.sem <- struct{}{} // the caller's and the other receive's
	}
	w.running.Store(0)
	done := make(chan int, 1)
	go func() { done <- w.gather(t.Context(), linger) }()
	select {
	case n := <-done:
		if n != 1 {
			t.Errorf("no handler running: gather = %d, want the caller's 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no handler running, yet gather waits for free handlers")
	}
	for len(w.sem) > 0 {
		<-w.sem
	}

	w.linger = time.Millisecond
	for len(w.sem) < cap(w.sem) {
		w.sem <- struct{}{}
	}
	give(1)
	take(1) // busy again: the caller's token is the only one
	if n := w.gather(t.Context(), linger); n != 1 {
		t.Errorf("none free: gather = %d after the linger, want 1", n)
	}
}

// gatherAcks: a batch goes out at once when no other ack call is out; while
// one is, it grows until that call ends or it reaches ackAlongside.
func TestGatherAcks(t *testing.T) {
	newW := func() *Worker {
		return &Worker{acks: make(chan *Delivery, maxReceive), ackTurn: make(chan struct{}, 1), ackQuit: make(chan struct{})}
	}
	fill := func(w *Worker, n int) {
		for range n {
			w.acks <- &Delivery{}
		}
	}

	w := newW()
	fill(w, 3)
	batch := []*Delivery{{}}
	if turn := w.gatherAcks(&batch); !turn || len(batch) != 4 {
		t.Errorf("no call out: turn %v, %d acks; want the turn and 4", turn, len(batch))
	}

	w = newW()
	w.ackTurn <- struct{}{} // another acker's call is out
	fill(w, ackAlongside)
	batch = []*Delivery{{}}
	if turn := w.gatherAcks(&batch); turn || len(batch) != ackAlongside+1 {
		t.Errorf("large batch beside a call: turn %v, %d acks; want no turn and %d", turn, len(batch), ackAlongside+1)
	}

	w = newW()
	w.ackTurn <- struct{}{}
	fill(w, 2)
	done := make(chan bool)
	batch = []*Delivery{{}}
	go func() { done <- w.gatherAcks(&batch) }()
	select {
	case <-done:
		t.Fatal("a small batch went out beside another call")
	case <-time.After(20 * time.Millisecond):
	}
	<-w.ackTurn // the other call ends
	if turn := <-done; !turn || len(batch) != 3 {
		t.Errorf("after the other call: turn %v, %d acks; want the turn and 3", turn, len(batch))
	}

	w = newW()
	w.ackTurn <- struct{}{}
	close(w.ackQuit)
	batch = []*Delivery{{}}
	if turn := w.gatherAcks(&batch); turn || len(batch) != 1 {
		t.Errorf("quitting: turn %v, %d acks; want no turn and 1", turn, len(batch))
	}
}

// TestAckAfterAckersGone: a success queued for the ackers after they have
// ended (a handler that outlived Stop's grace) is finished all the same,
// whether its send into the buffered acks won or not: none is left counted
// among the handlers, in flight, or in the acks.
func TestAckAfterAckersGone(t *testing.T) {
	t.Parallel()
	w := NewWorker(NewClient("http://127.0.0.1:1"), "q", HandlerFunc(func(context.Context, *Delivery) error { return nil }),
		WorkerOptions{Concurrency: 4, Logger: slog.New(slog.DiscardHandler)})
	close(w.ackersGone)
	for range 200 { // the select picks either ready case at random
		_, cancel := context.WithCancelCause(context.Background())
		d := &Delivery{cancel: cancel}
		w.inflight[d] = struct{}{}
		w.handlers.Add(1)
		if !w.ack(d) {
			w.finish(d) // as process does when the ackers did not take it
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if !waitGroup(ctx, &w.handlers) || len(w.inflight) != 0 || len(w.acks) != 0 {
		t.Errorf("after 200 acks with the ackers gone: %d in flight, %d queued; handlers done: %v",
			len(w.inflight), len(w.acks), ctx.Err() == nil)
	}
}

// TestHeldAcksHoldForAny: acks queued together wait for a receive if any
// of them is to (the last of a parked batch, queued just after another
// that is not, must not go out with it at once), and a new round starts
// from its own first ack.
func TestHeldAcksHoldForAny(t *testing.T) {
	h := newHeldAcks()
	h.add(&Delivery{}, false)
	h.add(&Delivery{}, true)
	if !h.holding() {
		t.Errorf("an ack to carry queued after one not to: holding() false; want true")
	}
	if got := h.take(-1); len(got) != 2 {
		t.Fatalf("took %d acks, want 2", len(got))
	}
	h.add(&Delivery{}, false)
	if h.holding() {
		t.Errorf("a new round whose first ack is not to be carried: holding() true; want false")
	}
}
