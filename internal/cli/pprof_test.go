package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServePprof: --pprof serves the profiles on a listener of its own,
// named on the third line; the API's listener does not serve them, and the
// profile listener is closed when the server stops.
func TestServePprof(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var errb strings.Builder
	go func() {
		e := &env{stdin: strings.NewReader(""), stdout: pw, stderr: &errb, getenv: func(string) string { return "" }}
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--log-level", "error",
			"--data", t.TempDir(), "--pprof", "127.0.0.1:0"}, e)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var lines []string
	for len(lines) < 3 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 3 {
		cancel()
		t.Fatalf("serve printed %q; exit %d, stderr %q", lines, <-done, errb.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	api, _ := strings.CutPrefix(lines[0], "courier listening on ")
	prof, ok := strings.CutPrefix(lines[2], "profiles on ")
	if !ok || !strings.HasPrefix(prof, "http://127.0.0.1:") {
		t.Fatalf("third line %q does not say where the profiles are", lines[2])
	}
	body, code := get(t, prof+"goroutine?debug=1")
	if code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %d %.200q", code, body)
	}
	if _, code := get(t, prof+"heap"); code != 200 {
		t.Errorf("heap profile: %d", code)
	}
	// The mutex and block profiles sample while --pprof is on.
	if body, _ := get(t, prof+"mutex?debug=1"); !strings.Contains(body, fmt.Sprintf("sampling period=%d", mutexFraction)) {
		t.Errorf("mutex profile not sampling: %.200q", body)
	}
	if _, code := get(t, api+"/debug/pprof/goroutine?debug=1"); code != 404 {
		t.Errorf("the API listener answered %d for a profile; want 404", code)
	}
	cancel()
	if c := <-done; c != 0 {
		t.Fatalf("serve exited %d, stderr %q", c, errb.String())
	}
	if resp, err := http.Get(prof); err == nil {
		resp.Body.Close()
		t.Errorf("profile listener still answers after the stop")
	}
}

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return string(b), resp.StatusCode
}

// TestServePprofLoopbackOnly: profiles are never offered beyond loopback;
// a bad address is a usage error and nothing starts.
func TestServePprofLoopbackOnly(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "10.1.2.3:6060", "example.com:6060", "localhost:6060", "6060", "[::]:6060"} {
		r := courierCmd(t.Context(), t, "", strings.NewReader(""), "serve", "--data", t.TempDir(), "--pprof", addr)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--pprof") {
			t.Errorf("--pprof %s: exit %d stderr %q; want exit 2 naming --pprof", addr, r.code, r.stderr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "127.3.4.5:0"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("checkLoopback(%q) = %v; want accepted", addr, err)
		}
	}
}

// TestBenchCPUProfile: --cpuprofile leaves a CPU profile (gzipped protocol
// buffers, which go tool pprof reads) of the run.
func TestBenchCPUProfile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cpu.prof")
	ok(t, "", "--json", "bench", "w1", "--count", "200", "--batch", "20", "--cpuprofile", path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 100 || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Fatalf("profile of %d bytes, starting %x: want a gzipped profile", len(b), b[:min(len(b), 4)])
	}
	r := courierCmd(t.Context(), t, "", strings.NewReader(""), "bench", "w1", "--count", "10",
		"--cpuprofile", filepath.Join(t.TempDir(), "missing", "cpu.prof"))
	if r.code == 0 || !strings.Contains(r.stderr, "--cpuprofile") {
		t.Errorf("unwritable --cpuprofile: %+v; want a failure naming the flag", r)
	}
}

// TestBenchTrace: --trace leaves an execution trace of the run, with the
// regions of the HTTP handlers and of the store's commit in it; with
// --cpuprofile too, both files are written. Not parallel: a process has
// one CPU profile and one trace at a time, and TestBenchCPUProfile is.
func TestBenchTrace(t *testing.T) {
	dir := t.TempDir()
	tr, prof := filepath.Join(dir, "run.trace"), filepath.Join(dir, "cpu.prof")
	ok(t, "", "--json", "bench", "w1", "--count", "200", "--batch", "20", "--trace", tr, "--cpuprofile", prof)
	b, err := os.ReadFile(tr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Fatalf("trace of %d bytes, starting %q: want Go's trace header", len(b), b[:min(len(b), 16)])
	}
	// Region names are in the trace's string table.
	for _, region := range []string{"http POST /v1/queues/{queue}/messages", "store commit", "store fsync"} {
		if !bytes.Contains(b, []byte(region)) {
			t.Errorf("the trace has no region %q", region)
		}
	}
	if st, err := os.Stat(prof); err != nil || st.Size() < 100 {
		t.Errorf("with --trace, --cpuprofile's file: %v, %v", st, err)
	}
	r := courierCmd(t.Context(), t, "", strings.NewReader(""), "bench", "w1", "--count", "10",
		"--trace", filepath.Join(t.TempDir(), "missing", "run.trace"))
	if r.code == 0 || !strings.Contains(r.stderr, "--trace") {
		t.Errorf("unwritable --trace: %+v; want a failure naming the flag", r)
	}
}
