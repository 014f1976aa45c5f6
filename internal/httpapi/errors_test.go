package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

// TestErrorTable: each domain error, however wrapped, answers its status,
// code and Retry-After, and no internal error text reaches the client.
func TestErrorTable(t *testing.T) {
	t.Parallel()
	const secret = "/var/lib/courier/000123.sst: input/output error"
	cases := []struct {
		err        error
		status     int
		code       string
		retryAfter string
		msg        string
	}{
		{fmt.Errorf("%w: priority is odd", broker.ErrInvalid), 400, courier.CodeInvalidArgument, "", "priority is odd"},
		{fmt.Errorf("%w: message is 9 bytes", broker.ErrTooLarge), 413, courier.CodeTooLarge, "", "message is 9 bytes"},
		{fmt.Errorf("send: %w (%s)", store.ErrQueueNotFound, secret), 404, courier.CodeQueueNotFound, "", `queue "q" does not exist`},
		{fmt.Errorf("ack: %w (%s)", store.ErrLeaseExpired, secret), 409, courier.CodeLeaseExpired, "", "lease"},
		{fmt.Errorf("ack: %w (%s)", store.ErrInvalidLease, secret), 400, courier.CodeInvalidArgument, "", "lease"},
		{fmt.Errorf("send: %w (%s)", store.ErrNoSpace, secret), 503, courier.CodeUnavailable, "30", "disk space"},
		{fmt.Errorf("send: %w (%s)", store.ErrClosed, secret), 503, courier.CodeUnavailable, "1", "shutting down"},
		{fmt.Errorf("send: %w (%s)", store.ErrOutcomeUnknown, secret), 503, courier.CodeUnavailable, "1", "outcome is unknown"},
		{fmt.Errorf("send: %w (%s)", store.ErrUnavailable, secret), 503, courier.CodeUnavailable, "5", "cannot be reached"},
		{fmt.Errorf("send: %w", context.DeadlineExceeded), 503, courier.CodeUnavailable, "1", "too long"},
		{fmt.Errorf("send: %w", context.Canceled), 503, courier.CodeUnavailable, "1", "shutting down"},
		{errors.New(secret), 500, courier.CodeInternal, "", "internal error"},
	}
	for _, c := range cases {
		t.Run(c.err.Error(), func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.st.set(c.err, false)
			w := f.do("POST", sendURL, `{"body":1}`)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d; %s", w.Code, c.status, w.Body)
			}
			if got := w.Header().Get("Retry-After"); got != c.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, c.retryAfter)
			}
			if strings.Contains(w.Body.String(), "sst") {
				t.Errorf("internal error text leaked: %s", w.Body)
			}
			e := errorOf(t, w)
			if e.Code != c.code || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("error %+v, want %s with %q", e, c.code, c.msg)
			}
		})
	}
}

// TestPanicIsJSON500: the recover backstop answers 500 JSON and the server
// goes on serving.
func TestPanicIsJSON500(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.st.set(nil, true)
	w := f.do("POST", sendURL, `{"body":1}`)
	if w.Code != 500 || errorOf(t, w).Code != courier.CodeInternal {
		t.Fatalf("panic answered %d %s", w.Code, w.Body)
	}
	f.st.set(nil, false)
	f.must("POST", sendURL, `{"body":1}`, 201, nil)
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/nope", 404, courier.CodeNotFound, ""},
		{"GET", "/v1/queues/q/messages/x", 404, courier.CodeNotFound, ""},
		{"GET", "/v1/queues/q/messages", 405, courier.CodeMethodNotAllowed, "POST"},
		{"POST", "/v1/queues", 405, courier.CodeMethodNotAllowed, "GET, HEAD"},
		{"PATCH", "/v1/queues/q", 405, courier.CodeMethodNotAllowed, "DELETE, GET, HEAD, PUT"},
	} {
		w := f.do(c.method, c.path, "")
		if w.Code != c.status || w.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want %d %q", c.method, c.path, w.Code, w.Header().Get("Allow"), c.status, c.allow)
			continue
		}
		if e := errorOf(t, w); e.Code != c.code {
			t.Errorf("%s %s: code %s, want %s", c.method, c.path, e.Code, c.code)
		}
	}
	// A path the mux cleans is redirected, not refused.
	if w := f.do("GET", "/v1//queues", ""); w.Code/100 != 3 || w.Header().Get("Location") != "/v1/queues" {
		t.Errorf("unclean path: %d %v", w.Code, w.Header())
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var h courier.Health
	f.must("GET", "/healthz", "", 200, &h)
	f.must("GET", "/readyz", "", 200, &h)
	if h.Status != "ok" {
		t.Fatalf("readyz: %+v", h)
	}
	f.st.set(store.ErrClosed, false)
	w := f.do("GET", "/readyz", "")
	if w.Code != 503 || errorOf(t, w).Code != courier.CodeUnavailable {
		t.Fatalf("readyz on a closed store: %d %s", w.Code, w.Body)
	}
	f.must("GET", "/healthz", "", 200, nil)
}
