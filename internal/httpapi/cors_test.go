package httpapi

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// corsDo sends a request with an Origin and, for a preflight, the method it asks for.
func corsDo(f *fixture, method, path, origin, preflightFor string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	if preflightFor != "" {
		r.Header.Set("Access-Control-Request-Method", preflightFor)
		r.Header.Set("Access-Control-Request-Headers", "content-type, last-event-id")
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func TestCORSAllowedOrigin(t *testing.T) {
	t.Parallel()
	const app = "https://app.example.com"
	f := setupWith(t, Options{CORSOrigins: []string{"http://localhost:3000", app}})
	sub := f.submit(`{"body":1}`)
	f.must("POST", "/v1/tasks/"+sub.ID+"/cancel", "", 200, nil) // finished, so its event stream ends
	for _, path := range []string{"/v1/queues", "/v1/tasks/" + sub.ID, "/v1/tasks/" + sub.ID + "/events", "/v1/tasks/nope", "/v1/nowhere"} {
		w := corsDo(f, "GET", path, app, "")
		h := w.Header()
		if h.Get("Access-Control-Allow-Origin") != app || !slices.Contains(h.Values("Vary"), "Origin") ||
			!strings.Contains(h.Get("Access-Control-Expose-Headers"), "Location") {
			t.Errorf("GET %s from %s: %d %v", path, app, w.Code, h)
		}
	}
	// A preflight is answered 204 with what the API takes.
	w := corsDo(f, "OPTIONS", "/v1/queues/q/tasks", app, "POST")
	h := w.Header()
	if w.Code != 204 || h.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		h.Get("Access-Control-Allow-Headers") != "Content-Type, Authorization, Last-Event-ID" ||
		h.Get("Access-Control-Max-Age") == "" {
		t.Fatalf("preflight: %d %v", w.Code, h)
	}
	// A submit from the page can read Location.
	r := httptest.NewRequest("POST", tasksURL, strings.NewReader(`{"body":2}`))
	r.Header.Set("Origin", app)
	r.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != 202 || w.Header().Get("Access-Control-Allow-Origin") != app || w.Header().Get("Location") == "" {
		t.Fatalf("submit from the page: %d %v", w.Code, w.Header())
	}
}

func TestCORSOtherOrigin(t *testing.T) {
	t.Parallel()
	f := setupWith(t, Options{CORSOrigins: []string{"https://app.example.com"}})
	for _, origin := range []string{"https://evil.example.com", "https://app.example.com.evil.com", "http://app.example.com", "null", ""} {
		w := corsDo(f, "GET", "/v1/queues", origin, "")
		if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "" || !slices.Contains(w.Header().Values("Vary"), "Origin") {
			t.Errorf("GET from %q: %d %v", origin, w.Code, w.Header())
		}
		w = corsDo(f, "OPTIONS", "/v1/queues/q/messages", origin, "POST")
		if w.Code != 405 || w.Header().Get("Access-Control-Allow-Origin") != "" || w.Header().Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("preflight from %q: %d %v", origin, w.Code, w.Header())
		}
	}
	// Paths outside /v1 get nothing.
	if w := corsDo(f, "GET", "/healthz", "https://app.example.com", ""); w.Header().Get("Access-Control-Allow-Origin") != "" ||
		w.Header().Get("Vary") != "" {
		t.Fatalf("healthz: %v", w.Header())
	}
}

func TestCORSOffByDefault(t *testing.T) {
	t.Parallel()
	f := setup(t)
	w := corsDo(f, "GET", "/v1/queues", "https://app.example.com", "")
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "" || w.Header().Get("Vary") != "" {
		t.Fatalf("GET: %d %v", w.Code, w.Header())
	}
	if w := corsDo(f, "OPTIONS", "/v1/queues", "https://app.example.com", "GET"); w.Code != 405 ||
		w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
}

func TestCORSAnyOrigin(t *testing.T) {
	t.Parallel()
	f := setupWith(t, Options{CORSOrigins: []string{"*"}})
	for _, origin := range []string{"https://a.example", "http://localhost:8080"} {
		if w := corsDo(f, "GET", "/v1/queues", origin, ""); w.Header().Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("GET from %q: %v", origin, w.Header())
		}
	}
	// A request without Origin (not from a browser page) gets no CORS answer.
	if w := corsDo(f, "GET", "/v1/queues", "", ""); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET without Origin: %v", w.Header())
	}
}

func TestCheckOrigin(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"*", "https://app.example.com", "http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:3000"} {
		if err := CheckOrigin(ok); err != nil {
			t.Errorf("CheckOrigin(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "app.example.com", "https://app.example.com/", "https://app.example.com/x",
		"https://App.example.com", "ftp://example.com", "https://u@example.com", "https://example.com?x", "https://", "*.example.com"} {
		if err := CheckOrigin(bad); err == nil {
			t.Errorf("CheckOrigin(%q) accepted", bad)
		}
	}
}
