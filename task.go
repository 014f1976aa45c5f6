package courier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// ErrTaskCancelled is the error of a worker's Extend or Progress call for a
// task whose requester cancelled it: the task has ended cancelled and its
// message is gone, so the worker should stop and settle nothing. It also
// matches ErrConflict. A Worker cancels the handler's context with it.
var ErrTaskCancelled = errors.New("courier: task cancelled")

// taskCancelled marks the 409 conflict that the server answers a worker of a
// cancelled task. The server gives it the generic code: the other 409 of
// those calls is lease_expired, so conflict alone is unambiguous there.
func taskCancelled(err error) error {
	if errors.Is(err, ErrConflict) && !errors.Is(err, ErrLeaseExpired) {
		return fmt.Errorf("%w: %w", ErrTaskCancelled, err)
	}
	return err
}

// taskPath is the path of a task's resource, or of one of its actions.
func taskPath(id string, action ...string) (string, error) {
	if id == "" {
		return "", invalidArgument("task id is empty")
	}
	p := "/v1/tasks/" + url.PathEscape(id)
	for _, a := range action {
		p += "/" + a
	}
	return p, nil
}

// Submit hands a task to queue: a message (t.NewMessage) whose requester
// wants to hear back. It returns once the task is stored, with a Future of
// its outcome. A worker receives the task like any message and finishes it
// with an ack carrying its result (a Worker does: see Delivery.SetResult).
func (c *Client) Submit(ctx context.Context, queue string, t SubmitTask) (*Future, error) {
	p, err := queuePath(queue, "tasks")
	if err != nil {
		return nil, err
	}
	var task Task
	if err := c.call(ctx, http.MethodPost, p, t, &task); err != nil {
		return nil, err
	}
	return &Future{c: c, id: task.ID, submitted: task}, nil
}

// SubmitBatch hands 1 to 1000 tasks to queue in one request, stored all or
// none (a task refused for its fields refuses the batch, and the error
// names its index), and returns their Futures in order. A Producer's Submit
// batches for you.
func (c *Client) SubmitBatch(ctx context.Context, queue string, ts []SubmitTask) ([]*Future, error) {
	p, err := queuePath(queue, "tasks")
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, invalidArgument("a batch submit needs at least one task")
	}
	out := TaskList{Tasks: make([]Task, 0, len(ts))}
	if err := c.call(ctx, http.MethodPost, p, SubmitBatch{Tasks: ts}, &out); err != nil {
		return nil, err
	}
	if len(out.Tasks) != len(ts) {
		return nil, fmt.Errorf("courier: submit batch: the server answered %d tasks for %d", len(out.Tasks), len(ts))
	}
	fs := make([]*Future, len(ts))
	for i, t := range out.Tasks {
		fs[i] = &Future{c: c, id: t.ID, submitted: t}
	}
	return fs, nil
}

// GetTask returns the task id. With wait > 0 (at most 60s) the server holds
// the answer until the task has finished or the wait has passed, and then
// answers the task as it is; with 0 it answers at once. A task whose
// result_ttl has passed is gone: ErrTaskNotFound.
func (c *Client) GetTask(ctx context.Context, id string, wait time.Duration) (Task, error) {
	var t Task
	p, err := taskPath(id)
	if err != nil {
		return t, err
	}
	if wait > 0 {
		p += "?wait=" + url.QueryEscape(wait.String())
	}
	return t, c.call(ctx, http.MethodGet, p, nil, &t)
}

// CancelTask cancels a task and returns it: a queued task ends cancelled at
// once; a running one is marked (CancelRequested) and ends cancelled when
// its worker next extends its lease or reports progress. A finished task is
// returned unchanged.
func (c *Client) CancelTask(ctx context.Context, id string) (Task, error) {
	var t Task
	p, err := taskPath(id, "cancel")
	if err != nil {
		return t, err
	}
	return t, c.call(ctx, http.MethodPost, p, nil, &t)
}

// Progress reports how far a running task is (0 to 1), with a note for
// people, on behalf of the worker that holds lease. It also extends the
// lease by r.Visibility (empty: the queue's visibility timeout). A task that
// was cancelled answers an error matching ErrTaskCancelled: stop working on
// it. A stale lease answers ErrLeaseExpired.
func (c *Client) Progress(ctx context.Context, id string, r ProgressRequest) (Task, error) {
	var t Task
	p, err := taskPath(id, "progress")
	if err != nil {
		return t, err
	}
	if r.Lease == "" {
		return t, invalidArgument("lease is empty")
	}
	return t, taskCancelled(c.call(ctx, http.MethodPost, p, r, &t))
}

