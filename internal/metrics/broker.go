package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

var _ broker.Observer = (*Metrics)(nil)

// activity counts what this server's broker did: unlike the queue
// collector's figures, which are the store's (a cluster's, and kept across
// restarts), these are the node's own since it started.
type activity struct {
	delivered *prometheus.CounterVec   // by queue
	again     *prometheus.CounterVec   // by queue: attempt > 1
	firstWait *prometheus.HistogramVec // by queue
	nacked    *prometheus.CounterVec   // by queue and outcome
	due       [4]prometheus.Counter    // promoted, lease_expired, expired_dead_lettered, dropped
	dueVec    *prometheus.CounterVec

	queues sync.Map // queue name → *queueCounters
}

// queueCounters are one queue's series, resolved once.
type queueCounters struct {
	delivered prometheus.Counter
	again     prometheus.Counter
	firstWait prometheus.Observer
	nacked    [broker.Cancelled + 1]prometheus.Counter
}

func newActivity() *activity {
	a := &activity{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "queue", Name: "delivered_total",
			Help: "Messages this server's receives handed out (every delivery, redeliveries included), since it started.",
		}, []string{"queue"}),
		again: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "queue", Name: "redelivered_total",
			Help: "Deliveries of messages delivered before (attempt above 1: after a nack, or a lease that expired unacked), since this server started.",
		}, []string{"queue"}),
		firstWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "queue", Name: "first_delivery_seconds",
			Help:    "Time from a message's send to its first delivery by this server (attempt 1; a delayed message's delay included): how long messages wait for a consumer.",
			Buckets: []float64{.001, .005, .025, .1, .5, 2.5, 10, 60, 300, 1800},
		}, []string{"queue"}),
		nacked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "queue", Name: "nacked_total",
			Help: "Nacks, releases and terminates this server applied since it started, by outcome: retried, released (attempt not counted), dead_lettered (the last attempt's nack, or a terminate), cancelled (a task whose cancel was requested).",
		}, []string{"queue", "outcome"}),
		dueVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "due", Name: "messages_total",
			Help: "Messages the time-driven work of this server handled since it started, whether a receive found them due before it leased or the maintenance loop did (in a cluster, every node's receives and the leader's loop): promoted (delayed, now ready), lease_expired (a lease ended unacked; retried), expired_dead_lettered (a lease ended unacked at the last attempt), dropped (past the queue's retention).",
		}, []string{"what"}),
	}
	for i, what := range []string{"promoted", "lease_expired", "expired_dead_lettered", "dropped"} {
		a.due[i] = a.dueVec.WithLabelValues(what)
	}
	return a
}

func (a *activity) collectors() []prometheus.Collector {
	return []prometheus.Collector{a.delivered, a.again, a.firstWait, a.nacked, a.dueVec}
}

func (a *activity) of(queue string) *queueCounters {
	if c, ok := a.queues.Load(queue); ok {
		return c.(*queueCounters)
	}
	c := &queueCounters{delivered: a.delivered.WithLabelValues(queue), again: a.again.WithLabelValues(queue),
		firstWait: a.firstWait.WithLabelValues(queue)}
	for o := range c.nacked {
		c.nacked[o] = a.nacked.WithLabelValues(queue, broker.GiveBackOutcome(o).String())
	}
	got, _ := a.queues.LoadOrStore(queue, c)
	return got.(*queueCounters)
}

// Delivered counts the messages handed out from queue at now, those
// delivered before, and how long each first delivery's message had waited
// since its send.
func (m *Metrics) Delivered(queue string, now time.Time, msgs []store.Message) {
	c := m.act.of(queue)
	c.delivered.Add(float64(len(msgs)))
	again := 0
	for i := range msgs {
		if msgs[i].Attempt == 1 {
			c.firstWait.Observe(max(now.Sub(msgs[i].SentAt), 0).Seconds())
		} else {
			again++
		}
	}
	if again > 0 {
		c.again.Add(float64(again))
	}
}

// GaveBack counts a nack, release or terminate of a message of queue.
func (m *Metrics) GaveBack(queue string, o broker.GiveBackOutcome) {
	if int(o) < len(queueCounters{}.nacked) {
		m.act.of(queue).nacked[o].Inc()
	}
}

// DueWork counts the messages time-driven work handled.
func (m *Metrics) DueWork(res store.TickResult) {
	for i, n := range []int{res.Promoted, res.Expired, res.DeadLettered, res.Dropped} {
		if n > 0 {
			m.act.due[i].Add(float64(n))
		}
	}
}

// QueueDeleted drops the series of a deleted queue, so that short-lived
// queues do not pile up series. (A receive or nack still under way may
// bring them back, once.)
func (m *Metrics) QueueDeleted(queue string) {
	m.act.queues.Delete(queue)
	m.act.delivered.DeleteLabelValues(queue)
	m.act.again.DeleteLabelValues(queue)
	m.act.firstWait.DeleteLabelValues(queue)
	m.act.nacked.DeletePartialMatch(prometheus.Labels{"queue": queue})
}
