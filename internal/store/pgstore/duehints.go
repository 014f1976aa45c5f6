package pgstore

import (
	"sync"
	"time"
)

// Due hints: when a lease may skip the queue's due work.
//
// A lease first does what time has made due in its queue (due.go: expired
// leases, delayed messages, retention): three statements, a third of a
// lease's time in a burn-down, that almost always find nothing. Yet skipping
// them is safe only when nothing can be due, so each node remembers, per
// queue, a time before which it knows nothing is: the earliest of the
// queue's lease expiries, delayed messages and retention ends, read from the
// database when due work last ran, and lowered by every change this node
// commits that makes something due sooner (a lease, a delayed send) or that
// it does not track (any other verb on the queue: the hint is dropped).
// Changes made by other nodes (or by applications' own transactions,
// package courierpgx) are not seen here; the leader's Tick does the
// due work of every queue, when the database says something is due, so a
// lease made elsewhere still expires on time, and this node's leases catch
// up when its hint runs out or is dropped.
//
// A hint is recomputed by a transaction that did the due work (a reset). A
// change committed while the reset's transaction runs may be missing from
// what it read, so each reset also collects the notes made meanwhile, and
// its result is never later than any of them.
type dueHints struct {
	mu     sync.Mutex
	at     map[string]time.Time // queue → nothing is due before; absent: unknown
	resets map[*dueReset]struct{}
}

// dueReset is a recomputation of one queue's hint under way.
type dueReset struct {
	queue string
	low   time.Time // the earliest note made meanwhile
	noted bool
}

// never is the hint of a queue where nothing is scheduled.
var never = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func newDueHints() *dueHints {
	return &dueHints{at: map[string]time.Time{}, resets: map[*dueReset]struct{}{}}
}

// due reports whether a lease of queue at now must do the due work first.
func (h *dueHints) due(queue string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.at[queue]
	return !ok || !now.Before(at)
}

// note records that something in queue may be due at t; the zero time
// drops the queue's hint (anything may be due).
func (h *dueHints) note(queue string, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if at, ok := h.at[queue]; ok && t.Before(at) {
		if t.IsZero() {
			delete(h.at, queue)
		} else {
			h.at[queue] = t
		}
	}
	for r := range h.resets {
		if r.queue == queue && (!r.noted || t.Before(r.low)) {
			r.low, r.noted = t, true
		}
	}
}

// begin starts a reset of queue's hint; call it before the reset's
// transaction reads what is due.
func (h *dueHints) begin(queue string) *dueReset {
	r := &dueReset{queue: queue}
	h.mu.Lock()
	h.resets[r] = struct{}{}
	h.mu.Unlock()
	return r
}

// finish ends r. If its transaction committed (ok), the queue's hint is
// next, or the earliest note made since begin if that is sooner.
func (h *dueHints) finish(r *dueReset, next time.Time, ok bool) {
	if r == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.resets, r)
	if !ok {
		return
	}
	if r.noted && r.low.Before(next) {
		next = r.low
	}
	if next.IsZero() {
		delete(h.at, r.queue)
	} else {
		h.at[r.queue] = next
	}
}
