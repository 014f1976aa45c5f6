package courier

import (
	"context"
	"errors"
	"time"
)

// keepLease extends d's lease while its handler runs, each time a third of
// what is left of it has passed, so that a slow answer or two still leaves
// time. It cancels the handler's context when the lease is lost
// (ErrLeaseExpired) or the task was cancelled (ErrTaskCancelled). The
// returned func stops it and waits until it has stopped.
//
// The expiry is reckoned on this machine's clock from leasedAt (see
// leaseStart) and then from just before each extend was sent, never from the
// server's lease_expires_at: the two clocks may disagree, and the local
// reckoning errs on the early side.
func (w *Worker) keepLease(ctx context.Context, d *Delivery, leasedAt time.Time) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		vis := w.opts.Visibility
		expires := leasedAt.Add(vis)
		for {
			left := time.Until(expires)
			if left <= 0 {
				d.cancel(ErrLeaseExpired) // extends kept failing: assume the worst
				return
			}
			if !sleepCtx(ctx, left/3) {
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
		}
	}()
	return func() {
		cancel()
		<-done
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
