package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
)

// runSmall runs a workload small, on a server of its own, and checks what
// every Result must hold: the count, the windows adding up to it, the
// queue settled, and every field of the JSON contract.
func runSmall(t *testing.T, w Workload, p Params, target Target) *Result {
	t.Helper()
	if p.Size == 0 {
		p.Size = DefaultSize
	}
	res, err := Run(t.Context(), Config{Workload: w, Params: p, Target: target})
	if err != nil {
		t.Fatalf("%s: %v", w, err)
	}
	if res.Count != p.Count || res.Seconds <= 0 || res.PerSecond <= 0 {
		t.Errorf("%s: count %d in %gs (%g/s); want %d", w, res.Count, res.Seconds, res.PerSecond, p.Count)
	}
	var sum int64
	for _, win := range res.Windows {
		sum += win.Count
	}
	if sum != p.Count || len(res.Windows) == 0 {
		t.Errorf("%s: %d windows counting %d; want them to add up to %d", w, len(res.Windows), sum, p.Count)
	}
	if res.LatencyMS.P50 <= 0 || res.LatencyMS.P50 > res.LatencyMS.P99 || res.LatencyMS.P99 > res.LatencyMS.Max {
		t.Errorf("%s: latency %+v", w, res.LatencyMS)
	}
	if res.Extra["queue_ready"] != int64(0) || res.Extra["queue_in_flight"] != int64(0) {
		t.Errorf("%s: queue left with ready %v, in flight %v", w, res.Extra["queue_ready"], res.Extra["queue_in_flight"])
	}
	if res.CPUSeconds <= 0 || res.PeakRSSBytes <= 0 {
		t.Errorf("%s: cpu %g s, peak rss %d", w, res.CPUSeconds, res.PeakRSSBytes)
	}
	checkJSON(t, res)
	return res
}

// checkJSON asserts that r marshals with every field of the interface
// (notes/bench-interface.md), under the names scripts use.
func checkJSON(t *testing.T, r *Result) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"workload", "target", "durability", "params", "count", "seconds", "per_second",
		"latency_ms", "cpu_seconds", "peak_rss_bytes", "disk_bytes", "windows", "extra"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, b)
		}
	}
	for _, k := range []string{"count", "size", "producers", "consumers", "batch", "concurrency", "rate"} {
		if _, ok := m["params"].(map[string]any)[k]; !ok {
			t.Errorf("JSON params have no %q: %s", k, b)
		}
	}
	for _, k := range []string{"p50", "p90", "p99", "max"} {
		if _, ok := m["latency_ms"].(map[string]any)[k]; !ok {
			t.Errorf("JSON latency_ms has no %q: %s", k, b)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := runSmall(t, W1, Params{Count: 300, Batch: 20, Producers: 2, Consumers: 2, Windows: 5}, Target{DataDir: dir})
	if res.Extra["queue_acked_total"] != int64(300) || res.Extra["latency_samples"] != uint64(300) {
		t.Errorf("acked %v, latency samples %v; want 300 each", res.Extra["queue_acked_total"], res.Extra["latency_samples"])
	}
	if res.Target != "pebble" || res.Durability != "every 2xx fsynced" || res.DiskBytes <= 0 || res.Extra["data_dir"] != dir {
		t.Errorf("target %q, durability %q, disk %d, data dir %v", res.Target, res.Durability, res.DiskBytes, res.Extra["data_dir"])
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the data directory given was not kept: %v", err)
	}
	if res.Extra["cpus"] != runtime.NumCPU() || res.Extra["gomaxprocs"] != runtime.GOMAXPROCS(0) {
		t.Errorf("cpus %v, gomaxprocs %v; want %d and %d", res.Extra["cpus"], res.Extra["gomaxprocs"], runtime.NumCPU(), runtime.GOMAXPROCS(0))
	}
}

// TestRoundTripSingle: batch 1 sends, receives and acks one message per
// request; a body too small for the stamp still gives latencies.
func TestRoundTripSingle(t *testing.T) {
	t.Parallel()
	res := runSmall(t, W1, Params{Count: 60, Batch: 1, Size: 4, Producers: 2, Consumers: 2}, Target{})
	if res.Extra["latency_samples"] != uint64(60) {
		t.Errorf("latency samples %v, want 60", res.Extra["latency_samples"])
	}
	dir, _ := res.Extra["data_dir"].(string)
	if _, err := os.Stat(dir); dir == "" || !os.IsNotExist(err) || res.Extra["data_dir_removed"] != true {
		t.Errorf("temporary data directory %q: %v; want it removed", dir, err)
	}
}

// startServer starts a server of its own for t, stopped at its end.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.Start(t.Context(), server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("stop server: %v", err)
		}
	})
	return s
}

