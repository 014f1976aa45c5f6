package courier

import (
	"testing"
	"time"
)

// TestReserve: what a receive asks for beyond its free handlers follows
// the busy handlers, the round trip and the handlers' run time, less what
// already waits; never more than MaxPrefetch wait (by default four
// times Concurrency), nor MaxBatch go in one receive.
func TestReserve(t *testing.T) {
	t.Parallel()
	newW := func(o WorkerOptions) *Worker {
		return NewWorker(NewClient("http://127.0.0.1:1"), "q", HandlerFunc(nil), o)
	}
	w := newW(WorkerOptions{Concurrency: 10, MaxBatch: 100})
	set := func(handler, trip time.Duration) {
		w.pre.handler.Store(int64(handler))
		w.pre.trip.Store(int64(trip))
	}
	check := func(what string, free, want int) {
		t.Helper()
		before := w.pre.pending.Load()
		if got := w.reserve(free); got != want {
			t.Errorf("%s: reserve(%d) = %d, want %d", what, free, got, want)
		}
		if p := w.pre.pending.Load(); p != before+int64(want) {
			t.Errorf("%s: pending %d after reserving %d from %d", what, p, want, before)
		}
	}

	check("nothing measured yet", 4, 0)
	set(time.Microsecond, time.Millisecond)
	check("all handlers free", 10, 0)
	check("quick handlers, six busy", 4, 40) // up to MaxPrefetch waiting
	check("MaxPrefetch already pending", 3, 0)
	w.unreserve(40)

	set(10*time.Millisecond, 5*time.Millisecond)
	check("handlers twice a round trip, eight busy", 2, 4)
	check("as many pending as expected", 2, 0)
	w.unreserve(4)

	set(100*time.Millisecond, time.Millisecond)
	check("handlers a hundred round trips, eight busy", 2, 0)

	w = newW(WorkerOptions{Concurrency: 10, MaxBatch: 100, MaxPrefetch: 7})
	set(time.Microsecond, time.Millisecond)
	check("MaxPrefetch bounds those waiting", 4, 7)
	check("MaxPrefetch already pending", 4, 0)
	w.unreserve(3)
	check("room for three more", 4, 3)

	w = newW(WorkerOptions{Concurrency: 10, MaxBatch: 8})
	set(time.Microsecond, time.Millisecond)
	check("MaxBatch bounds the receive", 6, 2)

	if got := (WorkerOptions{Concurrency: 7}).WithDefaults().MaxPrefetch; got != 28 {
		t.Errorf("default MaxPrefetch at Concurrency 7: %d, want 28", got)
	}

	w = newW(WorkerOptions{Concurrency: 10, MaxBatch: 100, NoPrefetch: true})
	set(time.Microsecond, time.Millisecond)
	check("NoPrefetch", 4, 0)
}
