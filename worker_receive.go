package courier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// How a Worker takes messages. A receive asks for as many messages as there
// are free handlers (each holds a token of w.sem until its handler returns),
// and costs a round trip with an fsync on the server. With one receive at a
// time, a handler that finished while a receive was under way waited for
// that receive to end before it could be given work: with quick handlers
// the tokens spent half their time idle (a burn-down of no-op jobs at
// Concurrency 100 ran at 26,000/s, each receive taking 1.7ms). So up to
// receivesInFlight receives run side by side, each with the tokens free
// when it starts, and each asks for more, prefetched, when the busy
// handlers are quick (worker_prefetch.go).
const receivesInFlight = 2

// carryWait is the long-poll of a receive that carries acks. The server
// applies them at once, and answers the receive once they are durable:
// when the wait ends, or sooner if a write ends it, whose fsync covers
// them too (a read of a task's result, or a webhook falling due, has them
// synced at once). Under a light load that write is the send of the next
// message, which the receive then takes: one request where a receive that
// did not wait came back empty and another went out (w6 at 300 tasks/s:
// 1.86 receives per task before, 1.0 after, and a tenth less CPU). It is
// short because the Worker hears how its acks went only when the receive
// answers, and Stop waits for it; under load the receive finds messages
// at once and does not wait at all.
const carryWait = 10 * time.Millisecond

// receiveLinger is how long a worker whose handlers are mostly busy waits
// for more of them to be free before it receives: otherwise it asks for
// one or two messages the moment the first handler is done, and spends a
// whole round trip on them.
const receiveLinger = time.Millisecond

// receiveLoop starts receives while there are free handlers, until ctx
// ends or a receive fails for good; it returns when its receives have.
func (w *Worker) receiveLoop(ctx context.Context) {
	defer close(w.loopDone)
	var receives sync.WaitGroup
	defer receives.Wait()
	slots := make(chan struct{}, receivesInFlight)
	var retry receiveRetry
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if !retry.wait(ctx, w.failed) {
			return
		}
		select { // one free handler at least
		case w.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := w.gather(ctx, linger)
		receives.Add(1)
		go func() {
			defer receives.Done()
			defer func() { <-slots }()
			b, err := w.receive(ctx, n)
			retry.done(w, ctx, err)
			w.park(ctx, b)
		}()
	}
}

// receive asks for n messages, and for those the busy handlers are
// expected to be ready for (worker_prefetch.go), carrying the acks waiting
// (worker_ackhold.go); it gives back the tokens of those that did not
// come, and starts a handler for each that did, the prefetched ones as
// handlers become free. It returns the batch its slot is to park for, if
// any.
func (w *Worker) receive(ctx context.Context, n int) (*parkedBatch, error) {
	extra := w.reserve(n)
	ask := n + extra
	req := ReceiveRequest{Max: ask, Wait: w.opts.Wait.String(), Visibility: w.opts.Visibility.String()}
	var carried []*Delivery
	if ctx.Err() == nil && !w.noCarry.Load() {
		carried = w.held.take(maxReceive)
	}
	callCtx := ctx
	if len(carried) > 0 {
		req.Ack, req.Wait = ackRequest(carried), carryWait.String()
		callCtx = w.carryCtx // Stop lets it finish (worker.go, stop)
	}
	sent := time.Now()
	res, err := w.c.ReceiveAcking(callCtx, w.queue, req)
	answered := time.Now()
	leasedAt := leaseStart(sent, answered, w.opts.Visibility)
	if len(carried) > 0 {
		err = w.carried(callCtx, carried, res, err)
	}
	got := len(res.Messages)
	w.unreserve(extra - max(got-n, 0))
	full := got == ask && ask >= w.want()
	if err == nil {
		w.drained.Store(got < ask)
		if full {
			w.pre.noteTrip(answered.Sub(sent))
			w.wakeParked() // load: both slots are wanted
		}
	}
	for i := got; i < n; i++ {
		<-w.sem
	}
	if ctx.Err() != nil && got > 0 {
		// Stop began while this receive was out (one that carries acks,
		// which Stop lets finish): the worker takes no new messages.
		w.unreserve(max(got-n, 0))
		w.releaseUnstarted(res.Messages, min(got, n))
		return nil, err
	}
	var b *parkedBatch
	if got < ask { // a receive that got all it asked for says the queue has more
		b = w.parkFor(got)
	}
	if got > n {
		w.prefetched(res.Messages[n:], leasedAt, b)
	}
	for i := range min(got, n) {
		w.dispatch(&res.Messages[i], leasedAt, b)
	}
	return b, err
}

// releaseUnstarted hands back, unhandled (giveBack), messages a stopping
// worker received, and gives back a token for each of the first tokens of
// them (the others, prefetched, held none).
func (w *Worker) releaseUnstarted(ms []Message, tokens int) {
	ctx, cancel := w.settleContext()
	defer cancel()
	releaseEach(len(ms), func(i int) {
		if i < tokens {
			defer func() { <-w.sem }()
		}
		w.giveBack(ctx, &Delivery{Message: ms[i]})
	})
}

