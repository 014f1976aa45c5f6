package metrics

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

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
	m := New(Options{Queues: failingQueues{}, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	w := httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, "go_goroutines") || strings.Contains(body, "courier_queue_") {
		t.Fatalf("scrape with a failing store: %d\n%s", w.Code, body)
	}
	if !strings.Contains(log.String(), "disk on fire") {
		t.Errorf("the store's error was not logged: %q", log.String())
	}
}
