package courier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// maxErrorText bounds the error text of a nack or terminate: the server
// keeps at most this much (a panic's stack is cut to fit).
const maxErrorText = 4096

// dispatch starts a handler for m, which holds one of w.sem's tokens.
func (w *Worker) dispatch(m *Message, leasedAt time.Time, b *parkedBatch) {
	p := w.prepare(m, leasedAt, b)
	w.running.Add(1)
	go w.process(p.ctx, p.d)
}

// prepare makes m's delivery, counted among the handlers Stop waits for,
// and keeps its lease alive from now until its handler returns.
func (w *Worker) prepare(m *Message, leasedAt time.Time, b *parkedBatch) prepared {
	ctx, cancel := context.WithCancelCause(w.base)
	d := &Delivery{Message: *m, queue: w.queue, c: w.c, visibility: w.opts.Visibility, cancel: cancel, batch: b}
	w.keepLease(ctx, d, leasedAt) // before watchLeases may see d
	w.mu.Lock()
	w.inflight[d] = struct{}{}
	w.mu.Unlock()
	w.handlers.Add(1)
	return prepared{ctx, d}
}

// process runs the handler of d, whose lease is kept alive meanwhile, and
// settles d by the handler's outcome. A success goes to the acks: then the
// ack's outcome, not this goroutine, finishes d (ackDone), and the
// goroutine ends without waiting for it. Waking tens of thousands of
// goroutines a second only to hear "acked" left dozens of them runnable
// at every moment of a burn-down, ahead of the receives and the server.
func (w *Worker) process(ctx context.Context, d *Delivery) {
	acking := false
	defer func() {
		if !acking {
			w.finish(d)
		}
	}()
	start := time.Now()
	err := w.call(ctx, d)
	average(&w.pre.handler, time.Since(start))
	d.keep.stop()
	claimed := d.claim() // false: released by Stop
	// A success's ack is queued before the token goes back, so that the
	// receive the token lets start finds it and carries it.
	last := d.batch.leave()
	acking = claimed && err == nil && ctx.Err() == nil && w.held.add(d, w.holdAcks(d, last))
	w.handOn() // the handler is done: another may start while this one settles
	if last {
		close(d.batch.done) // the parked slot may go, and find the ack and the token
	}
	if !claimed || acking {
		return
	}
	acking = w.settle(ctx, d, err)
}

// finish ends d's time in the worker: d is settled, or given up on, and
// no longer counts among the handlers Stop waits for.
func (w *Worker) finish(d *Delivery) {
	d.cancel(nil)
	w.mu.Lock()
	delete(w.inflight, d)
	w.mu.Unlock()
	w.handlers.Done()
}

// call runs the handler, turning a panic into an error.
func (w *Worker) call(ctx context.Context, d *Delivery) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v\n\n%s", v, debug.Stack())
		}
	}()
	return w.h.HandleDelivery(ctx, d)
}

// settle acts on the handler's outcome: ack, retry, snooze, terminate or
// nack. It reports whether d went to the ackers, whose outcome finishes it.
func (w *Worker) settle(ctx context.Context, d *Delivery, err error) bool {
	if ctx.Err() != nil {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, ErrLeaseExpired), errors.Is(cause, ErrTaskCancelled):
			// Nothing to settle: the message is no longer ours.
			w.log.Info("courier worker: handler ended without its lease", "id", d.ID, "cause", cause, "err", err)
			return false
		case errors.Is(cause, ErrWorkerStopped) && err != nil:
			rctx, cancel := w.settleContext()
			defer cancel()
			w.release(rctx, d)
			return false
		}
	}
	if err == nil {
		return w.ack(d)
	}
	// A context for the calls made here alone: acks go out in batches, and
	// a timer for each of thousands of acks a second was a cost of its own.
	sctx, cancel := w.settleContext()
	defer cancel()
	var (
		retry  *RetryAfterError
		snooze *SnoozeError
		serr   error
	)
	switch {
	case errors.As(err, &retry):
		_, serr = w.c.Nack(sctx, w.queue, NackRequest{Lease: d.Lease, Delay: retry.Delay.String(), Error: errorText(err)})
	case errors.As(err, &snooze):
		delay := snooze.Delay.String()
		serr = w.handBack(sctx, d, delay, func() error {
			_, nerr := w.c.Nack(sctx, w.queue, NackRequest{Lease: d.Lease, Delay: delay, Error: errorText(err)})
			return nerr
		})
	case errors.Is(err, ErrTerminate):
		serr = w.c.Terminate(sctx, w.queue, d.Lease, errorText(err))
	default:
		_, serr = w.c.Nack(sctx, w.queue, NackRequest{Lease: d.Lease, Error: errorText(err)})
	}
	w.settled(d, err, serr)
	return false
}

