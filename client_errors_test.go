package courier_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/courierhq/courier"
)

// TestErrorIs checks every code against every sentinel: a code matches its
// own sentinel and its status's broader one, and nothing else.
func TestErrorIs(t *testing.T) {
	t.Parallel()
	all := []error{courier.ErrInvalidArgument, courier.ErrUnauthenticated, courier.ErrPermissionDenied,
		courier.ErrNotFound, courier.ErrQueueNotFound, courier.ErrTaskNotFound, courier.ErrConflict,
		courier.ErrLeaseExpired, courier.ErrTooLarge, courier.ErrRateLimited, courier.ErrQueueFull,
		courier.ErrUnavailable, courier.ErrInternal}
	want := map[string][]error{
		courier.CodeInvalidArgument:  {courier.ErrInvalidArgument},
		courier.CodeUnauthenticated:  {courier.ErrUnauthenticated},
		courier.CodePermissionDenied: {courier.ErrPermissionDenied},
		courier.CodeNotFound:         {courier.ErrNotFound},
		courier.CodeQueueNotFound:    {courier.ErrQueueNotFound, courier.ErrNotFound},
		courier.CodeTaskNotFound:     {courier.ErrTaskNotFound, courier.ErrNotFound},
		courier.CodeConflict:         {courier.ErrConflict},
		courier.CodeLeaseExpired:     {courier.ErrLeaseExpired, courier.ErrConflict},
		courier.CodeTooLarge:         {courier.ErrTooLarge},
		courier.CodeRateLimited:      {courier.ErrRateLimited},
		courier.CodeQueueFull:        {courier.ErrQueueFull, courier.ErrRateLimited},
		courier.CodeUnavailable:      {courier.ErrUnavailable},
		courier.CodeInternal:         {courier.ErrInternal},
		courier.CodeMethodNotAllowed: nil,
		"some_future_code":           nil,
	}
	for code, matches := range want {
		var err error = &courier.Error{Code: code, Message: "m"}
		for _, s := range all {
			if got, want := errors.Is(err, s), contains(matches, s); got != want {
				t.Errorf("errors.Is(%s, %v) = %v, want %v", code, s, got, want)
			}
		}
	}
}

func contains(errs []error, target error) bool {
	for _, e := range errs {
		if e == target {
			return true
		}
	}
	return false
}

// TestErrorAnswers covers answers that are not the API's error body, as a
// proxy or load balancer in front of the server would give them.
func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		is         error
		code, text string
		retryAfter time.Duration
	}{
		{name: "api body", status: 429, header: map[string]string{"Retry-After": "3"},
			body: `{"error":{"code":"queue_full","message":"queue \"q\" is full"}}`,
			is:   courier.ErrRateLimited, code: "queue_full", text: `queue "q" is full (queue_full)`, retryAfter: 3 * time.Second},
		{name: "plain 503", status: 503, header: map[string]string{"Retry-After": "7"}, body: "upstream down\n",
			is: courier.ErrUnavailable, code: "unavailable", text: "upstream down (unavailable)", retryAfter: 7 * time.Second},
		{name: "gateway html", status: 502, body: "<html>\x00</html>",
			is: courier.ErrUnavailable, code: "unavailable", text: "Bad Gateway (unavailable)"},
		{name: "unknown status", status: 418, body: "",
			code: "", text: "I'm a teapot (HTTP 418)"},
		{name: "not json 404", status: 404, body: "404 page not found",
			is: courier.ErrNotFound, code: "not_found", text: "404 page not found (not_found)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c := courier.NewClient(srv.URL)
			defer c.CloseIdleConnections()

			_, err := c.ListQueues(t.Context())
			var e *courier.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %#v, want an *Error", err)
			}
			if e.Status != tc.status || e.Code != tc.code || e.Error() != tc.text || e.RetryAfter != tc.retryAfter {
				t.Errorf("got status %d code %q text %q retry %v; want %d %q %q %v",
					e.Status, e.Code, e.Error(), e.RetryAfter, tc.status, tc.code, tc.text, tc.retryAfter)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
		})
	}
}

// TestRequestShape checks what the client puts on the wire: method, path,
// headers, body.
func TestRequestShape(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, auth, ctype string
		body                      map[string]any
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{method: r.Method, path: r.URL.EscapedPath(), auth: r.Header.Get("Authorization"), ctype: r.Header.Get("Content-Type")}
		_ = json.NewDecoder(r.Body).Decode(&s.body)
		got <- s
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"m1"}`))
	}))
	defer srv.Close()
	c := courier.NewClient(srv.URL+"/", courier.WithToken("s3cret"), courier.WithHTTPClient(srv.Client()))

	id, err := c.Send(t.Context(), "a.b-c_d", courier.NewMessage{Body: json.RawMessage(`{"x":1}`), Delay: "5s"})
	if err != nil || id != "m1" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	s := <-got
	if s.method != "POST" || s.path != "/v1/queues/a.b-c_d/messages" || s.auth != "Bearer s3cret" || s.ctype != "application/json" {
		t.Errorf("request %+v", s)
	}
	if s.body["delay"] != "5s" || s.body["body"] == nil || len(s.body) != 2 {
		t.Errorf("request body %v, want body and delay only", s.body)
	}
}
