package bench

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	t.Parallel()
	mk := func(perSecond, p99 float64, rss int64, extra map[string]any) *Result {
		return &Result{Workload: "w1", Title: "durable round trip", Unit: "messages", PerSecond: perSecond,
			LatencyMS: Latency{P50: perSecond / 1000, P99: p99}, PeakRSSBytes: rss, Extra: extra}
	}
	rs := []*Result{
		mk(300, 9, 30<<20, map[string]any{"ratio": 0.9, "syncs": int64(10), "samples": uint64(5), "cpus": 2,
			"floor_bytes": uint64(0), "data_dir": "/tmp/a", "once": 1.0}),
		mk(100, 1, 10<<20, map[string]any{"ratio": 1.1, "syncs": int64(30), "samples": uint64(6), "cpus": 2,
			"floor_bytes": uint64(0), "data_dir": "/tmp/b"}),
		mk(200, 5, 20<<20, map[string]any{"ratio": 1.0, "syncs": int64(20), "samples": uint64(8), "cpus": 2,
			"floor_bytes": uint64(0), "twice": 2.0}),
	}
	s := Summarize(rs)
	m := s.Median
	if m.PerSecond != 200 || m.LatencyMS.P99 != 5 || m.LatencyMS.P50 != 0.2 || m.PeakRSSBytes != 20<<20 {
		t.Errorf("medians %+v; want 200/s, p99 5, p50 0.2, 20 MiB", m)
	}
	if s.PerSecondMin != 100 || s.PerSecondMax != 300 {
		t.Errorf("range %v–%v; want 100–300", s.PerSecondMin, s.PerSecondMax)
	}
	// Numeric extras every run has; not strings, not those some lack.
	// Integers stay integers; strings and keys some run lacks are left out.
	want := map[string]any{"ratio": 1.0, "syncs": int64(20), "samples": int64(6), "cpus": int64(2), "floor_bytes": int64(0)}
	if !reflect.DeepEqual(m.Extra, want) {
		t.Errorf("extra medians %#v; want %#v", m.Extra, want)
	}
	// Of two runs, the mean of the middle two, rounded for integers.
	even := Summarize(rs[:2]).Median
	if even.PerSecond != 200 || even.Extra["ratio"] != 1.0 || even.Extra["samples"] != int64(6) || even.Extra["syncs"] != int64(20) {
		t.Errorf("median of two: %+v; want 200/s, ratio 1.0, samples 6 (5.5 rounded), syncs 20", even)
	}
	var b bytes.Buffer
	if err := s.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"w1: durable round trip", "run 1", "300 messages/s", "run 3", "median", "200 messages/s",
		"p99 5.000 ms", "range", "100–300 messages/s", "ratio", "1.000 (median)", "syncs", "20 (median)", "cpus", "2 (median)", "floor_bytes", "0 (median)",
		"20.0 MiB", "queue a fresh one per run"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the table has no %q:\n%s", want, b.String())
		}
	}
}
