// Package metrics is courier's Prometheus adapter: the registry behind
// GET /metrics, what it exposes, and the instrumentation of HTTP requests.
//
// Queue figures (depth by state, the oldest ready message's age, messages
// sent and acked, dead letters) are read from the broker when Prometheus
// scrapes, one listing serving the scrapes of a few seconds, so keeping
// them costs the message path nothing between listings. Requests are
// counted by route and status as they are answered: two map reads, a
// counter add, a histogram observation and one allocation per request.
// The embedded store's WAL fsync latencies, the floor of every answer,
// come from the store's own histogram. The broker's activity (deliveries,
// redeliveries and first waits, nacks by outcome, deleted queues) is
// counted as it happens, through the broker's Observer interface.
//
// Layout: metrics.go (New, the registry and the HTTP handler), queues.go
// (the queue collector), broker.go (the broker's Observer), http.go
// (request instrumentation), store.go (the WAL fsync collector).
package metrics

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/courierhq/courier/internal/store"
)

// namespace prefixes every courier metric.
const namespace = "courier"

// Options configure New.
type Options struct {
	// WALSyncs, if not nil, reports the store's WAL fsync latencies (the
	// embedded store).
	WALSyncs func() store.SyncHistogram
	// Logger receives scrape errors (a store that cannot list its queues);
	// default discards.
	Logger *slog.Logger
	// ScrapeTimeout bounds the queue listing of a scrape; default 5s.
	ScrapeTimeout time.Duration
	// QueueListEvery is how long one queue listing serves scrapes before
	// the next lists again; default 5s. Negative: every scrape lists.
	QueueListEvery time.Duration
}

// Metrics is one server's registry and instrumentation. Each server has its
// own, so that servers in one process (tests, `courier bench`) do not mix
// their figures. It is the broker's Observer (broker.go); CollectQueues adds
// the queues' figures once the broker exists.
type Metrics struct {
	reg      *prometheus.Registry
	handler  http.Handler
	timeout  time.Duration
	every    time.Duration
	once     sync.Once                // of Routes
	requests *prometheus.CounterVec   // by route and code
	duration *prometheus.HistogramVec // by route
	routes   map[string]*route        // set once by Routes
	act      *activity
}

// New returns the metrics of one server: Go runtime and process figures,
// its store's fsyncs (if reported), its HTTP requests and its broker's
// activity.
func New(o Options) *Metrics {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ScrapeTimeout <= 0 {
		o.ScrapeTimeout = 5 * time.Second
	}
	if o.QueueListEvery == 0 {
		o.QueueListEvery = 5 * time.Second
	}
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		timeout: o.ScrapeTimeout,
		every:   o.QueueListEvery,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by route (the method and path pattern; \"unmatched\" for unknown paths, methods a path does not allow and CORS preflights) and status code (\"aborted\" when the answer was cut short, as for a client that left).",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by route; a long-poll's wait and an event stream's life included.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		act: newActivity(),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration,
	)
	m.reg.MustRegister(m.act.collectors()...)
	if o.WALSyncs != nil {
		m.reg.MustRegister(newWALCollector(o.WALSyncs))
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A queue listing that fails leaves its figures out of one scrape;
		// the others are still served, and the error logged.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	})
	return m
}

// CollectQueues adds the figures of q's queues, read at each scrape. Call
// it once.
func (m *Metrics) CollectQueues(q QueueLister) {
	m.reg.MustRegister(newQueueCollector(q, m.timeout, m.every))
}

// ServeHTTP answers a scrape in the Prometheus text format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.handler.ServeHTTP(w, r)
}
