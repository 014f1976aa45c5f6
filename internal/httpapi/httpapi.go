// Package httpapi is courier's HTTP/JSON adapter for queues, messages and
// tasks: it serves the contract of API.md on typed routes of the standard ServeMux,
// decodes and validates requests, calls the broker, and maps the broker's and
// the store's errors to HTTP statuses and stable error codes.
//
// The package holds no semantics of its own. Range checks (priorities,
// durations, batch sizes, message sizes) are the broker's; this package only
// turns JSON into typed values, naming the field when it cannot.
//
// Layout: httpapi.go (New, the route list, middleware), respond.go (the one
// decode and respond helper), errors.go (the one error table), queues.go,
// messages.go, leases.go, tasks.go, events.go (a task's server-sent event
// stream), ops.go, one per resource, cors.go (the CORS middleware), and
// openapi.go with the embedded OpenAPI document, which a test keeps equal to
// the route list.
package httpapi

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"runtime/trace"
	"slices"
	"time"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/metrics"
)

// DefaultMaxRequestBytes is the default limit of a request body. It leaves
// room for a batch of large messages sent as base64 (which grows them by 4/3).
const DefaultMaxRequestBytes = 32 << 20

// Options configure the handler.
type Options struct {
	// Broker serves every call. Required.
	Broker *broker.Broker
	// Logger receives one record per internal error or panic; default discards.
	Logger *slog.Logger
	// MaxRequestBytes limits a request body; a larger one answers 413
	// too_large. Default (0) DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// CORSOrigins are the web origins whose pages may call the API from a
	// browser (fetch, EventSource): exact origins as browsers send them
	// ("https://app.example.com"; see CheckOrigin), or "*" for any. Default
	// (nil) none: no CORS headers are sent.
	CORSOrigins []string
	// EventHeartbeat is how long a task's event stream may be quiet before
	// it sends a comment line, so proxies keep it open. Default (0)
	// DefaultEventHeartbeat.
	EventHeartbeat time.Duration
	// EventWriteTimeout bounds each write to an event stream; a reader that
	// takes longer loses its stream (and may resume it). Default (0)
	// DefaultEventWriteTimeout.
	EventWriteTimeout time.Duration
	// Metrics is the registry GET /metrics serves, and counts every
	// request; it should collect the broker's queues and observe it.
	// Default (nil): one that collects the broker's queues, without the
	// broker's activity.
	Metrics *metrics.Metrics
}

// api is the handler's state, shared by every route.
type api struct {
	b        *broker.Broker
	log      *slog.Logger
	maxBytes int64
	origins  []string // Options.CORSOrigins
	// eventHeartbeat and eventWriteTimeout are Options.EventHeartbeat and
	// Options.EventWriteTimeout.
	eventHeartbeat, eventWriteTimeout time.Duration
	mux                               *http.ServeMux
	metrics                           *metrics.Metrics
	patterns                          []string // as registered on mux, in order; the OpenAPI test reads it
}

// handlerFunc is a route's handler. It writes a success answer itself and
// returns any error, which serve maps to an error answer in one place.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one endpoint: a method and a ServeMux path pattern.
type route struct {
	method, path string
	h            handlerFunc
}

// routes is the one list of endpoints: New registers exactly these, and the
// OpenAPI test compares the served document with exactly these.
func (a *api) routes() []route {
	return []route{
		{"GET", "/healthz", a.healthz},
		{"GET", "/readyz", a.readyz},
		{"GET", "/v1/openapi.json", a.openAPI},
		{"GET", "/metrics", a.serveMetrics},

		{"GET", "/v1/queues", a.listQueues},
		{"PUT", "/v1/queues/{queue}", a.putQueue},
		{"GET", "/v1/queues/{queue}", a.getQueue},
		{"DELETE", "/v1/queues/{queue}", a.deleteQueue},
		{"POST", "/v1/queues/{queue}/purge", a.purgeQueue},
		{"POST", "/v1/queues/{queue}/pause", a.pauseQueue},
		{"POST", "/v1/queues/{queue}/resume", a.resumeQueue},
		{"POST", "/v1/queues/{queue}/redrive", a.redrive},

		{"POST", "/v1/queues/{queue}/messages", a.send},
		{"POST", "/v1/queues/{queue}/receive", a.receive},
		{"POST", "/v1/queues/{queue}/ack", a.ack},
		{"POST", "/v1/queues/{queue}/nack", a.nack},
		{"POST", "/v1/queues/{queue}/extend", a.extend},

		{"POST", "/v1/queues/{queue}/tasks", a.submit},
		{"GET", "/v1/tasks/{id}", a.getTask},
		{"GET", "/v1/tasks/{id}/events", a.taskEvents},
		{"POST", "/v1/tasks/{id}/progress", a.progress},
		{"POST", "/v1/tasks/{id}/cancel", a.cancelTask},
	}
}

