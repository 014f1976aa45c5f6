package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Unmatched is the route label of requests no route serves: unknown
// paths, methods a path does not allow, CORS preflights.
const Unmatched = "unmatched"

// Writer records the status of an answer for the request's metrics; the
// handler of the request writes through it. Unwrap lets
// http.ResponseController reach the connection's writer (flushes and
// deadlines of event streams).
type Writer struct {
	http.ResponseWriter
	route   *route
	start   time.Time
	status  int
	aborted bool
}

// route holds the series of one route, resolved once: a request then
// reads two maps, not a hash of its labels into the vectors' maps.
type route struct {
	name     string
	requests *prometheus.CounterVec
	duration prometheus.Observer
	codes    sync.Map // status label → prometheus.Counter
}

func (r *route) counter(code string) prometheus.Counter {
	if c, ok := r.codes.Load(code); ok {
		return c.(prometheus.Counter)
	}
	c := r.requests.WithLabelValues(r.name, code)
	r.codes.Store(code, c)
	return c
}

// Begin starts measuring a request to route (a pattern given to Routes,
// or Unmatched); Done, deferred, records it.
func (m *Metrics) Begin(w http.ResponseWriter, name string) *Writer {
	r := m.routes[name]
	if r == nil {
		r = m.newRoute(name) // not one of Routes: a test's, say
	}
	return &Writer{ResponseWriter: w, route: r, start: time.Now()}
}

func (m *Metrics) newRoute(name string) *route {
	return &route{name: name, requests: m.requests, duration: m.duration.WithLabelValues(name)}
}

// WriteHeader records the first status written.
func (w *Writer) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Status is the status written so far; 0 if none.
func (w *Writer) Status() int { return w.status }

// Write records an implicit 200.
func (w *Writer) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap returns the writer this one wraps.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Abort marks the answer as cut short (net/http's ErrAbortHandler, as
// for a client that left): Done records it as "aborted".
func (w *Writer) Abort() { w.aborted = true }

// Done records the request: its route, status and duration. A handler
// that returned without writing answered 200.
func (w *Writer) Done() {
	code := "200"
	switch {
	case w.aborted:
		code = "aborted"
	case w.status != 0:
		code = statusLabel(w.status)
	}
	w.route.counter(code).Inc()
	w.route.duration.Observe(time.Since(w.start).Seconds())
}

// statusLabels are the labels of the usual statuses, made once.
var statusLabels = func() map[int]string {
	out := map[int]string{}
	for _, s := range []int{200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 409, 413, 415, 429, 499, 500, 503} {
		out[s] = strconv.Itoa(s)
	}
	return out
}()

func statusLabel(status int) string {
	if l, ok := statusLabels[status]; ok {
		return l
	}
	return strconv.Itoa(status)
}

// Routes readies the series of routes (and of Unmatched): each duration
// appears, at zero, from the first scrape rather than at its first
// request. Call it before the first Begin; only the first call counts
// (a route it does not name is resolved on each request).
func (m *Metrics) Routes(routes []string) {
	m.once.Do(func() {
		rs := make(map[string]*route, len(routes)+1)
		for _, name := range slices.Concat(routes, []string{Unmatched}) {
			rs[name] = m.newRoute(name)
		}
		m.routes = rs
	})
}
