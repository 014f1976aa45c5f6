package courier

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. An *Error returned by a Client matches, with errors.Is,
// the sentinel of its code and the broader sentinel of its status, so callers
// test for what they care about:
//
//	errors.Is(err, courier.ErrLeaseExpired) // exactly this code
//	errors.Is(err, courier.ErrConflict)     // any 409, lease_expired included
//	errors.Is(err, courier.ErrNotFound)     // any 404: queue, task or other
var (
	ErrInvalidArgument  = errors.New("courier: invalid argument")
	ErrUnauthenticated  = errors.New("courier: unauthenticated")
	ErrPermissionDenied = errors.New("courier: permission denied")
	ErrNotFound         = errors.New("courier: not found")
	ErrQueueNotFound    = errors.New("courier: queue not found")
	ErrTaskNotFound     = errors.New("courier: task not found")
	ErrConflict         = errors.New("courier: conflict")
	ErrLeaseExpired     = errors.New("courier: lease expired")
	ErrTooLarge         = errors.New("courier: too large")
	ErrRateLimited      = errors.New("courier: rate limited")
	ErrQueueFull        = errors.New("courier: queue full")
	ErrUnavailable      = errors.New("courier: unavailable")
	ErrInternal         = errors.New("courier: internal error")
)

// codeInfo is one row of the code table: an API error code, the HTTP status
// it is answered with, and the sentinels it matches (most specific first).
type codeInfo struct {
	code      string
	status    int
	sentinels []error
}

// codes is the one table that maps API error codes to statuses and
// sentinels. The first row of each status is its generic code: an error
// answer without a recognizable code (a proxy's 503, say) takes it.
var codes = []codeInfo{
	{CodeInvalidArgument, http.StatusBadRequest, []error{ErrInvalidArgument}},
	{CodeUnauthenticated, http.StatusUnauthorized, []error{ErrUnauthenticated}},
	{CodePermissionDenied, http.StatusForbidden, []error{ErrPermissionDenied}},
	{CodeNotFound, http.StatusNotFound, []error{ErrNotFound}},
	{CodeQueueNotFound, http.StatusNotFound, []error{ErrQueueNotFound, ErrNotFound}},
	{CodeTaskNotFound, http.StatusNotFound, []error{ErrTaskNotFound, ErrNotFound}},
	{CodeMethodNotAllowed, http.StatusMethodNotAllowed, nil}, // the SDK and server disagree: no sentinel
	{CodeConflict, http.StatusConflict, []error{ErrConflict}},
	{CodeLeaseExpired, http.StatusConflict, []error{ErrLeaseExpired, ErrConflict}},
	{CodeTooLarge, http.StatusRequestEntityTooLarge, []error{ErrTooLarge}},
	{CodeRateLimited, http.StatusTooManyRequests, []error{ErrRateLimited}},
	{CodeQueueFull, http.StatusTooManyRequests, []error{ErrQueueFull, ErrRateLimited}},
	{CodeUnavailable, http.StatusServiceUnavailable, []error{ErrUnavailable}},
	{CodeInternal, http.StatusInternalServerError, []error{ErrInternal}},
}

func lookupCode(code string) (codeInfo, bool) {
	for _, c := range codes {
		if c.code == code {
			return c, true
		}
	}
	return codeInfo{}, false
}

// codeStatus is the HTTP status of an API error code; 0 if unknown.
func codeStatus(code string) int {
	c, _ := lookupCode(code)
	return c.status
}

// codeForStatus names the generic code of an HTTP status, for error answers
// that carry no code of their own. Gateways' 502 and 504 count as unavailable.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return CodeUnavailable
	}
	for _, c := range codes {
		if c.status == status {
			return c.code
		}
	}
	if status >= 500 {
		return CodeInternal
	}
	return ""
}

// Error is an error answer of the API: a non-2xx status with a stable code.
// Compare it with errors.Is against the sentinels (ErrLeaseExpired, …), or
// take it apart with errors.As.
type Error struct {
	// Status is the HTTP status; 0 when the SDK refused a call before sending it.
	Status int
	// Code is the API's machine-readable code, e.g. "lease_expired".
	Code string
	// Message is the server's explanation, written for people.
	Message string
	// RetryAfter is the server's Retry-After advice (429 and 503); 0 if none.
	RetryAfter time.Duration
}

// Error reads like `queue "orders" does not exist (queue_not_found)`.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if msg == "" {
		msg = "error"
	}
	if e.Code == "" {
		return fmt.Sprintf("%s (HTTP %d)", msg, e.Status)
	}
	return fmt.Sprintf("%s (%s)", msg, e.Code)
}

// Is reports whether target is a sentinel of e's code (see the code table).
func (e *Error) Is(target error) bool {
	c, ok := lookupCode(e.Code)
	if !ok {
		return false
	}
	for _, s := range c.sentinels {
		if s == target {
			return true
		}
	}
	return false
}

// Retryable reports whether the same call may succeed later unchanged: rate
// limits and unavailability pass; the other codes describe the request.
func (e *Error) Retryable() bool {
	return e.Is(ErrRateLimited) || e.Is(ErrUnavailable)
}

// invalidArgument is an error the SDK returns without calling the server,
// for a request it knows is wrong.
func invalidArgument(format string, args ...any) error {
	return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// maxRetryAfterSecs caps Retry-After advice at a day.
const maxRetryAfterSecs = 24 * 60 * 60

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		// Bounded so that a hostile header cannot overflow the Duration.
		return time.Duration(min(max(secs, 0), maxRetryAfterSecs)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfterSecs*time.Second)
	}
	return 0
}
