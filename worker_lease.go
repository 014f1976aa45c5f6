package courier

import (
	"context"
	"errors"
	"sync"
	"time"
)

// keepLease extends d's lease while its handler runs, each time a third of
// what is left of it has passed, so that a slow answer or two still leaves
// time. It cancels the handler's context when the lease is lost
// (ErrLeaseExpired) or the task was cancelled (ErrTaskCancelled).
// d.keep.stop stops it and waits until it has stopped.
//
// Nothing runs until the first third has passed (a timer, not a goroutine):
// most handlers are done long before, and a goroutine and a timer each for
// thousands of quick handlers a second were a cost of their own.
//
// The expiry is reckoned on this machine's clock from leasedAt (see
// leaseStart) and then from just before each extend was sent, never from the
// server's lease_expires_at: the two clocks may disagree, and the local
// reckoning errs on the early side.
func (w *Worker) keepLease(ctx context.Context, d *Delivery, leasedAt time.Time) {
	k := &d.keep
	expires := leasedAt.Add(w.opts.Visibility)
	k.t = time.AfterFunc(time.Until(expires)/3, func() {
		k.mu.Lock()
		if k.stopped {
			k.mu.Unlock()
			return
		}
		var lctx context.Context
		lctx, k.cancel = context.WithCancel(ctx)
		done := make(chan struct{})
		k.done = done
		k.mu.Unlock()
		defer close(done)
		w.extendLoop(lctx, d, expires)
	})
}

// leaseKeeper is keepLease's state for one delivery, kept in the Delivery:
// as variables shared by closures it took five allocations per message.
type leaseKeeper struct {
	t       *time.Timer
	mu      sync.Mutex // guards stopped, cancel, done
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// stop stops keepLease and waits until it has stopped.
func (k *leaseKeeper) stop() {
	if k.t.Stop() {
		return // it never started
	}
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
