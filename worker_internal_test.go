package courier

import (
	"errors"
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
// of a batch are free it waits (up to the linger) for that many.
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
	freed := make(chan struct{})
	go func() {
		give(4) // four handlers finish while gather waits
		close(freed)
	}()
	// Half a batch is 4: the caller's token and three more, or the four
	// freed if they were all free before gather looked.
	if n := w.gather(t.Context(), linger); n < 4 || n > 5 {
		t.Errorf("gather = %d, want half a batch (4, or 5)", n)
	}
	<-freed

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
