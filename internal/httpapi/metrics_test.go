package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/courierhq/courier/internal/metrics"
)

// scrape answers GET /metrics and parses it as Prometheus would.
func (f *fixture) scrape() map[string]*dto.MetricFamily {
	f.t.Helper()
	w := f.do("GET", "/metrics", "")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		f.t.Fatalf("GET /metrics: %d %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(w.Body)
	if err != nil {
		f.t.Fatalf("GET /metrics is not the Prometheus text format: %v", err)
	}
	return fams
}

// value is the value of the series of family name with exactly labels
// (name=value pairs), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i < len(labels); i += 2 {
			if v, ok := have[labels[i]]; !ok || v != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetrics: GET /metrics serves each queue's depth by state, the age
// of its oldest ready message, its sent and acked totals and whether it is
// paused, read at scrape time; the broker's deliveries and nacks by
// outcome; and every request by route and status, unknown paths, refused
// input and aborted answers included, with their durations.
func TestMetrics(t *testing.T) {
	t.Parallel()
	f := setupWith(t, Options{Metrics: metrics.New(metrics.Options{QueueListEvery: -1})}) // every scrape lists
	f.must("POST", "/v1/queues/q/messages", `{"messages":[{"body":1},{"body":2},{"body":3}]}`, 201, nil)
	f.must("POST", "/v1/queues/q/messages", `{"body":4,"delay":"1m"}`, 201, nil)
	f.must("POST", "/v1/queues/q/messages", `{"body":"bad","delay":"soon"}`, 400, nil)
	var got struct {
		Messages []struct{ Lease string }
	}
	f.must("POST", recvURL, `{"max":2}`, 200, &got)
	f.must("POST", "/v1/queues/q/ack", `{"lease":"`+got.Messages[0].Lease+`"}`, 200, nil)
	f.must("POST", "/v1/queues/q/nack", `{"lease":"`+got.Messages[1].Lease+`","delay":"1m"}`, 200, nil)
	// A terminate on t, and a queue d whose series go with it.
	for _, q := range []string{"t", "d"} {
		f.must("POST", "/v1/queues/"+q+"/messages", `{"body":1}`, 201, nil)
		f.must("POST", "/v1/queues/"+q+"/receive", `{}`, 200, &got)
		if q == "t" {
			f.must("POST", "/v1/queues/t/nack", `{"lease":"`+got.Messages[0].Lease+`","terminate":true}`, 200, nil)
		}
	}
	if v, ok := value(f.scrape(), "courier_queue_delivered_total", "queue", "d"); v != 1 || !ok {
		t.Errorf("delivered from d before its delete: %v (present %v), want 1", v, ok)
	}
	f.must("DELETE", "/v1/queues/d", "", 204, nil)
	// A message of r nacked to come back at once, and delivered again.
	f.must("POST", "/v1/queues/r/messages", `{"body":1}`, 201, nil)
	f.must("POST", "/v1/queues/r/receive", `{}`, 200, &got)
	f.must("POST", "/v1/queues/r/nack", `{"lease":"`+got.Messages[0].Lease+`","delay":"0s"}`, 200, nil)
	f.must("POST", "/v1/queues/r/receive", `{}`, 200, &got)
	if len(got.Messages) != 1 {
		t.Fatalf("the nacked message was not delivered again: %+v", got)
	}
	f.must("PUT", "/v1/queues/p", `{}`, 200, nil)
	f.must("POST", "/v1/queues/p/pause", "", 200, nil)
	f.must("GET", "/nowhere", "", 404, nil)
	f.must("DELETE", "/v1/queues/q/messages", "", 405, nil)

	// A long-poll whose client leaves is aborted (TestReceiveClientLeft).
	ctx := &leftCtx{Context: context.Background()}
	added := f.clk.TimerAdded()
	done := make(chan bool, 1)
	go func() {
		_, aborted := abortedServe(f, ctx, "/v1/queues/gone/receive", `{"wait":"30s"}`)
		done <- aborted
	}()
	<-added
	ctx.left.Store(true)
	f.must("POST", "/v1/queues/gone/messages", `{"body":1}`, 201, nil)
	if !<-done {
		t.Fatal("the long-poll was not aborted")
	}
	f.clk.Advance(5 * time.Second)

	fams := f.scrape()
	const sendRoute = "POST /v1/queues/{queue}/messages"
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"courier_queue_messages", []string{"queue", "q", "state", "ready"}, 1},
		{"courier_queue_messages", []string{"queue", "q", "state", "delayed"}, 2},
		{"courier_queue_messages", []string{"queue", "q", "state", "in_flight"}, 0},
		{"courier_queue_messages", []string{"queue", "gone", "state", "ready"}, 1},
		{"courier_queue_oldest_ready_age_seconds", []string{"queue", "q"}, 5},
		{"courier_queue_oldest_ready_age_seconds", []string{"queue", "p"}, 0},
		{"courier_queue_sent_total", []string{"queue", "q"}, 4},
		{"courier_queue_acked_total", []string{"queue", "q"}, 1},
		{"courier_queue_paused", []string{"queue", "p"}, 1},
		{"courier_queue_paused", []string{"queue", "q"}, 0},
		{"courier_queue_dead_lettered_messages", []string{"queue", "q"}, 0},
		{"courier_queue_delivered_total", []string{"queue", "q"}, 2},
		{"courier_queue_delivered_total", []string{"queue", "gone"}, 1},
		{"courier_queue_redelivered_total", []string{"queue", "q"}, 0},
		{"courier_queue_delivered_total", []string{"queue", "r"}, 2},
		{"courier_queue_redelivered_total", []string{"queue", "r"}, 1},
		{"courier_queue_first_delivery_seconds", []string{"queue", "r"}, 1},
		{"courier_queue_first_delivery_seconds", []string{"queue", "q"}, 2},
		{"courier_queue_first_delivery_seconds", []string{"queue", "gone"}, 1},
		{"courier_queue_nacked_total", []string{"queue", "q", "outcome", "retried"}, 1},
		{"courier_queue_nacked_total", []string{"queue", "q", "outcome", "released"}, 0},
		{"courier_queue_nacked_total", []string{"queue", "gone", "outcome", "released"}, 1},
		{"courier_queue_nacked_total", []string{"queue", "t", "outcome", "dead_lettered"}, 1},

		{"courier_http_requests_total", []string{"route", sendRoute, "code", "201"}, 6},
		{"courier_http_requests_total", []string{"route", sendRoute, "code", "400"}, 1},
		{"courier_http_requests_total", []string{"route", "POST /v1/queues/{queue}/ack", "code", "200"}, 1},
		{"courier_http_requests_total", []string{"route", "POST /v1/queues/{queue}/receive", "code", "200"}, 5},
		{"courier_http_requests_total", []string{"route", "POST /v1/queues/{queue}/receive", "code", "aborted"}, 1},
		{"courier_http_requests_total", []string{"route", "unmatched", "code", "404"}, 1},
		{"courier_http_requests_total", []string{"route", "unmatched", "code", "405"}, 1},
		{"courier_http_request_duration_seconds", []string{"route", sendRoute}, 7},
		{"courier_http_request_duration_seconds", []string{"route", "POST /v1/tasks/{id}/cancel"}, 0},
	} {
		if v, ok := value(fams, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	if _, ok := value(fams, "courier_queue_delivered_total", "queue", "d"); ok {
		t.Error("a deleted queue's deliveries are still served")
	}
	if fams["courier_store_wal_fsync_duration_seconds"] != nil {
		t.Error("WAL fsyncs reported without a reporter")
	}
	// The scrapes so far are counted by the next.
	if v, _ := value(f.scrape(), "courier_http_requests_total", "route", "GET /metrics", "code", "200"); v != 2 {
		t.Errorf("scrapes counted: %v, want 2", v)
	}
}

// TestPanicAfterAnswerBegan: a panic once an answer has begun cuts it short
// (ErrAbortHandler) instead of appending an error to it, and is counted as
// aborted, not with the status it had begun.
func TestPanicAfterAnswerBegan(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Options{})
	f := setupWith(t, Options{Metrics: m})
	a := f.h.(*api)
	rec := httptest.NewRecorder()
	w := m.Begin(rec, "GET /test")
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler { //nolint:errorlint // a sentinel value
				t.Errorf("panic after a write: %v, want http.ErrAbortHandler", v)
			}
		}()
		defer w.Done()
		defer a.recover(w, httptest.NewRequest("GET", "/test", nil))
		_, _ = w.Write([]byte("partial"))
		panic("a bug")
	}()
	if rec.Body.String() != "partial" {
		t.Errorf("body after the panic: %q, want the answer cut short", rec.Body)
	}
	if v, _ := value(f.scrape(), "courier_http_requests_total", "route", "GET /test", "code", "aborted"); v != 1 {
		t.Errorf("aborted answers counted: %v, want 1", v)
	}
}

