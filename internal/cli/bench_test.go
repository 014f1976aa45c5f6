package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/courierhq/courier/internal/gcfloor"
	"github.com/courierhq/courier/internal/pgtest"
)

// benchJSON is the part of `bench --json` the tests read.
type benchJSON struct {
	Workload   string             `json:"workload"`
	Target     string             `json:"target"`
	Durability string             `json:"durability"`
	Params     map[string]any     `json:"params"`
	Count      int64              `json:"count"`
	Seconds    float64            `json:"seconds"`
	PerSecond  float64            `json:"per_second"`
	LatencyMS  map[string]float64 `json:"latency_ms"`
	CPUSeconds *float64           `json:"cpu_seconds"`
	PeakRSS    *int64             `json:"peak_rss_bytes"`
	DiskBytes  *int64             `json:"disk_bytes"`
	Windows    []map[string]any   `json:"windows"`
	Extra      map[string]any     `json:"extra"`
}

func parseBench(t *testing.T, out string) benchJSON {
	t.Helper()
	var r benchJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	if r.CPUSeconds == nil || r.PeakRSS == nil || r.DiskBytes == nil || r.Windows == nil || r.Extra == nil || r.Params == nil {
		t.Fatalf("bench --json lacks fields: %s", out)
	}
	for _, k := range []string{"p50", "p90", "p99", "max"} {
		if _, ok := r.LatencyMS[k]; !ok {
			t.Errorf("latency_ms has no %s: %s", k, out)
		}
	}
	for _, k := range []string{"count", "size", "producers", "consumers", "batch", "concurrency", "rate"} {
		if _, ok := r.Params[k]; !ok {
			t.Errorf("params have no %s: %s", k, out)
		}
	}
	return r
}

// TestBenchTable runs w1 in-process and prints the table; no progress bar
// is drawn, since standard error is not a terminal.
func TestBenchTable(t *testing.T) {
	t.Parallel()
	r := courierCmd(t.Context(), t, "", strings.NewReader(""), "bench", "roundtrip", "--count", "120", "--batch", "10")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("bench w1: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"w1: durable round trip", "target", "pebble", "every 2xx fsynced", "completed", "120 messages",
		"throughput", "p50", "p99", "max", "cpu", "peak rss", "disk", "windows", "queue_acked_total"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the table has no %q:\n%s", want, r.stdout)
		}
	}
}

func TestBenchJSON(t *testing.T) {
	t.Parallel()
	out := ok(t, "", "--json", "bench", "w2", "--tasks", "--count", "150", "--batch", "30", "--concurrency", "10")
	r := parseBench(t, out)
	if r.Workload != "w2" || r.Target != "pebble" || r.Count != 150 || r.PerSecond <= 0 || *r.DiskBytes <= 0 ||
		r.Extra["tasks_checked"] != 150.0 || r.Extra["queue_acked_total"] != 150.0 {
		t.Errorf("bench w2 --json: %+v", r)
	}
}

