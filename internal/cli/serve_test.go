package cli

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/server"
)

// startServe runs `courier serve` in-process on a free port and data dir,
// and returns its URL and a stop function that waits for a clean exit.
func startServe(t *testing.T, data string) (string, func()) {
	t.Helper()
	return startServeWith(t, nil, "data in "+data, "--data", data)
}

// startServeWith runs `courier serve` with args (and environment
// variables vars) and checks that its second line is second.
func startServeWith(t *testing.T, vars map[string]string, second string, args ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var errb strings.Builder
	go func() {
		e := &env{stdin: strings.NewReader(""), stdout: pw, stderr: &errb, getenv: func(k string) string { return vars[k] }}
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "error"}, args...), e)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		cancel()
		t.Fatalf("serve printed nothing; exit %d, stderr %q", <-done, errb.String())
	}
	line := sc.Text()
	url, ok := strings.CutPrefix(line, "courier listening on ")
	if !ok {
		t.Fatalf("first line %q does not say where it listens", line)
	}
	if !sc.Scan() || sc.Text() != second {
		t.Fatalf("second line %q does not say where the data is (%q)", sc.Text(), second)
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(pr); rest <- string(b) }()
	return url, func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d, stderr %q", code, errb.String())
		}
		if out := <-rest; !strings.Contains(out, "courier stopped") {
			t.Errorf("serve did not report a clean stop: %q", out)
		}
	}
}

// TestServeRestartKeepsMessages starts the server, sends, stops it cleanly
// (as SIGINT does), starts it again on the same data and receives.
func TestServeRestartKeepsMessages(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	url, stop := startServe(t, data)
	resp, err := http.Get(url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	id := strings.TrimSpace(ok(t, url, "send", "jobs", `{"n":1}`))
	stop()

	url, stop = startServe(t, data)
	defer stop()
	out := ok(t, url, "--json", "recv", "jobs", "--ack")
	if !strings.Contains(out, id) || !strings.Contains(strings.Join(strings.Fields(out), ""), `"n":1`) {
		t.Fatalf("after restart, recv printed %q; want message %s", out, id)
	}
}

func TestServeBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"serve", "--addr", "nonsense"},
		{"serve", "--log-level", "loud"},
		{"serve", "--log-format", "xml"},
		{"serve", "--max-request-bytes", "lots"},
		{"serve", "--min-free-disk", "-1"},
		{"serve", "--shutdown-timeout", "0s"},
		{"serve", "--gc-heap-floor", "lots"},
		{"serve", "--task-cache", "-1"},
		{"serve", "--task-cache", "1.5GiB"},
		{"serve", "extra"},
		{"serve", "--pg-max-conns", "4"}, // without --store
		{"serve", "--store", "postgres://h/db", "--pg-max-conns", "-1"},
		{"serve", "--store", "postgres://h/db", "--pg-rotate-size", "10KiB"},
		{"serve", "--store", "postgres://h/db", "--pg-rotate-size", "big"},
		{"serve", "--store", "postgres://h/db", "--pg-rotate-every", "10ms"},
		{"serve", "--store", "postgres://h/db", "--pg-rotate-every", "-1m"},
		{"serve", "--store", "postgres://h/db", "--pg-rotate-every", "soon"},
	} {
		r := courierCmd(t.Context(), t, "", strings.NewReader(""), append(args, "--data", t.TempDir())...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "courier:") {
			t.Errorf("%v: exit %d stderr %q; want exit 2 with a message", args, r.code, r.stderr)
		}
	}
}

// TestServePGConfig checks that the --pg-* flags reach the store's
// options, 0 meaning never.
func TestServePGConfig(t *testing.T) {
	for _, c := range []struct {
		f    serveFlags
		want server.PGConfig
	}{
		{serveFlags{}, server.PGConfig{}},
		{serveFlags{store: "postgres://h/db"}, server.PGConfig{}},
		{serveFlags{store: "postgres://h/db", pgMaxConns: 40, pgRotateSize: "256MiB", pgRotateEvery: "1h"},
			server.PGConfig{MaxConns: 40, RotateBytes: 256 << 20, RotateEvery: time.Hour}},
		{serveFlags{store: "postgres://h/db", pgRotateSize: "0", pgRotateEvery: "0"},
			server.PGConfig{RotateBytes: -1, RotateEvery: -1}},
	} {
		got, err := c.f.pgConfig()
		if err != nil || got != c.want {
			t.Errorf("%+v: got %+v, %v; want %+v", c.f, got, err, c.want)
		}
	}
}

// TestServeTaskCache: --task-cache reaches the server's config; 0 means
// the default, as for the other sizes.
func TestServeTaskCache(t *testing.T) {
	t.Parallel()
	f := serveFlags{addr: "127.0.0.1:0", data: t.TempDir(), logLevel: "error", logFormat: "text",
		maxRequest: "1MiB", minFree: "1MiB", cache: "1MiB", shutdownTimeout: 1}
	for in, want := range map[string]int64{"256MiB": 256 << 20, "1048576": 1 << 20, "0": 32 << 20} {
		f.taskCache = in
		cfg, err := f.config(io.Discard)
		if err != nil || cfg.WithDefaults().TaskCacheBytes != want {
			t.Errorf("--task-cache %s: %d, %v; want %d", in, cfg.WithDefaults().TaskCacheBytes, err, want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]uint64{"1024": 1024, "512KiB": 512 << 10, "64MiB": 64 << 20, "2GiB": 2 << 30, "7B": 7} {
		if got, err := parseBytes("--x", in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5GiB", "-3", "99999999999TiB"} {
		if _, err := parseBytes("--x", in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}