// TestMetricsDueWork: a lease that ended unacked, and a delayed message
// come due, are counted once, whether a receive or the maintenance tick
// finds them.
func TestMetricsDueWork(t *testing.T) {
	t.Parallel()
	f := setupWith(t, Options{Metrics: metrics.New(metrics.Options{})})
	f.must("PUT", "/v1/queues/x", `{"backoff":{"initial":"1h","max":"2h"}}`, 200, nil)
	f.must("POST", "/v1/queues/x/messages", `{"body":1}`, 201, nil)
	f.must("POST", "/v1/queues/x/receive", `{"visibility":"1s"}`, 200, nil)
	f.must("POST", "/v1/queues/x/messages", `{"body":2,"delay":"1s"}`, 201, nil)
	f.clk.Advance(2 * time.Second)
	// The receive finds the first lease expired (retried in an hour) and
	// the delayed message due, and takes that one.
	var got struct{ Messages []struct{ Lease string } }
	f.must("POST", "/v1/queues/x/receive", `{"max":10}`, 200, &got)
	if len(got.Messages) != 1 {
		t.Fatalf("second receive: %+v, want the delayed message", got)
	}
	f.must("POST", "/v1/queues/x/ack", `{"lease":"`+got.Messages[0].Lease+`"}`, 200, nil)
	f.clk.Advance(2 * time.Hour)
	if _, err := f.b.Tick(context.Background()); err != nil { // the retry comes due
		t.Fatal(err)
	}
	fams := f.scrape()
	for what, want := range map[string]float64{"lease_expired": 1, "promoted": 2, "expired_dead_lettered": 0, "dropped": 0} {
		if v, _ := value(fams, "courier_due_messages_total", "what", what); v != want {
			t.Errorf("due %s: %v, want %v", what, v, want)
		}
	}
}
