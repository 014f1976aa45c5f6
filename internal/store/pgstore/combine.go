package pgstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// Leases of one queue on one node take turns, and those that wait go
// together. Two leases of a queue that run at once walk the same index and
// the second steps over every row the first holds (FOR UPDATE SKIP LOCKED
// tries each one); and a lease costs a transaction and some ten statements
// whatever its size. So while a fast lease of a queue runs, the others that
// arrive wait, and when it ends they run as one: one statement leases for
// all of them, the messages are shared out in order, and the acks they carry
// go in the same change. The node's consumers of one queue then cost the
// database one lease at a time, however many there are.

// maxCombined bounds the messages one combined lease asks for.
const maxCombined = 1000

// leaseCall is one caller's fast lease, alone or in a combined one.
type leaseCall struct {
	ctx  context.Context
	p    *store.LeaseParams
	now  time.Time
	lead chan []*leaseCall // the group this call is to run, when its turn comes
	done chan struct{}     // closed when res and err are set
	res  store.LeaseResult
	err  error
}

// combiner has, per queue, whether a lease runs and the calls waiting.
type combiner struct {
	mu      sync.Mutex
	busy    map[string]bool
	waiting map[string][]*leaseCall
	// runs and calls count the leases run and the calls they served.
	runs, calls atomic.Int64
}

func newCombiner() *combiner {
	return &combiner{busy: map[string]bool{}, waiting: map[string][]*leaseCall{}}
}

// lease runs p with run, alone or combined with others of its queue, and
// returns its share.
func (c *combiner) lease(ctx context.Context, p *store.LeaseParams, now time.Time,
	run func(context.Context, *store.LeaseParams, time.Time) (store.LeaseResult, error)) (store.LeaseResult, error) {
	call := &leaseCall{ctx: ctx, p: p, now: now, lead: make(chan []*leaseCall, 1), done: make(chan struct{})}
	c.mu.Lock()
	if !c.busy[p.Queue] {
		c.busy[p.Queue] = true
		c.mu.Unlock()
		c.runGroup([]*leaseCall{call}, run)
		return call.res, call.err
	}
	c.waiting[p.Queue] = append(c.waiting[p.Queue], call)
	c.mu.Unlock()
	select {
	case g := <-call.lead:
		c.runGroup(g, run)
	case <-call.done:
	case <-ctx.Done():
		if c.withdraw(call) {
			return store.LeaseResult{}, ctx.Err()
		}
		select { // taken into a group already: it ends soon
		case g := <-call.lead:
			c.runGroup(g, run)
		case <-call.done:
		}
	}
	return call.res, call.err
}

// withdraw takes call out of its queue's waiting calls, if it is there.
func (c *combiner) withdraw(call *leaseCall) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waiting[call.p.Queue]
	for i, o := range w {
		if o == call {
			c.waiting[call.p.Queue] = append(w[:i:i], w[i+1:]...)
			return true
		}
	}
	return false
}

// runGroup runs the calls of g as one lease, shares out the result, and
// hands the queue's turn to the calls that waited meanwhile.
func (c *combiner) runGroup(g []*leaseCall,
	run func(context.Context, *store.LeaseParams, time.Time) (store.LeaseResult, error)) {
	c.runs.Add(1)
	c.calls.Add(int64(len(g)))
	p, now := combined(g)
	ctx, cancel := groupContext(g)
	res, err := run(ctx, p, now)
	cancel()
	share(g, res, err)
	for _, call := range g {
		close(call.done)
	}
	c.next(p.Queue)
}

// next gives the turn of queue to the first call waiting, with the calls
// that can go with it, or ends the queue's turn.
func (c *combiner) next(queue string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waiting[queue]
	if len(w) == 0 {
		delete(c.busy, queue)
		delete(c.waiting, queue)
		return
	}
	g, rest := []*leaseCall{w[0]}, []*leaseCall{}
	n := w[0].p.Max
	for _, call := range w[1:] {
		if call.p.Visibility == w[0].p.Visibility && n+call.p.Max <= maxCombined {
			g = append(g, call)
			n += call.p.Max
		} else {
			rest = append(rest, call)
		}
	}
	c.waiting[queue] = rest
	g[0].lead <- g
}

// groupContext is cancelled when every call of g has given up.
func groupContext(g []*leaseCall) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(g[0].ctx))
	left := int32(len(g))
	stops := make([]func() bool, len(g))
	for i, call := range g {
		stops[i] = context.AfterFunc(call.ctx, func() {
			if atomic.AddInt32(&left, -1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// combined is the lease of the calls of g together: their counts added up,
// their acks one after another, the latest time. The byte limit is the
// smallest of theirs, so that the messages leased can always be shared out
// by count (share): each call's share is then under its own limit.
func combined(g []*leaseCall) (*store.LeaseParams, time.Time) {
	if len(g) == 1 {
		return g[0].p, g[0].now
	}
	first := g[0].p
	p := &store.LeaseParams{Queue: first.Queue, Visibility: first.Visibility, Retry: first.Retry, Now: first.Now}
	now := g[0].now
	withResults := false
	for _, call := range g {
		withResults = withResults || call.p.AckResults != nil
	}
	for _, call := range g {
		q := call.p
		p.Max += q.Max
		if q.MaxBytes > 0 && (p.MaxBytes == 0 || q.MaxBytes < p.MaxBytes) {
			p.MaxBytes = q.MaxBytes
		}
		if q.Now.After(p.Now) {
			p.Now = q.Now
		}
		if call.now.After(now) {
			now = call.now
		}
		p.Acks = append(p.Acks, q.Acks...)
		if withResults {
			if q.AckResults != nil {
				p.AckResults = append(p.AckResults, q.AckResults...)
			} else {
				p.AckResults = append(p.AckResults, make([][]byte, len(q.Acks))...)
			}
		}
	}
	if len(p.Acks) == 0 {
		p.Acks = nil
	}
	return p, now
}

// share gives each call of g its part of the combined lease's result: the
// messages in order, as many as each asked for; the outcomes of its acks.
func share(g []*leaseCall, res store.LeaseResult, err error) {
	msgs, acked := res.Messages, res.Acked
	for _, call := range g {
		if err != nil {
			call.err = err
			continue
		}
		n := min(call.p.Max, len(msgs))
		call.res = store.LeaseResult{Messages: msgs[:n:n], NextDue: res.NextDue}
		msgs = msgs[n:]
		if call.p.Acks != nil {
			k := min(len(call.p.Acks), len(acked))
			call.res.Acked, acked = acked[:k:k], acked[k:]
		}
	}
}
