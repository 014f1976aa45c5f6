package courier

import (
	"context"
	"errors"
	"sync"
	"time"
)

// keepLease has d's lease extended while its handler runs, each time a
// third of what is left of it has passed, so that a slow answer or two
// still leaves time. It cancels the handler's context when the lease is
// lost (ErrLeaseExpired) or the task was cancelled (ErrTaskCancelled).
// d.keep.stop stops it and waits until it has stopped.
//
// Nothing runs for d until the first third has passed: one goroutine per
// worker (watchLeases) looks over the deliveries now and then, and starts
// extending those whose time has come. Most handlers are done long
// before; a timer for each of tens of thousands of quick handlers a second
// was 3% of a burn-down's CPU.
//
// The expiry is reckoned on this machine's clock from leasedAt (see
// leaseStart) and then from just before each extend was sent, never from the
// server's lease_expires_at: the two clocks may disagree, and the local
// reckoning errs on the early side.
func (w *Worker) keepLease(ctx context.Context, d *Delivery, leasedAt time.Time) {
	k := &d.keep
	k.ctx = ctx
	k.expires = leasedAt.Add(w.opts.Visibility)
	k.due = time.Now().Add(time.Until(k.expires) / 3)
}

// leaseKeeper is keepLease's state for one delivery, kept in the Delivery.
type leaseKeeper struct {
	ctx          context.Context // the handler's
	expires, due time.Time       // set by keepLease, read-only after
	mu           sync.Mutex      // guards the fields below
	started      bool
	stopped      bool
	cancel       context.CancelFunc
	done         chan struct{}
}

// startExtending starts extending d's lease, unless that started or stopped before.
func (w *Worker) startExtending(d *Delivery) {
	k := &d.keep
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.started || k.stopped {
		return
	}
	k.started = true
	var lctx context.Context
	lctx, k.cancel = context.WithCancel(k.ctx)
	done := make(chan struct{})
	k.done = done
	go func() {
		defer close(done)
		w.extendLoop(lctx, d, k.expires)
	}()
}

// stop stops keepLease and waits until it has stopped.
func (k *leaseKeeper) stop() {
	k.mu.Lock()
	k.stopped = true
	if k.cancel != nil {
		k.cancel()
	}
	ch := k.done
	k.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// leaseWatchMax bounds how long a delivery's first extend may come after
// its time (a third of its lease): watchLeases looks every sixth of the
// visibility, and at least this often.
const leaseWatchMax = time.Second

// watchLeases starts extending the leases of deliveries whose time has
// come, until quit is closed.
func (w *Worker) watchLeases(quit <-chan struct{}) {
	defer close(w.leaseWatchDone)
	t := time.NewTicker(max(min(w.opts.Visibility/6, leaseWatchMax), time.Millisecond))
	defer t.Stop()
	var due []*Delivery
	for {
		select {
		case <-t.C:
		case <-quit:
			return
		}
		now := time.Now()
		w.mu.Lock()
		for d := range w.inflight {
			if !d.keep.due.After(now) {
				due = append(due, d)
			}
		}
		w.mu.Unlock()
		for _, d := range due {
			w.startExtending(d)
		}
		clear(due)
		due = due[:0]
	}
}

// extendLoop extends d's lease, which expires at expires, then again each
// time a third of what is left has passed, until ctx ends or the lease is
// lost.
func (w *Worker) extendLoop(ctx context.Context, d *Delivery, expires time.Time) {
	vis := w.opts.Visibility
	for {
		if time.Until(expires) <= 0 {
			d.cancel(ErrLeaseExpired) // extends kept failing: assume the worst
			return
		}
		sent := time.Now()
		_, err := w.c.Extend(ctx, w.queue, ExtendRequest{Lease: d.Lease, Visibility: vis.String()})
		err = taskCancelled(err)
		switch {
		case err == nil:
			expires = sent.Add(vis)
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrLeaseExpired), errors.Is(err, ErrTaskCancelled):
			w.log.Info("courier worker: lease lost; cancelling the handler", "id", d.ID, "err", err)
			d.cancel(err)
			return
		default:
			w.log.Warn("courier worker: extend failed; retrying", "id", d.ID, "err", err)
		}
		if !sleepCtx(ctx, time.Until(expires)/3) {
			return
		}
	}
}

// Progress reports how far the task is (0 to 1), with a note for people;
// it also extends the lease. It fails for a message that is not a task. If
// the task was cancelled meanwhile, it cancels the handler's context and
// returns an error matching ErrTaskCancelled: the handler should return.
func (d *Delivery) Progress(ctx context.Context, progress float64, msg string) error {
	if d.c == nil {
		return errors.New("courier: progress of a delivery made outside a worker")
	}
	_, err := d.c.Progress(ctx, d.ID, ProgressRequest{Lease: d.Lease, Progress: progress, Message: msg,
		Visibility: d.visibility.String()})
	if errors.Is(err, ErrTaskCancelled) || errors.Is(err, ErrLeaseExpired) {
		d.cancel(err)
	}
	return err
}
