package courier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// A Handler does the work a delivered message asks for. The Worker calls
// HandleDelivery once per delivery, in a goroutine of its own, and settles
// the message by what it returns:
//
//   - nil: the work is done; the message is acknowledged (with the result
//     set by Delivery.SetResult, for a task).
//   - an error from RetryAfter: the message is handed back to be delivered
//     again after that delay.
//   - an error from Snooze: the message is handed back unprocessed, to be
//     delivered again after that delay without counting the attempt.
//   - an error from Terminate, or any error matching ErrTerminate: the
//     message is dead-lettered at once, whatever attempts it has left (a task
//     ends failed with the reason). For work that can never succeed.
//   - any other error: the message is handed back with the error's text, and
//     the queue's backoff decides when it comes again; after the queue's
//     max attempts it is dead-lettered.
//
// A panic in HandleDelivery is recovered and handled like an error carrying the
// panic value and the goroutine's stack.
//
// ctx is cancelled when the worker can no longer settle the message: its
// lease was lost (the cause is ErrLeaseExpired), its task was cancelled
// (ErrTaskCancelled), or the worker's Stop ran out of time (ErrWorkerStopped).
// A handler that does long work should watch ctx. context.Cause(ctx) says why.
//
// The method is not called Handle so that Mux, itself a Handler, can
// register handlers with Handle, as net/http's ServeMux does beside ServeHTTP.
type Handler interface {
	HandleDelivery(ctx context.Context, d *Delivery) error
}

// HandlerFunc lets an ordinary function be a Handler.
type HandlerFunc func(ctx context.Context, d *Delivery) error

// HandleDelivery calls f(ctx, d).
func (f HandlerFunc) HandleDelivery(ctx context.Context, d *Delivery) error { return f(ctx, d) }

// Middleware wraps a Handler in another: to log, trace, time, or refuse
// deliveries. A Middleware may return the handler's error, or one of its own.
type Middleware func(Handler) Handler

// ErrTerminate marks an error as final: a handler that returns an error
// matching it (errors.Is) has its message dead-lettered at once, without
// the retries it has left. Terminate makes such errors with a reason.
var ErrTerminate = errors.New("courier: terminate")

// terminateError is the error of Terminate.
type terminateError struct{ reason string }

func (e *terminateError) Error() string { return e.reason }
func (e *terminateError) Is(target error) bool {
	return target == ErrTerminate
}

// Terminate returns an error that, returned by a Handler, dead-letters the
// message at once with reason, the way a poisoned or malformed message
// should be: retrying would only fail again. A task ends failed with reason
// as its error.
func Terminate(reason string) error {
	return &terminateError{reason: reason}
}

// RetryAfterError is the error of RetryAfter. Take it apart with errors.As.
type RetryAfterError struct {
	Delay time.Duration // how long the message stays away
	Err   error         // why; its text is recorded with the nack
}

func (e *RetryAfterError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("retry after %v", e.Delay)
	}
	return fmt.Sprintf("retry after %v: %v", e.Delay, e.Err)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns an error that, returned by a Handler, hands the
// message back to be delivered again after delay rather than after the
// queue's backoff: for a rate limit or a dependency that said when to come
// back. err (may be nil) says why. The delivery still counts as an attempt.
// delay is taken within 0 and the server's longest delay, ten years.
func RetryAfter(delay time.Duration, err error) error {
	return &RetryAfterError{Delay: min(max(delay, 0), maxDelay), Err: err}
}

// maxDelay is the longest delay the server takes (a nack's, a send's):
// one longer would be refused, and the message left leased until its
// lease expired.
const maxDelay = 10 * 365 * 24 * time.Hour

// MinSnooze is the shortest snooze: a handler that snoozes a message
// every time makes it come back at most this often, not in a busy loop
// (a released message is ready again in its place, often for the same
// worker, and max_attempts does not stop snoozes).
const MinSnooze = 100 * time.Millisecond

// SnoozeError is the error of Snooze. Take it apart with errors.As.
type SnoozeError struct {
	Delay time.Duration // how long the message stays away
}

func (e *SnoozeError) Error() string { return fmt.Sprintf("snoozed for %v", e.Delay) }

// Snooze returns an error that, returned by a Handler, hands the message
// back unprocessed, to be delivered again after delay, without counting
// the attempt (a release): for a message the handler declines for now — a
// tenant over its share, a dependency closed for maintenance — which
// RetryAfter would charge an attempt, and at the last one dead-letter.
// Nothing failed, so no error is recorded; a task goes back to queued.
// delay is taken within MinSnooze and ten years. max_attempts does not
// bound snoozes: a message snoozed every time stays forever. A message of
// an ordered group holds its group while it is away, as after any nack.
// Against a server that does not know releases, a snooze is a nack after
// delay, which counts the attempt and records "snoozed for …" as its
// error. Where a handler's error matches more than one outcome, RetryAfter
// wins over Snooze, and Snooze over Terminate.
func Snooze(delay time.Duration) error {
	return &SnoozeError{Delay: min(max(delay, MinSnooze), maxDelay)}
}

// HandleJSON makes a Handler of a function of typed arguments and result:
// the message's JSON body is decoded into an A, and what fn returns is the
// task's result, encoded as JSON. A body that does not decode into an A
// terminates the message (see Terminate): it would never decode. fn's error
// steers the outcome like any Handler's.
//
//	mux.Handle("email.send", courier.HandleJSON(func(ctx context.Context, e Email) (Receipt, error) { … }))
//
// For a message that is not a task there is no result to keep: use
// struct{} as R, or anything, which is then ignored.
func HandleJSON[A, R any](fn func(ctx context.Context, args A) (R, error)) Handler {
	return HandlerFunc(func(ctx context.Context, d *Delivery) error {
		var args A
		body, err := d.BodyBytes()
		if err == nil {
			err = json.Unmarshal(body, &args)
		}
		if err != nil {
			return Terminate(fmt.Sprintf("decode body of message %s into %T: %v", d.ID, args, err))
		}
		res, err := fn(ctx, args)
		if err != nil {
			return err
		}
		if err := d.SetResult(res); err != nil {
			return Terminate(err.Error()) // the same result would fail again
		}
		return nil
	})
}