// TestRoundTripCarryAcks: with CarryAcks a consumer's acks ride on its
// next receive: through a proxy that counts the requests, at most one
// plain ack per consumer (its last batch) goes out, and every message is
// acked and timed all the same.
func TestRoundTripCarryAcks(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	target, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	var acks, receives atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/ack"):
			acks.Add(1)
		case strings.HasSuffix(r.URL.Path, "/receive"):
			receives.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	p := Params{Count: 300, Batch: 20, Producers: 2, Consumers: 2, Queue: "carried", CarryAcks: true}
	res := runSmall(t, W1, p, Target{URL: front.URL})
	if !res.Params.CarryAcks || res.Extra["latency_samples"] != uint64(300) {
		t.Errorf("params %+v, latency samples %v; want carry_acks and 300 samples", res.Params, res.Extra["latency_samples"])
	}
	if n := acks.Load(); n > int64(p.Consumers) || receives.Load() < 300/20 {
		t.Errorf("%d ack requests and %d receives; want at most %d acks (one per consumer), at least 15 receives",
			n, receives.Load(), p.Consumers)
	}
	c := courier.NewClient(s.URL())
	defer c.CloseIdleConnections()
	if q, err := c.GetQueue(t.Context(), "carried"); err != nil || q.Stats.AckedTotal != 300 {
		t.Errorf("queue: %+v, %v; want 300 acked", q.Stats, err)
	}
}

func TestBurnDown(t *testing.T) {
	t.Parallel()
	res := runSmall(t, W2, Params{Count: 300, Batch: 50, Producers: 2, Concurrency: 20}, Target{})
	if res.Extra["queue_acked_total"] != int64(300) || res.Extra["latency_samples"] != uint64(300) {
		t.Errorf("acked %v, latency samples %v; want 300 each", res.Extra["queue_acked_total"], res.Extra["latency_samples"])
	}
	if _, ok := res.Extra["tasks_checked"]; ok || res.Unit != "jobs" {
		t.Errorf("plain-message jobs: tasks_checked %v, unit %q", res.Extra["tasks_checked"], res.Unit)
	}
}

func TestBurnDownTasks(t *testing.T) {
	t.Parallel()
	res := runSmall(t, W2, Params{Count: 250, Batch: 50, Producers: 2, Concurrency: 20, Tasks: true}, Target{})
	if res.Extra["tasks_checked"] != 250 || res.Extra["queue_acked_total"] != int64(250) {
		t.Errorf("tasks checked %v, acked %v; want all 250", res.Extra["tasks_checked"], res.Extra["queue_acked_total"])
	}
	if v, _ := res.Extra["enqueue_per_second"].(float64); v <= 0 {
		t.Errorf("enqueue rate %v", res.Extra["enqueue_per_second"])
	}
}

