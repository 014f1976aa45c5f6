package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

// errorClass is one row of the error table: the domain error, the status and
// code it answers, and the message the client sees.
type errorClass struct {
	err    error
	status int
	code   string
	// message says what went wrong without internal detail. The request gives
	// it the queue name; err is the full error (used only where its text is
	// written for users, as the broker's ErrInvalid and ErrTooLarge are).
	message    func(r *http.Request, err error) string
	retryAfter string // seconds, for a 503 the client should retry
}

// errorTable is the one mapping of domain errors to HTTP answers, checked in
// order with errors.Is. An error in none of the rows is a 500 internal.
var errorTable = []errorClass{
	{broker.ErrInvalid, http.StatusBadRequest, courier.CodeInvalidArgument, errorText, ""},
	{broker.ErrTooLarge, http.StatusRequestEntityTooLarge, courier.CodeTooLarge, errorText, ""},
	{store.ErrQueueNotFound, http.StatusNotFound, courier.CodeQueueNotFound, queueNotFound, ""},
	{store.ErrTaskNotFound, http.StatusNotFound, courier.CodeTaskNotFound, taskNotFound, ""},
	// A running task whose cancel was requested, on its worker's next extend
	// or progress report (which end it). A code of its own is not needed:
	// lease_expired is the other 409 of those calls, so conflict is unambiguous.
	{store.ErrTaskCancelled, http.StatusConflict, courier.CodeConflict,
		fixed("the task was cancelled: stop working on it (its message is gone, and no ack is needed)"), ""},
	{store.ErrLeaseExpired, http.StatusConflict, courier.CodeLeaseExpired,
		fixed("the lease has expired or is no longer current: the message may have been handed to another consumer"), ""},
	{store.ErrInvalidLease, http.StatusBadRequest, courier.CodeInvalidArgument,
		fixed("lease is not a lease token this server issued"), ""},
	{store.ErrNoSpace, http.StatusServiceUnavailable, courier.CodeUnavailable,
		fixed("the server is low on disk space and accepts no new messages; retry later"), "30"},
	{store.ErrFailed, http.StatusServiceUnavailable, courier.CodeUnavailable,
		fixed("the server's store failed a write and must be restarted; retry later"), "30"},
	// The database of a cluster lost its connection while committing: the
	// change may have been made or not, and the answer must not say it
	// failed. 503 tells the client to retry; the message says a retry may
	// repeat the change (a send with a dedup_key is not stored twice).
	{store.ErrOutcomeUnknown, http.StatusServiceUnavailable, courier.CodeUnavailable,
		fixed("the outcome is unknown: the store lost its connection while committing, so the change may or may not have been made; retry (a send with a dedup_key is not stored twice)"), "1"},
	{store.ErrUnavailable, http.StatusServiceUnavailable, courier.CodeUnavailable,
		fixed("the store cannot be reached; nothing was changed; retry later"), "5"},
	{store.ErrClosed, http.StatusServiceUnavailable, courier.CodeUnavailable,
		fixed("the server is shutting down; retry later"), "1"},
	// A deadline of the server's own (the client's would have cancelled).
	{context.DeadlineExceeded, http.StatusServiceUnavailable, courier.CodeUnavailable,
		fixed("the request took too long; retry later"), "1"},
	// Cancelled while the client is still there: the server is stopping.
	{context.Canceled, http.StatusServiceUnavailable, courier.CodeUnavailable,
		fixed("the server is shutting down; retry later"), "1"},
}

func errorText(_ *http.Request, err error) string { return err.Error() }

func queueNotFound(r *http.Request, _ error) string {
	return fmt.Sprintf("queue %q does not exist", r.PathValue("queue"))
}

func taskNotFound(r *http.Request, _ error) string {
	return fmt.Sprintf("task %q does not exist, or its result_ttl has passed", r.PathValue("id"))
}

func fixed(msg string) func(*http.Request, error) string {
	return func(*http.Request, error) string { return msg }
}

// classify finds the row of err; ok is false for an unexpected error.
func classify(err error) (c errorClass, ok bool) {
	for _, c := range errorTable {
		if errors.Is(err, c.err) {
			return c, true
		}
	}
	return errorClass{}, false
}

// writeError answers err: an error of this package or of the table gets its
// status and code; anything else is logged here, once, and answers a generic 500.
//
// A cancelled request still gets an answer (503 by the table), although its
// client has usually gone: writing to a closed connection is harmless, while
// writing nothing makes net/http send "200 OK" with an empty body, and the
// cancellation may be the server's own (Stop cancels every request's
// context), whose client is still there and must not read a failure as success.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeErrorBody(w, ae.status, ae.code, ae.msg)
		return
	}
	c, ok := classify(err)
	if !ok {
		a.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		writeErrorBody(w, http.StatusInternalServerError, courier.CodeInternal, "internal error")
		return
	}
	if c.retryAfter != "" {
		w.Header().Set("Retry-After", c.retryAfter)
	}
	writeErrorBody(w, c.status, c.code, c.message(r, err))
}

// leaseFailure describes the error of one lease of a batch ack the way a
// single ack would answer it.
func leaseFailure(r *http.Request, lease string, err error) (courier.AckFailure, bool) {
	c, ok := classify(err)
	if !ok {
		return courier.AckFailure{}, false
	}
	return courier.AckFailure{Lease: lease, Code: c.code, Message: c.message(r, err)}, true
}
