package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/courierhq/courier/internal/store"
)

// QueueLister is what the queue collector reads: the broker.
type QueueLister interface {
	ListQueues(ctx context.Context) ([]store.Queue, error)
	Now() time.Time
}

// queueCollector reads every queue's stats at scrape time. A listing is
// not free (on the embedded store it holds the store's write lock some
// microseconds per queue; on PostgreSQL it is queries per queue), so one
// serves every scrape for a while, and scrapes that come together share
// one.
type queueCollector struct {
	queues  QueueLister
	timeout time.Duration
	every   time.Duration

	mu     sync.Mutex // held while listing: a second scrape waits for the first's listing
	listed time.Time  // when cached (or err) was listed (wall clock); zero: never
	cached []store.Queue
	// err is the last listing's, served like cached: a failing store is
	// not asked again by each scrape that waited for the failure.
	err      error
	failures float64 // listings that failed

	messages, dead, age, paused, sent, acked, failed *prometheus.Desc
}

func newQueueCollector(q QueueLister, timeout, every time.Duration) *queueCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", name), help, labels, nil)
	}
	return &queueCollector{
		queues: q, timeout: timeout, every: every,
		messages: desc("messages", "Messages in a queue by state: ready (deliverable now, group members waiting for their turn included), delayed, in_flight (leased).", "queue", "state"),
		dead:     desc("dead_lettered_messages", "Messages dead-lettered from a queue that are still in its dead-letter queue (counted there as ready too).", "queue"),
		age:      desc("oldest_ready_age_seconds", "How long the oldest ready message of a queue has waited since it was sent; 0 when none is ready.", "queue"),
		paused:   desc("paused", "1 when a queue is paused (it accepts sends but hands out nothing), else 0.", "queue"),
		sent:     desc("sent_total", "Messages ever stored in a queue (deduplicated sends excluded).", "queue"),
		acked:    desc("acked_total", "Messages ever acknowledged in a queue.", "queue"),
		failed: prometheus.NewDesc(prometheus.BuildFQName(namespace, "metrics", "queue_list_failures_total"),
			"Listings of the queues for a scrape that failed (that scrape left the queue figures out; the server logged why).", nil, nil),
	}
}

// Describe sends every descriptor.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.messages, c.dead, c.age, c.paused, c.sent, c.acked, c.failed} {
		ch <- d
	}
}

// Collect sends the queues' figures, from a listing at most c.every old,
// or an invalid metric (which the handler logs, serving the rest) when
// the store cannot list them. Ages are as of now, whatever the listing's.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	qs, err := c.list()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.messages, err)
	}
	c.mu.Lock()
	failures := c.failures
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, failures)
	now := c.queues.Now()
	for _, q := range qs {
		st := q.Stats
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{q.Name}, labels...)...)
		}
		gauge(c.messages, float64(st.Ready), "ready")
		gauge(c.messages, float64(st.Delayed), "delayed")
		gauge(c.messages, float64(st.InFlight), "in_flight")
		gauge(c.dead, float64(st.Dead))
		age := 0.0
		if !st.OldestReady.IsZero() {
			age = max(now.Sub(st.OldestReady).Seconds(), 0)
		}
		gauge(c.age, age)
		gauge(c.paused, boolFloat(q.Paused))
		ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(st.SentTotal), q.Name)
		ch <- prometheus.MustNewConstMetric(c.acked, prometheus.CounterValue, float64(st.AckedTotal), q.Name)
	}
}

// list returns the queues, or the error of listing them, listed again if
// the last listing is older than every.
func (c *queueCollector) list() ([]store.Queue, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.listed.IsZero() && time.Since(c.listed) < c.every {
		return c.cached, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.cached, c.err = c.queues.ListQueues(ctx)
	c.listed = time.Now()
	if c.err != nil {
		c.failures++
		c.cached = nil
	}
	return c.cached, c.err
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
