package courier

import (
	"sync"
	"time"
)

// How a Worker's acks travel. A successful delivery's ack first waits, up
// to ackHold, for the worker's next receive, which carries it (the
// receive's "ack"): one call and one commit on the server then do the work
// of two. The handler that finished gives its token back just after
// queuing its ack, and that token is what lets the next receive start, so
// under load nearly every ack rides on a receive. Acks that no receive
// takes in time — every receive is long-polling, or the worker is stopping
// — go to the ackers (worker_settle.go), which send them in batches of
// their own. When the last receive found the queue drained (fewer messages
// than it asked for), the receives out are long-polls that may wait for
// the next message, so the only ack held is that of the last handler of
// the batch a parked slot waits for (worker_receive.go, park), which that
// slot's next receive carries, with any queued beside it: others, under a
// light load, would wait ackHold for nothing, and so would every task's
// result.

// ackHold is how long an ack waits for a receive to carry it before the
// ackers send it.
const ackHold = 2 * time.Millisecond

// heldAcks are the acks waiting for a receive.
type heldAcks struct {
	mu     sync.Mutex
	ds     []*Delivery
	hold   bool          // the first of ds is to wait for a receive (see add)
	closed bool          // the mover has ended: acks go to the ackers at once
	kick   chan struct{} // capacity 1: the list went from empty to not
}

func newHeldAcks() *heldAcks { return &heldAcks{kick: make(chan struct{}, 1)} }

// add queues d's ack, false if the queue is closed. hold says whether a
// receive is expected to carry it: decided by the caller now, not when
// holdLoop wakes, since by then the receive may have gone out (a parked
// slot leaves as soon as its last handler is done). The acks queued
// together wait for a receive if any of them is to.
func (h *heldAcks) add(d *Delivery, hold bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.ds = append(h.ds, d)
	if len(h.ds) > 1 {
		h.hold = h.hold || hold // one to carry keeps the round for the receive
		return true
	}
	h.hold = hold
	select {
	case h.kick <- struct{}{}:
	default:
	}
	return true
}

// take removes and returns up to n of the acks waiting (all for n < 0),
// oldest first.
func (h *heldAcks) take(n int) []*Delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n < 0 || n > len(h.ds) {
		n = len(h.ds)
	}
	if n == 0 {
		return nil
	}
	out := make([]*Delivery, n)
	copy(out, h.ds)
	rest := copy(h.ds, h.ds[n:])
	clear(h.ds[rest:]) // no reference kept to what was taken
	h.ds = h.ds[:rest]
	return out
}

// holding reports whether the acks waiting are to wait for a receive.
func (h *heldAcks) holding() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hold
}

// close closes the queue and returns what was waiting.
func (h *heldAcks) close() []*Delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	out := h.ds
	h.ds = nil
	return out
}

// holdLoop hands to the ackers the acks that waited ackHold without a
// receive taking them. Told to quit (holdQuit), it hands over all that
// wait, closes the queue and ends.
func (w *Worker) holdLoop() {
	defer close(w.holdDone)
	defer func() { w.toAckers(w.held.close()) }()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-w.held.kick:
		case <-w.holdQuit:
			return
		}
		if w.held.holding() {
			t.Reset(w.hold)
			select {
			case <-t.C:
			case <-w.holdQuit:
				return
			}
		}
		w.toAckers(w.held.take(-1))
	}
}

// holdAcks reports whether d's ack, queued now, is to wait for a receive
// to carry it: not when none will go out soon (the queue is drained and
// the receives out are long-polls), unless d's handler is the last of a
// parked slot's batch to return (last; its slot goes out as soon as it
// has); nor at all (noCarry).
func (w *Worker) holdAcks(d *Delivery, last bool) bool {
	if w.noCarry.Load() {
		return false
	}
	if !w.drained.Load() {
		return true
	}
	return last && d.batch == w.parked.Load()
}

// toAckers queues ds for the ackers, which run until after holdLoop ends.
func (w *Worker) toAckers(ds []*Delivery) {
	for _, d := range ds {
		w.acks <- d
	}
}