// carried tells the deliveries whose acks a receive carried their outcome,
// and returns the receive's error. A receive refused for its acks (a
// result over the server's limit, say) gives them to the ackers, which
// find the one at fault, and counts as no failure: the next one, without
// them, tells whether the receive itself is sound. A 400 stops the worker
// carrying acks at all: a server older than the field refuses it so, and
// every receive would otherwise be sent twice. A receive cut short by
// Stop gives them to the ackers too, which Stop waits for: if the server
// had applied them, the second ack is refused as stale (and logged), and
// the message is gone all the same.
func (w *Worker) carried(ctx context.Context, ds []*Delivery, res ReceiveResult, err error) error {
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrInvalidArgument) {
		if errors.Is(err, ErrInvalidArgument) && !w.noCarry.Swap(true) {
			w.log.Warn("courier worker: the server refused a receive carrying acks; acks go out on their own from now on", "err", err)
		}
		w.toAckers(ds)
		return nil
	}
	if err != nil && ctx.Err() != nil {
		w.toAckers(ds)
		return err
	}
	if err == nil && res.Ack == nil {
		// Answered without applying them (a server stopping answers a
		// receive empty, before its first lease): the ackers send them.
		w.toAckers(ds)
		return nil
	}
	var acked AckResult
	if res.Ack != nil {
		acked = *res.Ack
	}
	w.ackOutcomes(ds, acked, err)
	return err
}

// parkMax bounds a parked slot's wait for its batch's handlers.
const parkMax = time.Second

// A parked slot. Under a light load both receives long-poll, so a
// handler that finishes finds none about to go out: its ack went alone,
// with an fsync of its own, and the receive that ended the wait took the
// next message without it. So a receive that brings messages and finds
// the queue drained (fewer than it asked for) keeps its slot until the
// handlers of its batch have returned, while the other slot's receive
// long-polls for new messages; then the slot's next receive carries their
// acks, and the server's next write covers them with its fsync. One slot
// at most is parked; it leaves at once when a receive comes back full
// (the load is back, and both slots are wanted), when the worker stops,
// or after parkMax. The acks held meanwhile wait ackHold at most, as any.
type parkedBatch struct {
	left atomic.Int32 // handlers of the batch still running
	done chan struct{}
	cut  chan struct{} // closed by wakeParked
	once sync.Once
}

// parkFor returns the batch of got messages a short receive parks its
// slot for, or nil when it does not park.
func (w *Worker) parkFor(got int) *parkedBatch {
	if got == 0 || w.noCarry.Load() || w.parked.Load() != nil {
		return nil
	}
	b := &parkedBatch{done: make(chan struct{}), cut: make(chan struct{})}
	b.left.Store(int32(got))
	if !w.parked.CompareAndSwap(nil, b) {
		return nil
	}
	return b
}

// leave notes that one handler of b returned, and reports whether it was
// the last; b may be nil. The caller closes b.done then, once the ack is
// queued and the token given back.
func (b *parkedBatch) leave() bool {
	return b != nil && b.left.Add(-1) == 0
}

// park holds the caller's slot until b's handlers have returned, the load
// is back (wakeParked), ctx ends or parkMax has passed. b may be nil.
func (w *Worker) park(ctx context.Context, b *parkedBatch) {
	if b == nil {
		return
	}
	defer w.parked.CompareAndSwap(b, nil)
	t := time.NewTimer(parkMax)
	defer t.Stop()
	select {
	case <-b.done:
	case <-b.cut:
	case <-t.C:
	case <-ctx.Done():
	}
}

// wakeParked ends the wait of a parked slot, if there is one.
func (w *Worker) wakeParked() {
	if b := w.parked.Load(); b != nil {
		b.once.Do(func() { close(b.cut) })
	}
}

// gather takes, after the one token the caller holds, the tokens of the
// handlers free now; if that is less than half of what one receive may
// ask for, and handlers are running, it waits up to w.linger
// (receiveLinger) for more. It returns the count.
func (w *Worker) gather(ctx context.Context, linger *time.Timer) int {
	most := w.opts.MaxBatch
	n := 1
	for n < most {
		select {
		case w.sem <- struct{}{}:
			n++
			continue
		default:
		}
		break
	}
	want := w.want()
	if n >= want || w.drained.Load() || w.running.Load() == 0 {
		// Enough; or the queue is drained, so that this receive will
		// long-poll whatever it asks for, and waiting for more handlers
		// would only delay the acks it carries; or no handler is running,
		// and the tokens not free are the other receive's, which come
		// back only when it does (a long-poll's, after its wait).
		return n
	}
	linger.Reset(w.linger)
	defer linger.Stop()
	for n < want {
		select {
		case w.sem <- struct{}{}:
			n++
		case <-linger.C:
			return n
		case <-ctx.Done():
			return n
		}
	}
	return n
}

// want is how many messages a receive asks for at least, unless its
// handlers are busy for longer than w.linger: half of what one may ask.
// A receive asking for fewer that comes back full says nothing of the
// load: it took what there was room for.
func (w *Worker) want() int { return max(1, min(w.opts.Concurrency, w.opts.MaxBatch)/2) }

// receiveRetry spaces out receives after failures: the wait doubles from
// 50ms to 5s while they fail, and is gone after a success.
type receiveRetry struct {
	mu      sync.Mutex // guards backoff
	backoff time.Duration
}

// done notes the outcome of a receive: a failure that retrying cannot fix
// ends the worker; another makes the next receive wait.
func (r *receiveRetry) done(w *Worker, ctx context.Context, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.backoff = 0
	case ctx.Err() != nil:
	case errors.Is(err, ErrInvalidArgument):
		w.fail(fmt.Errorf("courier: worker of %q: receive: %w", w.queue, err))
	default:
		r.backoff = min(max(2*r.backoff, 50*time.Millisecond), 5*time.Second)
		w.log.Warn("courier worker: receive failed; retrying", "err", err, "retry_in", r.backoff)
	}
}

// wait waits out the current backoff; false if ctx ended or the worker
// failed (failed is closed) meanwhile.
func (r *receiveRetry) wait(ctx context.Context, failed <-chan struct{}) bool {
	r.mu.Lock()
	d := r.backoff
	r.mu.Unlock()
	if d > 0 && !sleepCtx(ctx, d) {
		return false
	}
	select {
	case <-failed:
		return false
	default:
		return ctx.Err() == nil
	}
}