// AckResult acknowledges a task's message with its result, a JSON value
// (JSONBody makes one; nil for none): the task ends succeeded with it. For a
// message that is not a task it is a plain Ack.
func (c *Client) AckResult(ctx context.Context, queue, lease string, result json.RawMessage) error {
	p, err := queuePath(queue, "ack")
	if err != nil {
		return err
	}
	if lease == "" {
		return invalidArgument("lease is empty")
	}
	return c.call(ctx, http.MethodPost, p, AckRequest{Lease: lease, Result: result}, nil)
}

// ackResults acknowledges many leases, with a result for each when results
// is not nil; like AckBatch otherwise.
func (c *Client) ackResults(ctx context.Context, queue string, leases []string, results []json.RawMessage) (AckResult, error) {
	var r AckResult
	p, err := queuePath(queue, "ack")
	if err != nil {
		return r, err
	}
	return r, c.call(ctx, http.MethodPost, p, AckRequest{Leases: leases, Results: results}, &r)
}

// Terminate dead-letters a leased message at once, whatever attempts it has
// left, with reason recorded as its error: for a message that can never be
// processed. A task ends failed with reason. (A Handler does the same by
// returning the error of the package-level Terminate.)
func (c *Client) Terminate(ctx context.Context, queue, lease, reason string) error {
	p, err := queuePath(queue, "nack")
	if err != nil {
		return err
	}
	if lease == "" {
		return invalidArgument("lease is empty")
	}
	return c.call(ctx, http.MethodPost, p, NackRequest{Lease: lease, Error: reason, Terminate: true}, nil)
}

// A Future is the outcome of a submitted task, to come.
type Future struct {
	c         *Client
	id        string
	submitted Task
}

// ID is the task's id, which GetTask, CancelTask and WatchTask take; keep
// it to await the task from elsewhere (Client.AwaitTask).
func (f *Future) ID() string { return f.id }

// Submitted is the task object as Submit's answer gave it.
func (f *Future) Submitted() Task { return f.submitted }

// Await waits for the task to finish and returns it; see Client.AwaitTask.
func (f *Future) Await(ctx context.Context) (Task, error) { return f.c.AwaitTask(ctx, f.id) }

// awaitWait is how long each long-poll of AwaitTask asks the server to hold.
const awaitWait = 30 * time.Second

// AwaitTask waits until the task id has finished (succeeded, failed or
// cancelled) and returns it: the result, or the error, is in the Task. It
// long-polls the server and survives its restarts and the network's
// hiccups: a failed call that may succeed later (the server unreachable, a
// connection reset, a 5xx, a 429) is retried with backoff until ctx ends;
// errors that retrying cannot fix (ErrTaskNotFound, say) are returned.
func (c *Client) AwaitTask(ctx context.Context, id string) (Task, error) {
	var backoff time.Duration
	for {
		t, err := c.GetTask(ctx, id, awaitWait)
		if err == nil {
			backoff = 0
			if t.State.Finished() {
				return t, nil
			}
			continue
		}
		if ctx.Err() != nil || !transient(err) {
			return t, fmt.Errorf("courier: await task %s: %w", id, err)
		}
		backoff = nextBackoff(backoff, err)
		if !sleepCtx(ctx, backoff) {
			return t, fmt.Errorf("courier: await task %s: %w (after: %v)", id, ctx.Err(), err)
		}
	}
}

// transient reports whether a failed call may succeed if made again: the
// server could not be reached or answered, or it answered a 5xx or 429.
// Errors that describe the request (4xx) are not.
func transient(err error) bool {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Retryable()
	}
	// A transport failure: refused, reset, cut short, timed out. Not any
	// *url.Error: a malformed URL or an unsupported scheme is one too.
	var ue *url.Error
	if !errors.As(err, &ue) {
		return false
	}
	var ne net.Error
	return errors.As(ue.Err, &ne) || errors.Is(ue.Err, io.EOF) || errors.Is(ue.Err, io.ErrUnexpectedEOF)
}

// nextBackoff is the wait before the next try of a transient failure:
// doubling from 50ms to 5s, or the server's Retry-After if it gave one.
func nextBackoff(prev time.Duration, err error) time.Duration {
	var ae *Error
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return min(ae.RetryAfter, time.Minute)
	}
	return min(max(2*prev, 50*time.Millisecond), 5*time.Second)
}