// New returns the HTTP handler of the API.
func New(o Options) http.Handler {
	return newAPI(o)
}

func newAPI(o Options) *api {
	if o.Broker == nil {
		panic("httpapi: Options.Broker is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.EventHeartbeat <= 0 {
		o.EventHeartbeat = DefaultEventHeartbeat
	}
	if o.EventWriteTimeout <= 0 {
		o.EventWriteTimeout = DefaultEventWriteTimeout
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New(metrics.Options{Logger: o.Logger})
		o.Metrics.CollectQueues(o.Broker)
	}
	a := &api{b: o.Broker, log: o.Logger, maxBytes: o.MaxRequestBytes, origins: slices.Clone(o.CORSOrigins),
		eventHeartbeat: o.EventHeartbeat, eventWriteTimeout: o.EventWriteTimeout, mux: http.NewServeMux(), metrics: o.Metrics}
	for _, rt := range a.routes() {
		p := rt.method + " " + rt.path
		a.mux.Handle(p, a.serve(p, rt.h))
		a.patterns = append(a.patterns, p)
	}
	a.metrics.Routes(a.patterns)
	return a
}

// serve adapts a handlerFunc: its error becomes the error answer.
// It runs h as a region of an execution trace named after the route, so
// that a trace (courier bench --trace, or /debug/pprof/trace of serve
// --pprof) shows each request's time in the handler; without a trace
// running the region costs nothing to speak of.
func (a *api) serve(route string, h handlerFunc) http.Handler {
	region := "http " + route
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer trace.StartRegion(r.Context(), region).End()
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// ServeHTTP counts the request in the metrics, recovers from panics, adds
// CORS headers (answering preflights), and makes the mux's own answers (404
// for an unknown path, 405 for a known path with another method) JSON like
// all others.
func (a *api) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	_, pattern := a.mux.Handler(r)
	route := pattern
	if route == "" {
		route = metrics.Unmatched
	}
	w := a.metrics.Begin(rw, route)
	defer w.Done()
	defer a.recover(w, r)
	if a.cors(w, r) {
		return
	}
	if pattern != "" {
		a.mux.ServeHTTP(w, r)
		return
	}
	// No route matched: let the mux decide what it would say (404, 405 with
	// Allow, or a redirect to a cleaned path), then say it in JSON.
	cw := &captureWriter{header: http.Header{}}
	a.mux.ServeHTTP(cw, r)
	switch cw.status {
	case http.StatusNotFound:
		writeErrorBody(w, http.StatusNotFound, courier.CodeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", cw.header.Get("Allow"))
		writeErrorBody(w, http.StatusMethodNotAllowed, courier.CodeMethodNotAllowed,
			r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+cw.header.Get("Allow"))
	case http.StatusBadRequest: // a request target the mux refuses, such as "*" with a method other than OPTIONS
		writeErrorBody(w, http.StatusBadRequest, courier.CodeInvalidArgument, "no endpoint serves the request target "+r.RequestURI)
	default:
		for k, v := range cw.header {
			if k != "Content-Type" && k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(cw.status)
	}
}

// recover is the backstop for bugs: bad input is rejected long before it can
// panic. It logs the stack and answers 500 JSON if nothing was written yet;
// otherwise it cuts the answer short (net/http's ErrAbortHandler), since an
// error appended to a 2xx already under way would read as part of it.
func (a *api) recover(w *metrics.Writer, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v != http.ErrAbortHandler { //nolint:errorlint // a sentinel value, compared as net/http does
		a.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path,
			"panic", v, "stack", string(debug.Stack()))
		if w.Status() == 0 {
			writeErrorBody(w, http.StatusInternalServerError, courier.CodeInternal, "internal error")
			return
		}
	}
	w.Abort()
	panic(http.ErrAbortHandler)
}

// captureWriter records the status and headers the mux would send and drops
// its plain-text body.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(p), nil
}

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}