// TestBenchRuns: --runs runs the workload several times, each on a server
// of its own, and gives every run and the medians; a line on standard
// error follows each run.
func TestBenchRuns(t *testing.T) {
	t.Parallel()
	r := courierCmd(t.Context(), t, "", strings.NewReader(""), "--json", "bench", "w1", "--count", "60", "--batch", "10", "--runs", "3")
	if r.code != 0 {
		t.Fatalf("bench --runs 3: exit %d, stderr %q", r.code, r.stderr)
	}
	var out struct {
		Runs   []json.RawMessage `json:"runs"`
		Median struct {
			PerSecond float64            `json:"per_second"`
			Extra     map[string]float64 `json:"extra"`
		} `json:"median"`
		Min float64 `json:"per_second_min"`
		Max float64 `json:"per_second_max"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Runs) != 3 {
		t.Fatalf("bench --runs 3 --json printed %q: %v", r.stdout, err)
	}
	var rates []float64
	dirs := map[any]bool{}
	for _, raw := range out.Runs {
		run := parseBench(t, string(raw))
		if run.Count != 60 || run.Extra["queue_acked_total"] != 60.0 {
			t.Errorf("a run: %+v; want 60 messages acked on a server of its own", run)
		}
		rates = append(rates, run.PerSecond)
		dirs[run.Extra["data_dir"]] = true
	}
	slices.Sort(rates)
	if out.Median.PerSecond != rates[1] || out.Min != rates[0] || out.Max != rates[2] || out.Median.Extra["queue_acked_total"] != 60 {
		t.Errorf("median %+v, range %v–%v; want the middle of %v", out.Median, out.Min, out.Max, rates)
	}
	if len(dirs) != 3 {
		t.Errorf("data directories %v; want a fresh one per run", dirs)
	}
	for i := 1; i <= 3; i++ {
		if want := fmt.Sprintf("courier: run %d of 3: ", i); !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q has no %q", r.stderr, want)
		}
	}
	table := courierCmd(t.Context(), t, "", strings.NewReader(""), "bench", "w5", "--count", "100", "--batch", "10", "--runs", "2")
	if table.code != 0 {
		t.Fatalf("bench w5 --runs 2: exit %d, stderr %q", table.code, table.stderr)
	}
	for _, want := range []string{"w5: churn", "run 1", "run 2", "median", "range", "cycles/s", "(median)"} {
		if !strings.Contains(table.stdout, want) {
			t.Errorf("the table of --runs 2 has no %q:\n%s", want, table.stdout)
		}
	}
}

// TestBenchURL: with --url the workload runs against that server: its
// queue shows every message acked.
func TestBenchURL(t *testing.T) {
	t.Parallel()
	url := setup(t)
	out := ok(t, url, "--json", "bench", "churn", "--count", "200", "--batch", "10", "--backlog", "50", "--queue", "churned")
	r := parseBench(t, out)
	if r.Target != "url" || r.Count != 200 || *r.DiskBytes != 0 || len(r.Windows) != 10 {
		t.Errorf("bench w5 --url: %+v", r)
	}
	var q struct {
		Stats struct {
			AckedTotal int64 `json:"acked_total"`
			Ready      int64 `json:"ready"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(ok(t, url, "--json", "queue", "get", "churned")), &q); err != nil ||
		q.Stats.AckedTotal != 200 || q.Stats.Ready != 0 {
		t.Errorf("the server's queue after bench: %+v, %v; want 200 acked, none ready", q, err)
	}
}

// TestBenchPostgres runs w1 on an in-process node over PostgreSQL, with
// synchronous_commit on as in production.
func TestBenchPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, map[string]string{"synchronous_commit": "on"})
	r := parseBench(t, ok(t, "", "--json", "bench", "w1", "--store", dsn, "--count", "100", "--batch", "20"))
	if r.Target != "postgres" || r.Count != 100 || !strings.Contains(r.Durability, "committed") || r.Extra["queue_acked_total"] != 100.0 {
		t.Errorf("bench w1 --store: %+v", r)
	}
}

// TestBenchUsageErrors: bad flags exit 2 with one reason and run nothing
// (the URL given has no server, which would exit 3).
func TestBenchUsageErrors(t *testing.T) {
	t.Parallel()
	kept := filepath.Join(t.TempDir(), "never")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "wrong number of arguments (0)"},
		{[]string{"bench", "w7"}, `unknown workload "w7"`},
		{[]string{"bench", "w1", "--count", "-5"}, "--count -5: want at least 1"},
		{[]string{"bench", "w1", "--count", "0"}, "--count 0: want at least 1"},
		{[]string{"bench", "w1", "--batch", "1001"}, "--batch 1001"},
		{[]string{"bench", "w1", "--batch", "0"}, "--batch 0"},
		{[]string{"bench", "w1", "--producers", "-1"}, "--producers -1"},
		{[]string{"bench", "w1", "--size", "-1"}, "--size -1"},
		{[]string{"bench", "w3", "--rate", "0"}, "--rate 0"},
		{[]string{"bench", "w3", "--rate", "fast"}, `invalid argument "fast" for "--rate"`},
		{[]string{"bench", "w1", "--queue", "a/b"}, "--queue a/b"},
		{[]string{"bench", "w1", "--store", "postgres://x"}, "--store starts a server in this process; it cannot go with --url"},
		{[]string{"bench", "w1", "--data-dir", kept}, "--data-dir is for a server in this process"},
		{[]string{"bench", "w1", "--gc-heap-floor", "64MiB"}, "--gc-heap-floor is for a server in this process"},
		{[]string{"bench", "w1", "--gc-heap-floor", "-1"}, "--gc-heap-floor"},
		{[]string{"bench", "w1", "--runs", "0"}, "--runs 0: want at least 1"},
		{[]string{"bench", "w1", "--runs", "2", "--queue", "q"}, "it cannot go with --queue"},
	}
	for _, tc := range cases {
		r := courierCmd(t.Context(), t, "http://127.0.0.1:1", strings.NewReader(""), tc.args...)
		if r.code != exitUsage || r.stdout != "" || !strings.HasPrefix(r.stderr, "courier: ") || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("courier %s = %+v; want exit 2 and %q", strings.Join(tc.args, " "), r, tc.want)
		}
	}
	r := courierCmd(t.Context(), t, "", strings.NewReader(""), "bench", "w1", "--store", "mysql://x")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--store: want a postgres:// URL") {
		t.Errorf("bench --store mysql://x = %+v; want exit 2", r)
	}
	r = courierCmd(t.Context(), t, "", strings.NewReader(""), "bench", "w1", "--runs", "2", "--data-dir", kept)
	if r.code != exitUsage || !strings.Contains(r.stderr, "it cannot go with --data-dir") {
		t.Errorf("bench --runs 2 --data-dir = %+v; want exit 2", r)
	}
	if _, err := os.Stat(kept); !os.IsNotExist(err) {
		t.Errorf("a refused bench made its data directory: %v", err)
	}
}