// ack hands d to the ackers, whose outcome finishes it; false if they are
// gone (Stop gave up on this handler). A send into the buffered acks can
// still win after the ackers have ended, and no acker would take it: then
// whoever sees them gone drains what is left (dropAcks), so that every
// delivery is finished once.
func (w *Worker) ack(d *Delivery) bool {
	select {
	case w.acks <- d:
	case <-w.ackersGone:
		w.settled(d, nil, ErrWorkerStopped)
		return false
	}
	select {
	case <-w.ackersGone:
		w.dropAcks()
	default: // Stop drains after it closes ackersGone
	}
	return true
}

// dropAcks finishes, unacked, the deliveries left in w.acks once the
// ackers are gone: their messages come back after their leases expire.
func (w *Worker) dropAcks() {
	for {
		select {
		case d := <-w.acks:
			w.settled(d, nil, ErrWorkerStopped)
			w.finish(d)
		default:
			return
		}
	}
}

// ackDone takes the outcome of d's ack and finishes d. A result over the
// server's limit would be refused again: the message is terminated with
// that as its error instead, on a goroutine of its own, as the outcome
// comes to a receive or an acker that must not wait for another call.
func (w *Worker) ackDone(d *Delivery, err error) {
	if !errors.Is(err, ErrTooLarge) {
		w.settled(d, nil, err)
		w.finish(d)
		return
	}
	go func() {
		defer w.finish(d)
		herr := fmt.Errorf("the result of %d bytes is too large for the server: %w", len(d.Result()), err)
		ctx, cancel := w.settleContext()
		defer cancel()
		w.settled(d, herr, w.c.Terminate(ctx, w.queue, d.Lease, errorText(herr)))
	}()
}

// settled logs a settling call that failed.
func (w *Worker) settled(d *Delivery, err, serr error) {
	if serr != nil {
		w.log.Warn("courier worker: could not settle a message", "id", d.ID, "handler_err", err, "err", serr)
	}
}

// settleContext bounds a settling call: past the visibility timeout the
// lease is gone anyway.
func (w *Worker) settleContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(w.base, w.opts.Visibility)
}

// release hands d back for another delivery after ReleaseDelay: its
// handler ran, so the attempt counts, as any nack's.
func (w *Worker) release(ctx context.Context, d *Delivery) {
	if err := w.releaseCounted(ctx, d); err != nil {
		w.log.Warn("courier worker: could not release a message", "id", d.ID, "err", err)
	}
}

func (w *Worker) releaseCounted(ctx context.Context, d *Delivery) error {
	_, err := w.c.Nack(ctx, w.queue, NackRequest{Lease: d.Lease, Delay: w.opts.ReleaseDelay.String(),
		Error: "released by a stopping worker"})
	return err
}

// giveBack hands back d, which no handler has seen (prefetched, or
// received as Stop began): ready again at once, for any worker, and its
// attempt is not counted, so restarts cannot use up a message's attempts
// unhandled. Against a server from before "release" it is released as a
// handler's is, counted and after ReleaseDelay.
func (w *Worker) giveBack(ctx context.Context, d *Delivery) {
	if err := w.handBack(ctx, d, "", func() error { return w.releaseCounted(ctx, d) }); err != nil {
		w.log.Warn("courier worker: could not release a message", "id", d.ID, "err", err)
	}
}

// handBack releases d after delay ("": at once), its attempt not counted.
// A server from before "release" refuses the field (400 naming it): then,
// and for every hand-back of this worker from then on, counted is called
// instead, a nack that counts the attempt.
func (w *Worker) handBack(ctx context.Context, d *Delivery, delay string, counted func() error) error {
	if w.noRelease.Load() {
		return counted()
	}
	_, err := w.c.Nack(ctx, w.queue, NackRequest{Lease: d.Lease, Delay: delay, Release: true})
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Code == CodeInvalidArgument && strings.Contains(apiErr.Message, `"release"`) {
		if !w.noRelease.Swap(true) {
			w.log.Warn("courier worker: the server does not know release; messages handed back unhandled or snoozed count an attempt", "err", err)
		}
		return counted()
	}
	return err
}

