package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/internal/pgtest"
	"github.com/courierhq/courier/internal/server"
)

// The PostgreSQL tests (postgres_test.go) share one throwaway server.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.WithServer(m))
}

// setup starts a real server for the test and returns its URL.
func setup(t *testing.T) string {
	t.Helper()
	s, err := server.Start(t.Context(), server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("stop server: %v", err)
		}
	})
	return s.URL()
}

// result is what a run of the command line left behind.
type result struct {
	code           int
	stdout, stderr string
}

// courierCmd runs the command line in-process against the server at url
// (given as COURIER_URL), with stdin as its standard input.
func courierCmd(ctx context.Context, t *testing.T, url string, stdin io.Reader, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: stdin, stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "COURIER_URL" {
			return url
		}
		return ""
	}}
	code := run(ctx, args, e)
	return result{code, out.String(), errb.String()}
}

// ok runs a command that must succeed and returns its stdout.
func ok(t *testing.T, url string, args ...string) string {
	t.Helper()
	r := courierCmd(t.Context(), t, url, strings.NewReader(""), args...)
	if r.code != 0 {
		t.Fatalf("courier %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}
