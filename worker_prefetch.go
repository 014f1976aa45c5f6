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
// also asks for the messages the busy handlers are expected to be ready
// for by the time it answers: by Little's law, busy × round trip / handler
// time, less those already waiting, with at most Concurrency waiting. Those wait, in order, for a handler; the
// receive's slot waits with them, so a worker holds at most twice
// Concurrency messages. With handlers slower than a round trip the
// prefetch is a handler or two; with handlers a hundred times slower,
// none: a message is not held here while another worker could run it.
//
// The estimates are moving averages of the handlers' run times and of the
// round trips of receives that came back full (those answered at once; a
// long-poll's would count its wait).
type prefetch struct {
	handler atomic.Int64 // average handler run time, ns; 0 until one ran
	trip    atomic.Int64 // average round trip of a full receive, ns; 0 until one came
	// pending counts the messages receives out may bring beyond their free
	// handlers, and those brought that wait for one: at most Concurrency.
	pending atomic.Int64
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

// reserve returns how many messages a receive with free handlers may ask
// for beyond them, and counts them as pending; unreserve gives back those
// that did not come.
func (w *Worker) reserve(free int) int {
	if w.opts.NoPrefetch {
		return 0
	}
	h, trip := w.pre.handler.Load(), w.pre.trip.Load()
	if h == 0 || trip == 0 {
		return 0 // nothing known yet
	}
	// In one round trip each busy handler gets through trip/h messages (the
	// free ones are this receive's own); those already waiting go first.
	limit := int64(w.opts.Concurrency)
	expect := int64(min(float64(limit-int64(free))*float64(trip)/float64(h), float64(limit)))
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

func (w *Worker) unreserve(n int) {
	if n > 0 {
		w.pre.pending.Add(-int64(n))
	}
}

// startPrefetched starts, in order, a handler for each message a receive
// brought beyond its free handlers, as handlers become free, while the
// caller's receive slot waits. Their leases are kept from the start (a
// timer each, see keepLease). If Stop begins meanwhile, those not started
// are handed back, as a stopping worker's receive's messages are.
func (w *Worker) startPrefetched(ms []Message, leasedAt time.Time, b *parkedBatch) {
	ds := make([]prepared, len(ms))
	for i := range ms {
		ds[i] = w.prepare(&ms[i], leasedAt, b)
	}
	for i, p := range ds {
		select {
		case <-w.stopping: // before a token that is free too
		default:
			select {
			case w.sem <- struct{}{}:
				w.unreserve(1)
				w.running.Add(1)
				go w.process(p.ctx, p.d)
				continue
			case <-w.stopping:
			}
		}
		w.unreserve(len(ds) - i)
		w.releasePrepared(ds[i:])
		return
	}
}

// releasePrepared hands back deliveries whose handlers never started.
func (w *Worker) releasePrepared(ds []prepared) {
	ctx, cancel := w.settleContext()
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range ds {
		p.d.keep.stop()
		if !p.d.claim() {
			w.leave(p.d)
			w.finish(p.d) // Stop's abandon released it
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.release(ctx, p.d)
			w.leave(p.d)
			w.finish(p.d)
		}()
	}
	wg.Wait()
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
