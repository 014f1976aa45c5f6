package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/netguard"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeSource keeps tasks in memory and answers as the broker does.
type fakeSource struct {
	clk *clock.Fake

	mu      sync.Mutex // guards tasks, dueMaxes
	tasks   map[string]*store.Task
	dueMaxs []int // the max of each DueWebhooks call
}

func newSource(clk *clock.Fake) *fakeSource {
	return &fakeSource{clk: clk, tasks: map[string]*store.Task{}}
}

// add stores a task that finished now with its webhook due now.
func (s *fakeSource) add(id, notifyURL, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	s.tasks[id] = &store.Task{ID: id, Queue: "jobs", State: store.TaskSucceeded, Attempt: 1,
		Progress: 1, Result: []byte(`{"answer":42}`), CreatedAt: now.Add(-time.Minute), UpdatedAt: now,
		FinishedAt: now, ExpiresAt: now.Add(24 * time.Hour),
		Request: store.NewTask{NotifyURL: notifyURL, NotifySecret: secret},
		Webhook: store.WebhookStatus{Pending: true, NextAttemptAt: now}}
}

func (s *fakeSource) DueWebhooks(_ context.Context, max int) ([]store.Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dueMaxs = append(s.dueMaxs, max)
	now := s.clk.Now()
	var out []store.Task
	for _, t := range s.tasks {
		if t.Webhook.Pending && !t.Webhook.NextAttemptAt.After(now) {
			c := *t
			c.Webhook.Attempts = append([]store.WebhookAttempt(nil), t.Webhook.Attempts...)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > max {
		out = out[:max]
	}
	return out, nil
}

func (s *fakeSource) RecordWebhook(_ context.Context, id string, a store.WebhookAttempt, delivered bool, next time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return nil
	}
	h := &t.Webhook
	h.Attempts = append(h.Attempts, a)
	h.Delivered = h.Delivered || delivered
	h.Pending = !h.Delivered && !next.IsZero()
	h.NextAttemptAt = next
	return nil
}

func (s *fakeSource) task(t *testing.T, id string) store.Task {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	tk, ok := s.tasks[id]
	if !ok {
		t.Fatalf("no task %s", id)
	}
	c := *tk
	c.Webhook.Attempts = append([]store.WebhookAttempt(nil), tk.Webhook.Attempts...)
	return c
}

// receiver is an httptest server whose handler the test sets, recording
// each request it receives.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex // guards reqs
	reqs []recorded
}

type recorded struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, h func(w http.ResponseWriter, r *http.Request, body []byte)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, recorded{r.Header.Clone(), body})
		rc.mu.Unlock()
		h(w, r, body)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recorded(nil), rc.reqs...)
}

// setup returns a dispatcher over src on a fake clock; allow is its
// guard's allow-list. The dispatcher is stopped at the end of the test.
func setup(t *testing.T, allow []string, o webhook.Options) (*webhook.Dispatcher, *fakeSource, *clock.Fake) {
	t.Helper()
	var ps []netip.Prefix
	for _, a := range allow {
		ps = append(ps, netip.MustParsePrefix(a))
	}
	g, err := netguard.New(ps)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(t0)
	src := newSource(clk)
	o.Guard, o.Clock = g, clk
	d := webhook.New(src, o)
	t.Cleanup(func() {
		if err := d.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return d, src, clk
}

var loopback = []string{"127.0.0.0/8"}
