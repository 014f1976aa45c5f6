package courier

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// How a Worker prefetches. A receive that asks only for the handlers free
// when it goes out leaves the others idle when they finish while it is
// under way: with quick handlers the worker spends its time waiting for
// round trips, and each one brings few messages (a burn-down of no-op jobs
// at Concurrency 100 got about 50 per receive and ran at 75,000/s; asking
// for 100, at about 110,000/s with a fifth less CPU per job). So a receive
// also asks for the messages the busy handlers (and those of the other
// receive out) are expected to be ready for by the time it answers: by
// Little's law, busy × round trip / handler time, less those already
// waiting, with at most MaxPrefetch waiting, and none while the queue
// looks drained. Those wait in one queue, in order, for a handler: a
// handler that returns passes its token to the first of them before any
// receive may take it. With handlers slower than a round trip the prefetch
// is a handler or two; with handlers a hundred times slower, none.
//
// MaxPrefetch is four times Concurrency by default. With quick handlers
// the bound, not the estimate, sets a receive's size, and each receive
// costs a round trip and an fsync: at Concurrency 100 and MaxBatch 1000, a
// burn-down of no-op jobs with at most Concurrency waiting took about 95
// per receive; with four times as many, about 200, for a quarter more jobs
// a second and less CPU per job (docs/benchmarks-journal.md). The bound is what a
// wrong estimate can cost: if quick handlers turn slow, at most
// MaxPrefetch / Concurrency rounds of their work (four by default) wait
// here, leases kept, while another worker might have taken them.
//
// A handler that waits for another message of its own queue (a parent for
// its child) should run in a worker with NoPrefetch: the child may be
// prefetched behind busy parents, and wait there while another worker
// is idle.
//
// The estimates are moving averages of the handlers' run times and of the
// round trips of receives that came back full (answered at once, as a
// rule; one that took far longer than the average is taken for a
// long-poll's wait and left out).
type prefetch struct {
	handler atomic.Int64 // average handler run time, ns; 0 until one ran
	trip    atomic.Int64 // average round trip of a full receive, ns; 0 until one came
	// pending counts the messages receives out may bring beyond their free
	// handlers, and those brought that wait for one: at most MaxPrefetch
	// (more only from a server that answers more than asked).
	pending atomic.Int64

	mu      sync.Mutex // guards waiting
	waiting []prepared // prefetched deliveries, oldest first
}

// average moves the moving average a by one sample x (1/8 of the way;
// concurrent updates may lose one, which an estimate can afford).
func average(a *atomic.Int64, x time.Duration) {
	old := a.Load()
	if old == 0 {
		a.Store(max(int64(x), 1))
		return
	}
	a.Store(max(old+(int64(x)-old)/8, 1))
}

// firstTripMax bounds the first round trip sample: a full receive that
// took longer is more likely a long-poll that waited than a slow server.
const firstTripMax = 100 * time.Millisecond

// noteTrip takes d, the round trip of a receive that came back full, as a
// sample of the round trip, unless it is too long to be one (see above).
func (p *prefetch) noteTrip(d time.Duration) {
	if cur := time.Duration(p.trip.Load()); (cur == 0 && d > firstTripMax) || (cur > 0 && d > 4*cur) {
		return
	}
	average(&p.trip, d)
}

// reserve returns how many messages a receive with free handlers may ask
// for beyond them, and counts them as pending; unreserve gives back those
// that did not come.
func (w *Worker) reserve(free int) int {
	if w.opts.NoPrefetch || w.drained.Load() {
		return 0
	}
	h, trip := w.pre.handler.Load(), w.pre.trip.Load()
	if h == 0 || trip == 0 {
		return 0 // nothing known yet
	}
	// In one round trip each busy handler gets through trip/h messages (the
	// free ones are this receive's own); those already waiting go first.
	limit := int64(w.opts.MaxPrefetch)
	busy := w.opts.Concurrency - free
	expect := int64(min(float64(busy)*float64(trip)/float64(h), float64(limit)))
	for {
		p := w.pre.pending.Load()
		n := min(expect-p, limit-p, int64(w.opts.MaxBatch-free))
		if n <= 0 {
			return 0
		}
		if w.pre.pending.CompareAndSwap(p, p+n) {
			return int(n)
		}
	}
}

