package cli

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUsageErrors: bad flags and arguments exit 2 with a one-line reason and
// a pointer to help, before anything is sent (no server runs here).
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "courier"`},
		{[]string{"quee"}, `did you mean "queue"?`},
		{[]string{"queue", "bogus"}, `unknown command "bogus" for "courier queue"`},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"queue", "get"}, "wrong number of arguments (0); usage: courier queue get NAME"},
		{[]string{"queue", "get", "a", "b"}, "wrong number of arguments (2)"},
		{[]string{"queue", "ls", "extra"}, "wrong number of arguments (1)"},
		{[]string{"queue", "create", "q", "--max-attempts", "many"}, `invalid argument "many" for "--max-attempts"`},
		{[]string{"queue", "create", "q", "--retention", "5"}, `missing unit in duration "5"`},
		{[]string{"send"}, "wrong number of arguments (0)"},
		{[]string{"send", "q", "a", "b"}, "wrong number of arguments (3)"},
		{[]string{"send", "q", "--header", "novalue", "1"}, `--header "novalue" is not key=value`},
		{[]string{"send", "q", "--header", "=v", "1"}, `--header "=v" is not key=value`},
		{[]string{"send", "q", "--base64", "--string", "x"}, "--base64 and --string exclude each other"},
		{[]string{"send", "q", "--priority", "high", "1"}, `invalid argument "high" for "--priority"`},
		{[]string{"recv", "q", "--wait", "5"}, `missing unit in duration "5"`},
		{[]string{"recv", "q", "--max", "-"}, `invalid argument "-" for "--max"`},
		{[]string{"ack", "q"}, "wrong number of arguments (1)"},
		{[]string{"nack", "q", "l", "--delay", "soon"}, `invalid argument "soon" for "--delay"`},
		{[]string{"extend", "q"}, "wrong number of arguments (1)"},
		{[]string{"--url", "localhost:7070", "queue", "ls"}, `--url "localhost:7070" is not an http:// or https:// URL`},
		{[]string{"--url", "http://%zz", "queue", "ls"}, "is not an http:// or https:// URL"},
	}
	for _, tc := range cases {
		r := courierCmd(t.Context(), t, "http://127.0.0.1:1", strings.NewReader(""), tc.args...)
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if r.code != exitUsage || r.stdout != "" || len(lines) != 2 ||
			!strings.HasPrefix(lines[0], "courier: ") || !strings.Contains(lines[0], tc.want) ||
			!strings.HasSuffix(lines[1], "--help' for usage.") {
			t.Errorf("courier %s = %+v; want exit 2, %q and a pointer to --help", strings.Join(tc.args, " "), r, tc.want)
		}
	}
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	for _, args := range [][]string{{"queue", "ls"}, {"send", "q", "1"}, {"recv", "q", "--wait", "1s"}} {
		r := courierCmd(t.Context(), t, "", nil, append([]string{"--url", url}, args...)...)
		if r.code != exitUnreachable || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 ||
			!strings.HasPrefix(r.stderr, "courier: cannot reach the server at "+url+": ") {
			t.Errorf("%v against a closed port = %+v; want exit 3 and one clear line", args, r)
		}
	}
}

// TestEnvironment: COURIER_URL and COURIER_TOKEN are defaults that flags override.
func TestEnvironment(t *testing.T) {
	t.Parallel()
	auth := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"queues":[]}`))
	}))
	defer srv.Close()
	vars := map[string]string{"COURIER_URL": srv.URL, "COURIER_TOKEN": "from-env"}
	run1 := func(args ...string) {
		t.Helper()
		var out, errb strings.Builder
		e := &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
		if code := run(t.Context(), args, e); code != 0 {
			t.Fatalf("courier %v: exit %d, %s", args, code, errb.String())
		}
	}
	run1("queue", "ls")
	if got := <-auth; got != "Bearer from-env" {
		t.Errorf("with COURIER_TOKEN, Authorization = %q", got)
	}
	run1("--token", "from-flag", "queue", "ls")
	if got := <-auth; got != "Bearer from-flag" {
		t.Errorf("with --token, Authorization = %q", got)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"--help"}, {"queue"}, {"send", "--help"}} {
		r := courierCmd(t.Context(), t, "", nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || r.stderr != "" {
			t.Errorf("courier %v = %+v; want help on stdout", args, r)
		}
	}
	r := courierCmd(t.Context(), t, "", nil, "--help")
	if !strings.Contains(r.stdout, "Exit codes:") {
		t.Errorf("courier --help does not document the exit codes:\n%s", r.stdout)
	}
	r = courierCmd(t.Context(), t, "", nil, "send", "--help")
	if !strings.Contains(r.stdout, "valid JSON is sent as JSON") {
		t.Errorf("courier send --help does not document the body rule:\n%s", r.stdout)
	}
}
