package pgstore

import (
	"context"
	"errors"
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

// leaseRun runs one lease (Store.leaseFastTx).
type leaseRun func(ctx context.Context, p *store.LeaseParams, now time.Time) (store.LeaseResult, error)

// leaseCall is one caller's fast lease, alone or in a combined one.
type leaseCall struct {
	ctx  context.Context
	p    *store.LeaseParams
	now  time.Time
	lead chan []*leaseCall // the group this call is to run, when its turn comes
	done chan struct{}     // closed when res, err and again are set
	// taken and runner are set, under the combiner's mutex, when the call
	// is taken into a group, and runner if it is to run it.
	taken, runner bool
	res           store.LeaseResult
	err           error
	again         again
}

// again says whether a call the combined lease did not serve runs once
// more, alone.
type again int

const (
	notAgain again = iota
	// againWithoutAcks: the lease stopped at the byte limit before this
	// call's share; its acks were applied.
	againWithoutAcks
	// againWhole: the combined lease failed, perhaps because of another
	// call's input; nothing was applied.
	againWhole
)

// errLeasePanicked is the error of the calls of a group whose run panicked.
var errLeasePanicked = errors.New("pgstore: a combined lease panicked")

// combiner has, per queue, whether a lease runs and the calls waiting.
type combiner struct {
	mu      sync.Mutex
	busy    map[string]bool
	waiting map[string][]*leaseCall
	// runs and calls count the leases run and the calls they served.
	runs, calls atomic.Int64
	// giveBack, if set, hands back the messages of a share whose caller
	// gave up while its combined lease ran (Store.releaseShare).
	giveBack func(p *store.LeaseParams, msgs []store.Message)
}

func newCombiner() *combiner {
	return &combiner{busy: map[string]bool{}, waiting: map[string][]*leaseCall{}}
}

// lease runs p with run, alone or combined with others of its queue, and
// returns its share.
func (c *combiner) lease(ctx context.Context, p *store.LeaseParams, now time.Time, run leaseRun) (store.LeaseResult, error) {
	call := &leaseCall{ctx: ctx, p: p, now: now, lead: make(chan []*leaseCall, 1), done: make(chan struct{})}
	c.mu.Lock()
	if !c.busy[p.Queue] {
		c.busy[p.Queue] = true
		c.mu.Unlock()
		c.runGroup([]*leaseCall{call}, run)
		return c.result(call, run)
	}
	c.waiting[p.Queue] = append(c.waiting[p.Queue], call)
	c.mu.Unlock()
	select {
	case g := <-call.lead:
		c.runGroup(g, run)
	case <-call.done:
	case <-ctx.Done():
		stay, taken := c.mustStay(call)
		if !stay {
			if taken {
				go c.abandon(call) // the caller returns at once
			}
			return store.LeaseResult{}, ctx.Err()
		}
		c.runGroup(<-call.lead, run)
	}
	return c.result(call, run)
}

// mustStay is called when a waiting call's caller gives up: it takes the
// call out of its queue's waiting calls if it is still there, and reports
// whether the call must stay, to run the group it was taken to run, and
// whether it was taken into a group at all.
func (c *combiner) mustStay(call *leaseCall) (stay, taken bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waiting[call.p.Queue]
	for i, o := range w {
		if o == call {
			c.waiting[call.p.Queue] = append(w[:i:i], w[i+1:]...)
			return false, false
		}
	}
	return call.runner, true
}

// abandon is a call whose caller gave up after it was taken into a group
// that another call runs: its share goes to nobody. It waits for the
// group's lease, then hands the share's messages back (giveBack), so that
// they are not leased to no one until they expire. (A share answered as
// its caller leaves is not seen here: it expires.)
func (c *combiner) abandon(call *leaseCall) {
	<-call.done
	if call.err == nil && len(call.res.Messages) > 0 && c.giveBack != nil {
		c.giveBack(call.p, call.res.Messages)
	}
}

// result is the call's outcome, once done, after running it again alone
// if its combined lease did not serve it.
func (c *combiner) result(call *leaseCall, run leaseRun) (store.LeaseResult, error) {
	switch call.again {
	case againWhole:
		return run(call.ctx, call.p, call.now)
	case againWithoutAcks:
		p := *call.p
		p.Acks, p.AckResults = nil, nil
		res, err := run(call.ctx, &p, call.now)
		res.Acked = call.res.Acked
		return res, err
	}
	return call.res, call.err
}

// runGroup runs the calls of g as one lease, shares out the result, and
// hands the queue's turn to the calls that waited meanwhile, even should
// the run panic.
func (c *combiner) runGroup(g []*leaseCall, run leaseRun) {
	queue := g[0].p.Queue
	shared := false
	defer func() {
		if !shared { // run panicked: the callers are told, the turn goes on
			for _, call := range g {
				call.err = errLeasePanicked
				close(call.done)
			}
		}
		c.next(queue)
	}()
	c.runs.Add(1)
	c.calls.Add(int64(len(g)))
	var res store.LeaseResult
	var err error
	if len(g) == 1 {
		res, err = run(g[0].ctx, g[0].p, g[0].now)
	} else {
		p, now := combined(g)
		ctx, cancel := groupContext(g)
		res, err = run(ctx, p, now)
		cancel()
	}
	share(g, res, err)
	shared = true
	for _, call := range g {
		close(call.done)
	}
}

// next gives the turn of queue to the first call waiting, with the calls
// that can go with it, or ends the queue's turn. Calls whose caller gave up
// meanwhile are dropped.
func (c *combiner) next(queue string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var g, rest []*leaseCall
	n := 0
	for _, call := range c.waiting[queue] {
		switch {
		case call.ctx.Err() != nil:
			call.taken, call.err = true, call.ctx.Err()
			close(call.done)
		case len(g) == 0 || call.p.Visibility == g[0].p.Visibility && n+call.p.Max <= maxCombined:
			call.taken = true
			g = append(g, call)
			n += call.p.Max
		default:
			rest = append(rest, call)
		}
	}
	if len(g) == 0 {
		delete(c.busy, queue)
		delete(c.waiting, queue)
		return
	}
	c.waiting[queue] = rest
	g[0].runner = true
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
// smallest of theirs, so that each share, given by count (share), is
// within its call's own limit; a call the limit leaves without a share
// runs again alone (again).
func combined(g []*leaseCall) (*store.LeaseParams, time.Time) {
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
// A call left without messages because the lease stopped at the byte limit
// runs again (againWithoutAcks). When a combined lease fails with an error
// that need not be every call's (one call's input, say), each call runs
// again alone (againWhole).
func share(g []*leaseCall, res store.LeaseResult, err error) {
	if err != nil {
		for _, call := range g {
			call.err = err
			if len(g) > 1 {
				switch {
				case call.ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
					call.err = call.ctx.Err() // the call's own reason
				case !sharedFailure(err):
					call.again = againWhole
				}
			}
		}
		return
	}
	bytes := 0
	for _, m := range res.Messages {
		bytes += len(m.Body)
	}
	most := minBytes(g)
	limited := len(g) > 1 && most > 0 && bytes >= most
	msgs, acked := res.Messages, res.Acked
	for _, call := range g {
		n := min(call.p.Max, len(msgs))
		call.res = store.LeaseResult{Messages: msgs[:n:n], NextDue: res.NextDue}
		msgs = msgs[n:]
		if call.p.Acks != nil {
			k := min(len(call.p.Acks), len(acked))
			call.res.Acked, acked = acked[:k:k], acked[k:]
		}
		if n == 0 && limited {
			call.again = againWithoutAcks
		}
	}
}

// minBytes is the smallest byte limit of the calls of g (0: none).
func minBytes(g []*leaseCall) int {
	m := 0
	for _, call := range g {
		if b := call.p.MaxBytes; b > 0 && (m == 0 || b < m) {
			m = b
		}
	}
	return m
}

// sharedFailure: err is one every call of a combined lease would have met
// alone (the database, the queue, the store, the callers' contexts), not
// one that a call's own input may have caused.
func sharedFailure(err error) bool {
	return errors.Is(err, errNotFast) || errors.Is(err, store.ErrOutcomeUnknown) ||
		errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrClosed) ||
		errors.Is(err, store.ErrQueueNotFound) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded)
}