// TestBenchGCFloor: the in-process server runs with serve's collection
// floor unless told otherwise, and the result says which. Not parallel:
// the floor is one per process, and parallel tests would hold it.
func TestBenchGCFloor(t *testing.T) {
	if gcFloorDefault != "64MiB" || gcfloor.DefaultFloor != 64<<20 {
		t.Fatalf("the flag's default %q is not gcfloor.DefaultFloor %d", gcFloorDefault, gcfloor.DefaultFloor)
	}
	for _, c := range []struct {
		args []string
		want float64
	}{
		{nil, 64 << 20},
		{[]string{"--gc-heap-floor", "32MiB"}, 32 << 20},
		{[]string{"--gc-heap-floor", "0"}, 0},
	} {
		args := append([]string{"--json", "bench", "w1", "--count", "20", "--batch", "10"}, c.args...)
		r := parseBench(t, ok(t, "", args...))
		if got := r.Extra["gc_heap_floor_bytes"]; got != c.want {
			t.Errorf("bench %v: gc_heap_floor_bytes %v, want %v", c.args, got, c.want)
		}
	}
}

// TestBenchNotes: a flag the workload does not use is named on stderr, and
// the run goes on; an unreachable --url exits 3.
func TestBenchNotes(t *testing.T) {
	t.Parallel()
	r := courierCmd(t.Context(), t, "", strings.NewReader(""), "--json", "bench", "w6", "--count", "20", "--producers", "3", "--concurrency", "4")
	if r.code != 0 || !strings.Contains(r.stderr, "--producers does not apply to w6; ignored") {
		t.Errorf("bench w6 --producers: exit %d, stderr %q", r.code, r.stderr)
	}
	if p := parseBench(t, r.stdout).Params; p["producers"] != 0.0 || p["concurrency"] != 4.0 {
		t.Errorf("params in effect %v; want producers 0, concurrency 4", p)
	}
	r = courierCmd(t.Context(), t, "", strings.NewReader(""), "--json", "bench", "w3", "--count", "20", "--rate", "2000", "--worker", "--carry-acks")
	if r.code != 0 || !strings.Contains(r.stderr, "--carry-acks does not apply with --worker") {
		t.Errorf("bench w3 --worker --carry-acks: exit %d, stderr %q", r.code, r.stderr)
	}
	if p := parseBench(t, r.stdout).Params; p["carry_acks"] != nil || p["worker"] != true {
		t.Errorf("params in effect %v; want worker and no carry_acks", p)
	}
	r = courierCmd(t.Context(), t, "", strings.NewReader(""), "--json", "bench", "w1", "--count", "20", "--batch", "1", "--carry-acks")
	if r.code != 0 || !strings.Contains(r.stderr, "--carry-acks does not apply with --batch 1") {
		t.Errorf("bench w1 --batch 1 --carry-acks: exit %d, stderr %q", r.code, r.stderr)
	}
	if p := parseBench(t, r.stdout).Params; p["carry_acks"] != nil {
		t.Errorf("params in effect %v; want no carry_acks", p)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	r = courierCmd(t.Context(), t, "", nil, "--url", url, "bench", "w1", "--count", "10")
	if r.code != exitUnreachable || !strings.Contains(r.stderr, "cannot reach the server") {
		t.Errorf("bench against a closed port: %+v; want exit 3", r)
	}
}

func TestIsTerminal(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(&strings.Builder{}) || isTerminal(f) {
		t.Error("a buffer or a regular file taken for a terminal")
	}
}
