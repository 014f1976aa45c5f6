package metrics

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// failingQueues is a store that cannot list its queues.
type failingQueues struct{}

func (failingQueues) ListQueues(context.Context) ([]store.Queue, error) {
	return nil, errors.New("disk on fire")
}
func (failingQueues) Now() time.Time { return time.Now() }

// TestScrapeWithoutQueues: when the store cannot list its queues, a scrape
// still answers 200 with every other figure, leaves the queue figures out,
// and logs why.
func TestScrapeWithoutQueues(t *testing.T) {
	var log bytes.Buffer
	m := New(Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	m.CollectQueues(failingQueues{})
	w := httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, "go_goroutines") || strings.Contains(body, "courier_queue_") {
		t.Fatalf("scrape with a failing store: %d\n%s", w.Code, body)
	}
	if !strings.Contains(log.String(), "disk on fire") {
		t.Errorf("the store's error was not logged: %q", log.String())
	}
	if !strings.Contains(body, "\ncourier_metrics_queue_list_failures_total 1\n") {
		t.Errorf("the failed listing was not counted:\n%s", body)
	}
}

// countingQueues lists one queue, or fails when told to, and counts its
// listings.
type countingQueues struct {
	lists atomic.Int32
	fail  atomic.Bool
}

func (c *countingQueues) ListQueues(context.Context) ([]store.Queue, error) {
	c.lists.Add(1)
	if c.fail.Load() {
		return nil, errors.New("disk on fire")
	}
	return []store.Queue{{Name: "q", Stats: store.Stats{Ready: 7}}}, nil
}
func (c *countingQueues) Now() time.Time { return time.Now() }

// TestQueueListShared: scrapes within QueueListEvery share one listing,
// or one failure, even when they come together; with a negative
// QueueListEvery each scrape lists, and a failure after a good listing
// leaves the queue figures out.
func TestQueueListShared(t *testing.T) {
	for _, c := range []struct {
		every time.Duration
		fail  bool
		want  int32
	}{{time.Hour, false, 1}, {time.Hour, true, 1}, {-1, false, 4}} {
		m := New(Options{QueueListEvery: c.every})
		q := &countingQueues{}
		q.fail.Store(c.fail)
		m.CollectQueues(q)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if body := scrape(m); strings.Contains(body, `courier_queue_messages{queue="q",state="ready"} 7`) == c.fail {
					t.Errorf("QueueListEvery %v, failing %v: scrape:\n%s", c.every, c.fail, body)
				}
			})
		}
		wg.Wait()
		if got := q.lists.Load(); got != c.want {
			t.Errorf("QueueListEvery %v, failing %v: %d listings for 4 scrapes, want %d", c.every, c.fail, got, c.want)
		}
	}
	m := New(Options{QueueListEvery: -1})
	q := &countingQueues{}
	m.CollectQueues(q)
	scrape(m)
	q.fail.Store(true)
	if body := scrape(m); strings.Contains(body, "courier_queue_messages") ||
		!strings.Contains(body, "\ncourier_metrics_queue_list_failures_total 1\n") {
		t.Errorf("a failed listing after a good one:\n%s", body)
	}
}

func scrape(m *Metrics) string {
	w := httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	return w.Body.String()
}

// TestActivity: the broker's deliveries, first waits and give-backs by
// outcome are counted as they are reported, and a deleted queue's series
// go.
func TestActivity(t *testing.T) {
	m := New(Options{})
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	msg := func(attempt int, waited time.Duration) store.Message {
		return store.Message{Attempt: attempt, SentAt: now.Add(-waited)}
	}
	m.Delivered("a", now, []store.Message{msg(1, 3*time.Millisecond), msg(1, 20*time.Second), msg(2, time.Hour)})
	m.Delivered("a", now, []store.Message{msg(3, time.Minute), msg(1, -time.Second)}) // a clock step back counts as 0
	m.Delivered("b", now, []store.Message{msg(1, time.Second)})
	for _, o := range []broker.GiveBackOutcome{broker.Retried, broker.Retried, broker.Released, broker.DeadLettered, broker.Cancelled} {
		m.GaveBack("a", o)
	}
	m.Delivered("gone", now, []store.Message{msg(1, time.Second)})
	m.GaveBack("gone", broker.Retried)
	m.QueueDeleted("gone")
	m.DueWork(store.TickResult{Promoted: 4, Expired: 3, DeadLettered: 2, Dropped: 1})
	m.DueWork(store.TickResult{Promoted: 1})
	w := httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range []string{
		`courier_queue_delivered_total{queue="a"} 5`,
		`courier_queue_delivered_total{queue="b"} 1`,
		`courier_queue_redelivered_total{queue="a"} 2`,
		`courier_queue_redelivered_total{queue="b"} 0`,
		`courier_queue_first_delivery_seconds_bucket{queue="a",le="0.001"} 1`,
		`courier_queue_first_delivery_seconds_bucket{queue="a",le="0.005"} 2`,
		`courier_queue_first_delivery_seconds_bucket{queue="a",le="10"} 2`,
		`courier_queue_first_delivery_seconds_bucket{queue="a",le="60"} 3`,
		`courier_queue_first_delivery_seconds_count{queue="a"} 3`,
		`courier_queue_first_delivery_seconds_sum{queue="a"} 20.003`,
		`courier_queue_first_delivery_seconds_count{queue="b"} 1`,
		`courier_queue_nacked_total{outcome="retried",queue="a"} 2`,
		`courier_queue_nacked_total{outcome="released",queue="a"} 1`,
		`courier_queue_nacked_total{outcome="dead_lettered",queue="a"} 1`,
		`courier_queue_nacked_total{outcome="cancelled",queue="a"} 1`,
		`courier_queue_nacked_total{outcome="retried",queue="b"} 0`,
		`courier_due_messages_total{what="promoted"} 5`,
		`courier_due_messages_total{what="lease_expired"} 3`,
		`courier_due_messages_total{what="expired_dead_lettered"} 2`,
		`courier_due_messages_total{what="dropped"} 1`,
	} {
		if !strings.Contains(w.Body.String(), "\n"+line+"\n") {
			t.Errorf("missing %s", line)
		}
	}
	if strings.Contains(w.Body.String(), `queue="gone"`) {
		t.Errorf("a deleted queue's series are still served:\n%s", w.Body)
	}
}