func (w *Worker) unreserve(n int) { w.pre.pending.Add(-int64(n)) }

// prefetched queues, in order, the deliveries of messages a receive
// brought beyond its free handlers, and starts those that find a free
// handler; their leases are kept from now on (prepare). It runs before the
// receive starts its other messages' handlers, so that one of those, or
// an earlier one, finds them when it returns.
func (w *Worker) prefetched(ms []Message, leasedAt time.Time, b *parkedBatch) {
	ps := make([]prepared, len(ms))
	for i := range ms {
		ps[i] = w.prepare(&ms[i], leasedAt, b)
	}
	w.pre.mu.Lock()
	w.pre.waiting = append(w.pre.waiting, ps...)
	w.pre.mu.Unlock()
	w.startWaiting()
}

// takeWaiting removes and returns the first prefetched delivery still to
// be handled; false if there is none, or Stop has begun (stop hands them
// back). One whose lease was lost, or whose task was cancelled, while it
// waited is finished here, unhandled.
func (w *Worker) takeWaiting() (prepared, bool) {
	for {
		select {
		case <-w.stopping:
			return prepared{}, false
		default:
		}
		w.pre.mu.Lock()
		if len(w.pre.waiting) == 0 {
			w.pre.mu.Unlock()
			return prepared{}, false
		}
		p := w.pre.waiting[0]
		w.pre.waiting[0] = prepared{}
		w.pre.waiting = w.pre.waiting[1:]
		w.pre.mu.Unlock()
		w.unreserve(1)
		if p.ctx.Err() == nil {
			return p, true
		}
		w.log.Info("courier worker: a prefetched message was lost while it waited for a handler",
			"id", p.d.ID, "cause", context.Cause(p.ctx))
		p.d.keep.stop()
		w.leave(p.d)
		w.finish(p.d)
	}
}

// handOn passes the token of a handler that returned to the first
// prefetched delivery waiting, or gives it back.
func (w *Worker) handOn() {
	if p, ok := w.takeWaiting(); ok {
		go w.process(p.ctx, p.d) // the token, and its count in running, pass on
		return
	}
	w.running.Add(-1)
	<-w.sem
	w.startWaiting() // one queued after the look above
}

// startWaiting starts prefetched deliveries while there are free handlers.
func (w *Worker) startWaiting() {
	for {
		w.pre.mu.Lock()
		none := len(w.pre.waiting) == 0
		w.pre.mu.Unlock()
		if none {
			return
		}
		select {
		case w.sem <- struct{}{}:
		default:
			return // every handler busy: the next to return starts one
		}
		p, ok := w.takeWaiting()
		if !ok {
			<-w.sem // taken meanwhile, or Stop began
			return
		}
		w.running.Add(1)
		go w.process(p.ctx, p.d)
	}
}

// releaseWaiting hands back the prefetched deliveries that never started:
// Stop calls it once no receive is out. ctx bounds the releases.
func (w *Worker) releaseWaiting(ctx context.Context) {
	w.pre.mu.Lock()
	ps := w.pre.waiting
	w.pre.waiting = nil
	w.pre.mu.Unlock()
	w.unreserve(len(ps))
	claimed := ps[:0]
	for _, p := range ps {
		p.d.keep.stop()
		if p.d.claim() {
			claimed = append(claimed, p)
			continue
		}
		w.leave(p.d)
		w.finish(p.d)
	}
	releaseEach(len(claimed), func(i int) {
		d := claimed[i].d
		w.giveBack(ctx, d)
		w.leave(d)
		w.finish(d)
	})
}

// leave counts d's handler as done for the parked batch d belongs to.
func (w *Worker) leave(d *Delivery) {
	if d.batch.leave() {
		close(d.batch.done)
	}
}

// prepared is a delivery made ready for its handler, and the handler's
// context.
type prepared struct {
	ctx context.Context
	d   *Delivery
}