func TestLatencyOpenLoop(t *testing.T) {
	t.Parallel()
	res := runSmall(t, W3, Params{Count: 200, Rate: 2000, Consumers: 2}, Target{})
	if res.Extra["queue_acked_total"] != int64(200+warmUpMessages) || res.Extra["latency_samples"] != uint64(200) {
		t.Errorf("acked %v, samples %v; want 200 (+%d warm-up)", res.Extra["queue_acked_total"], res.Extra["latency_samples"], warmUpMessages)
	}
	if res.Params.Rate != 2000 || res.Params.Producers != 0 {
		t.Errorf("params in effect %+v; want rate 2000 and no producers", res.Params)
	}
	// Single sends, and the receive loops' acks in calls of their own.
	if reqs, _ := res.Extra["requests"].(map[string]int64); reqs["messages"] != 200+warmUpMessages ||
		reqs["receive"] < 1 || reqs["ack"] < 1 || reqs["ack"] > reqs["receive"] {
		t.Errorf("requests %v; want %d sends, and no more acks than receives", res.Extra["requests"], 200+warmUpMessages)
	}
	for _, k := range []string{"send_lag_p50_ms", "send_lag_p90_ms", "send_lag_p99_ms", "send_lag_max_ms"} {
		if v, ok := res.Extra[k].(float64); !ok || v < 0 {
			t.Errorf("send lag %s: %v", k, res.Extra[k])
		}
	}
	if s50, s99 := res.Extra["send_p50_ms"].(float64), res.Extra["send_p99_ms"].(float64); s50 <= 0 || s99 < s50 {
		t.Errorf("send latency p50 %v p99 %v", s50, s99)
	}
	p50, ok50 := res.Extra["disk_sync_p50_ms"].(float64)
	p99, ok99 := res.Extra["disk_sync_p99_ms"].(float64)
	if !ok50 || !ok99 || p50 <= 0 || p99 < p50 || res.Extra["disk_sync_max_ms"].(float64) < p99 {
		t.Errorf("disk sync latency: p50 %v p99 %v max %v", res.Extra["disk_sync_p50_ms"], p99, res.Extra["disk_sync_max_ms"])
	}
	// The run's own WAL fsyncs: at least one, at most one per write (a
	// send, a lease, an ack per message).
	n, _ := res.Extra["wal_syncs"].(uint64)
	w50, _ := res.Extra["wal_sync_p50_ms"].(float64)
	w99, _ := res.Extra["wal_sync_p99_ms"].(float64)
	if n == 0 || n > 3*(200+warmUpMessages) || w50 <= 0 || w99 < w50 {
		t.Errorf("WAL syncs %v, p50 %v, p99 %v", res.Extra["wal_syncs"], res.Extra["wal_sync_p50_ms"], res.Extra["wal_sync_p99_ms"])
	}
	wmax, _ := res.Extra["wal_sync_max_ms"].(float64)
	slow, ok := res.Extra["wal_syncs_over_2ms"].(uint64)
	if wmax < w99 || !ok || slow > n || (slow > 0) != (wmax > 2) {
		t.Errorf("WAL syncs: max %v ms, %v over 2 ms (of %d, p99 %v)", res.Extra["wal_sync_max_ms"], res.Extra["wal_syncs_over_2ms"], n, w99)
	}
}

// TestLatencyWorker: with --worker the consumer is one SDK Worker, whose
// handlers take every message once and whose acks all land.
func TestLatencyWorker(t *testing.T) {
	t.Parallel()
	res := runSmall(t, W3, Params{Count: 200, Rate: 2000, Consumers: 3, Worker: true, CarryAcks: true}, Target{})
	if res.Extra["queue_acked_total"] != int64(200+warmUpMessages) || res.Extra["latency_samples"] != uint64(200) {
		t.Errorf("acked %v, samples %v; want 200 (+%d warm-up)", res.Extra["queue_acked_total"], res.Extra["latency_samples"], warmUpMessages)
	}
	if !res.Params.Worker || res.Params.CarryAcks || res.Params.Consumers != 3 {
		t.Errorf("params in effect %+v; want worker, 3 consumers, and no carry_acks (a Worker carries its own)", res.Params)
	}
	if reqs, _ := res.Extra["requests"].(map[string]int64); reqs["messages"] != 200+warmUpMessages || reqs["receive"] < 1 {
		t.Errorf("requests %v; want %d sends and some receives", res.Extra["requests"], 200+warmUpMessages)
	}
	if !strings.Contains(res.LatencyIs, "Worker's handler") {
		t.Errorf("latency_is %q; want it to end at the Worker's handler", res.LatencyIs)
	}
	if _, ok := res.Extra["acks_refused_lease_expired"]; ok {
		t.Errorf("extra %v: a Worker's run reports no refused acks of its own", res.Extra)
	}
	if res.LatencyMS.P50 <= 0 || res.LatencyMS.P99 < res.LatencyMS.P50 {
		t.Errorf("latency %+v", res.LatencyMS)
	}
}

