package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/courierhq/courier/internal/store"
)

// QueueLister is what the queue collector reads: the broker.
type QueueLister interface {
	ListQueues(ctx context.Context) ([]store.Queue, error)
	Now() time.Time
}

// queueCollector reads every queue's stats at scrape time.
type queueCollector struct {
	queues  QueueLister
	timeout time.Duration

	messages, dead, age, paused, sent, acked *prometheus.Desc
}

func newQueueCollector(q QueueLister, timeout time.Duration) *queueCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", name), help, labels, nil)
	}
	return &queueCollector{
		queues: q, timeout: timeout,
		messages: desc("messages", "Messages in a queue by state: ready (deliverable now, group members waiting for their turn included), delayed, in_flight (leased).", "queue", "state"),
		dead:     desc("dead_lettered_messages", "Messages dead-lettered from a queue that are still in its dead-letter queue (counted there as ready too).", "queue"),
		age:      desc("oldest_ready_age_seconds", "How long the oldest ready message of a queue has waited since it was sent; 0 when none is ready.", "queue"),
		paused:   desc("paused", "1 when a queue is paused (it accepts sends but hands out nothing), else 0.", "queue"),
		sent:     desc("sent_total", "Messages ever stored in a queue (deduplicated sends excluded).", "queue"),
		acked:    desc("acked_total", "Messages ever acknowledged in a queue.", "queue"),
	}
}

// Describe sends every descriptor.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.messages, c.dead, c.age, c.paused, c.sent, c.acked} {
		ch <- d
	}
}

// Collect lists the queues and sends their figures, or an invalid metric
// (which the handler logs, serving the rest) when the store cannot list
// them.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	qs, err := c.queues.ListQueues(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.messages, err)
		return
	}
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

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
