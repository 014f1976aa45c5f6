package httpapi

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/courierhq/courier/internal/metrics"
)

// FuzzRoute sends requests of any method to any path, without a body,
// through the whole handler (routing, CORS, the metrics' status recorder,
// recovery): no panic, never a 5xx, a JSON error for every refusal, and
// the request counted under a registered route or "unmatched", so that no
// client can grow the metrics' route label.
func FuzzRoute(f *testing.F) {
	for _, s := range [][2]string{{"GET", "/healthz"}, {"POST", "/v1/queues/q/receive"}, {"DELETE", "/v1/queues/q/messages"},
		{"GET", "/v1/tasks/x/events"}, {"OPTIONS", "/v1/queues"}, {"GET", "//v1/../metrics"}, {"PUT", "/v1/queues/a%2Fb"}} {
		f.Add(s[0], s[1])
	}
	m := metrics.New(metrics.Options{})
	fx := setupWith(f, Options{Metrics: m})
	a := fx.h.(*api)
	known := map[string]bool{metrics.Unmatched: true}
	for _, p := range a.patterns {
		known[p] = true
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		u, err := url.Parse(path)
		if err != nil || method == "" || strings.ContainsAny(method, " \t\r\n") {
			return // net/http refuses such a request line before any handler runs
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Method, r.URL, r.RequestURI = method, u, path
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %q: status %d: %s", method, path, w.Code, w.Body)
		}
		if w.Code >= 400 && !strings.HasPrefix(w.Body.String(), `{"error":`) {
			t.Fatalf("%s %q: status %d without a JSON error: %q", method, path, w.Code, w.Body)
		}
		if _, pattern := a.mux.Handler(r); pattern != "" && !known[pattern] {
			t.Fatalf("%s %q: counted under %q, not a registered route", method, path, pattern)
		}
	})
}