// TestSyncProbe: the probe syncs as many times as asked, each taking some
// time, and leaves nothing behind in the directory.
func TestSyncProbe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h, err := syncProbe(t.Context(), dir, 20, time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	if h.Count() != 20 || h.Percentile(0.5) <= 0 {
		t.Errorf("%d samples, median %v; want 20 above 0", h.Count(), h.Percentile(0.5))
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the probe left %v", left)
	}
	if _, err := syncProbe(t.Context(), filepath.Join(dir, "missing"), 1, time.Microsecond); err == nil {
		t.Error("a probe in a missing directory succeeded")
	}
	extra := map[string]any{}
	noteSyncProbe(t.Context(), extra, filepath.Join(dir, "missing"))
	if note, _ := extra["disk_sync"].(string); !strings.HasPrefix(note, "not measured: ") || extra["disk_sync_p99_ms"] != nil {
		t.Errorf("a failed probe noted %v; want why, and no figures", extra)
	}
}

func TestBacklog(t *testing.T) {
	t.Parallel()
	res := runSmall(t, W4, Params{Count: 300, Baseline: 100, Batch: 25, Producers: 2, Consumers: 2, Windows: 3}, Target{})
	if res.Extra["queue_acked_total"] != int64(400) {
		t.Errorf("acked %v; want 100 (baseline) + 300", res.Extra["queue_acked_total"])
	}
	for _, k := range []string{"empty_receive_per_second", "backlog_receive_per_second", "ratio", "fill_per_second",
		"empty_cpu_us_per_message", "backlog_cpu_us_per_message"} {
		if v, _ := res.Extra[k].(float64); v <= 0 {
			t.Errorf("%s = %v", k, res.Extra[k])
		}
	}
	if v, _ := res.Extra["rss_after_fill_bytes"].(int64); v <= 0 {
		t.Errorf("rss after fill %v", res.Extra["rss_after_fill_bytes"])
	}
	// Too little data for a flush, but the in-process engine is read: its
	// figures are there, and none is negative.
	for _, k := range []string{"empty_engine_seconds", "backlog_engine_seconds", "engine_flush_seconds", "engine_compaction_seconds"} {
		if v, ok := res.Extra[k].(float64); !ok || v < 0 {
			t.Errorf("%s = %v", k, res.Extra[k])
		}
	}
	for _, k := range []string{"engine_flushes", "engine_compactions"} {
		if v, ok := res.Extra[k].(int64); !ok || v < 0 {
			t.Errorf("%s = %v", k, res.Extra[k])
		}
	}
	if _, ok := res.Extra["engine_bytes_written"].(uint64); !ok {
		t.Errorf("engine_bytes_written = %v", res.Extra["engine_bytes_written"])
	}
}

func TestChurn(t *testing.T) {
	t.Parallel()
	res := runSmall(t, W5, Params{Count: 400, Batch: 10, Backlog: 40, Producers: 2, Consumers: 2, Windows: 4}, Target{})
	if len(res.Windows) != 4 || res.Extra["queue_acked_total"] != int64(400) {
		t.Errorf("%d windows, acked %v; want 4 and 400", len(res.Windows), res.Extra["queue_acked_total"])
	}
	if v, _ := res.Extra["last_over_first"].(float64); v <= 0 {
		t.Errorf("last_over_first = %v", res.Extra["last_over_first"])
	}
}

func TestTasks(t *testing.T) {
	t.Parallel()
	closed := runSmall(t, W6, Params{Count: 80, Concurrency: 8}, Target{})
	open := runSmall(t, W6, Params{Count: 80, Rate: 1000, Concurrency: 8}, Target{})
	for _, res := range []*Result{closed, open} {
		if res.Extra["queue_acked_total"] != int64(81) {
			t.Errorf("acked %v; want 80 and one warm-up", res.Extra["queue_acked_total"])
		}
	}
	if closed.LatencyIs == open.LatencyIs {
		t.Errorf("closed and open loop describe their latency alike: %q", open.LatencyIs)
	}
}