// releasesAtOnce bounds the releases a stopping worker has out at a time:
// it may hand back hundreds of messages at once (those prefetched, up to
// MaxPrefetch; a receive's, up to MaxBatch; the running handlers', up to
// Concurrency), and a request each at the same moment would outnumber
// the client's idle connections and open as many new ones.
const releasesAtOnce = 32

// releaseEach calls release(i) for each i below n, on goroutines, at most
// releasesAtOnce at a time, and returns once every call has.
func releaseEach(n int, release func(i int)) {
	var wg sync.WaitGroup
	out := make(chan struct{}, releasesAtOnce)
	for i := range n {
		out <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-out }()
			release(i)
		}()
	}
	wg.Wait()
}

// errorText is err's text as a nack carries it: cut to maxErrorText bytes,
// and never empty.
func errorText(err error) string {
	s := err.Error()
	if s == "" {
		s = fmt.Sprintf("%T", err)
	}
	if len(s) <= maxErrorText {
		return s
	}
	n := maxErrorText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ackLoop acknowledges successful deliveries in batches: it takes one, and
// every other that is waiting (gatherAcks), and acks them in one call.
// While a call is out, new deliveries gather for the next. Told to quit,
// it acks what is queued and ends.
func (w *Worker) ackLoop() {
	defer w.ackers.Done()
	batch := make([]*Delivery, 0, maxReceive)
	for {
		var d *Delivery
		select {
		case d = <-w.acks:
		case <-w.ackQuit:
			select {
			case d = <-w.acks:
			default:
				return
			}
		}
		batch = append(batch[:0], d)
		turn := w.gatherAcks(&batch)
		w.ackBatch(batch)
		if turn {
			<-w.ackTurn
		}
	}
}

// gatherAcks adds to batch the deliveries waiting, up to a full batch;
// then, while the other acker's call is out and batch is smaller than
// ackAlongside, those that come until that call ends. It reports whether
// it took the turn, to give back once its call is done.
func (w *Worker) gatherAcks(batch *[]*Delivery) bool {
	for len(*batch) < maxReceive {
		select {
		case d := <-w.acks:
			*batch = append(*batch, d)
			continue
		default:
		}
		break
	}
	for len(*batch) < min(ackAlongside, maxReceive) {
		select {
		case w.ackTurn <- struct{}{}:
			return true
		case d := <-w.acks:
			*batch = append(*batch, d)
		case <-w.ackQuit:
			return false
		}
	}
	return false
}

// ackBatch acknowledges batch, with the results its handlers set, and
// tells each delivery the outcome of its ack. A batch that the server
// refuses as too large (a result over its limit) is acked one by one, so
// that only the deliveries at fault fail.
func (w *Worker) ackBatch(batch []*Delivery) {
	ctx, cancel := w.settleContext()
	defer cancel()
	req := ackRequest(batch)
	res, err := w.c.ackResults(ctx, w.queue, req.Leases, req.Results)
	if errors.Is(err, ErrTooLarge) && len(batch) > 1 {
		for _, d := range batch {
			w.ackBatch([]*Delivery{d})
		}
		return
	}
	w.ackOutcomes(batch, res, err)
}

// ackRequest is the batch ack of batch, with the results its handlers set.
func ackRequest(batch []*Delivery) *AckRequest {
	leases := make([]string, len(batch))
	var results []json.RawMessage
	for i, d := range batch {
		leases[i] = d.Lease
		if r := d.Result(); r != nil {
			if results == nil {
				results = make([]json.RawMessage, len(batch))
			}
			results[i] = r
		}
	}
	for i := range results {
		if results[i] == nil {
			results[i] = json.RawMessage("null") // a JSON array has no holes
		}
	}
	return &AckRequest{Leases: leases, Results: results}
}

// ackOutcomes finishes each delivery of batch with the outcome of its ack:
// its failure in res, or err, the call's.
func (w *Worker) ackOutcomes(batch []*Delivery, res AckResult, err error) {
	failed := make(map[string]AckFailure, len(res.Failed))
	for _, f := range res.Failed {
		failed[f.Lease] = f
	}
	for _, d := range batch {
		derr := err
		if f, ok := failed[d.Lease]; ok {
			derr = &Error{Status: codeStatus(f.Code), Code: f.Code, Message: f.Message}
		}
		w.ackDone(d, derr)
	}
}