// TestExternalServer: with a URL, the run goes to that server, reports the
// client's resources only, and deletes the queue it named itself.
func TestExternalServer(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	res := runSmall(t, W1, Params{Count: 100, Batch: 10}, Target{URL: s.URL()})
	if res.Target != "url" || res.DiskBytes != 0 || res.Extra["disk"] != "unknown" {
		t.Errorf("target %q, disk %d (%v)", res.Target, res.DiskBytes, res.Extra["disk"])
	}
	if v, ok := res.Extra["engine_flushes"]; ok {
		t.Errorf("engine work of a server elsewhere: engine_flushes %v", v)
	}
	c := courier.NewClient(s.URL())
	defer c.CloseIdleConnections()
	if qs, err := c.ListQueues(t.Context()); err != nil || len(qs) != 0 {
		t.Errorf("queues left on the server: %v, %v", qs, err)
	}
	runSmall(t, W1, Params{Count: 100, Batch: 10, Queue: "kept"}, Target{URL: s.URL()})
	q, err := c.GetQueue(t.Context(), "kept")
	if err != nil || q.Stats.AckedTotal != 100 {
		t.Errorf("queue named by the caller: %+v, %v; want it kept, with 100 acks", q.Stats, err)
	}
}

// TestAckOutcome: an expired lease is counted out, not an error; another
// refusal, or a receive that carried acks and answered nothing of them, is.
func TestAckOutcome(t *testing.T) {
	t.Parallel()
	if e, err := ackOutcome(&courier.AckResult{Acked: 2, Failed: []courier.AckFailure{{Lease: "l3", Code: courier.CodeLeaseExpired}}}); len(e) != 1 || !e["l3"] || err != nil {
		t.Errorf("expired lease: %v, %v; want l3, nil", e, err)
	}
	if e, err := ackOutcome(&courier.AckResult{Acked: 2}); e != nil || err != nil {
		t.Errorf("all applied: %v, %v; want nil, nil", e, err)
	}
	if _, err := ackOutcome(&courier.AckResult{Failed: []courier.AckFailure{{Code: "invalid_argument"}}}); err == nil {
		t.Error("another refusal: no error")
	}
	if _, err := ackOutcome(nil); err == nil {
		t.Error("no outcome: no error")
	}
}

// TestAckedCountsOnlyApplied: the messages of expired leases are neither
// counted nor sampled (they come back, and count when an ack of them
// holds), in either latency mode that samples at the ack.
func TestAckedCountsOnlyApplied(t *testing.T) {
	t.Parallel()
	b := newBodies(128, time.Now())
	for _, mode := range []latencyMode{sendToAck, receiveAckRound} {
		settled := 0
		c := &consumer{r: &runner{bodies: b}, done: newMeter("x", 10, 1), n: 10, batch: 3, mode: mode,
			h: &Histogram{}, settled: func(n int) { settled += n }}
		msgs := make([]courier.Message, 3)
		for i := range msgs {
			msgs[i] = courier.Message{BodyBase64: b.stamped(b.now()).BodyBase64, Lease: fmt.Sprintf("l%d", i)}
		}
		c.acked(msgs, time.Now(), map[string]bool{"l0": true, "l2": true})
		if c.h.Count() != 1 || c.done.count() != 1 || c.refused != 2 || settled != 1 {
			t.Errorf("mode %d: %d samples, %d counted, %d refused, %d settled; want 1, 1, 2, 1",
				mode, c.h.Count(), c.done.count(), c.refused, settled)
		}
		c.acked(msgs[:1], time.Now(), nil)
		if c.h.Count() != 2 || c.done.count() != 2 || c.refused != 2 {
			t.Errorf("mode %d, all applied: %d samples, %d counted, %d refused; want 2, 2, 2",
				mode, c.h.Count(), c.done.count(), c.refused)
		}
	}
}
