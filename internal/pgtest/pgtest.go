// Package pgtest runs a throwaway PostgreSQL server for the tests of one
// package: TestMain starts it (initdb into a temporary directory, postgres on
// a unix socket there), every test gets its own schema in it, and the server
// is stopped and its directory removed when the package's tests end.
//
// It never skips: when PostgreSQL cannot be found or started, the package's
// tests fail with the reason. `make test` installs Debian's PostgreSQL when
// it is missing (see .ci/ensure-postgres).
//
// When the tests run as root (as in CI), initdb and postgres run as the
// "postgres" user, since PostgreSQL refuses to run as root.
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.WithServer(m)) }
//
//	func TestX(t *testing.T) {
//		dsn := pgtest.Schema(t) // a fresh, empty schema, dropped at the end
//		…
//	}
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL server in a temporary directory.
type Server struct {
	dir     string // the temporary directory: data/, sock/, log
	sockDir string
	bin     string
	cred    *syscall.Credential
	cmd     *exec.Cmd
	exited  chan struct{} // closed when postgres exits
	waitErr error         // postgres's exit status, set before exited closes
}

// dbName is the database every schema lives in.
const dbName = "courier_test"

// Start initialises and starts a server; Stop ends it. It costs a couple of
// seconds (initdb dominates).
func Start(ctx context.Context) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "courier-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, sockDir: filepath.Join(dir, "sock"), bin: bin, cred: cred}
	if err := s.prepare(cred); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.initdb(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.ready(ctx, true); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Restart stops the server (fast shutdown: sessions are cut) and starts it
// again on the same data, as an operator's restart does.
func (s *Server) Restart(ctx context.Context) error {
	s.halt()
	if err := s.start(); err != nil {
		return err
	}
	return s.ready(ctx, false)
}

// prepare makes the directories, owned by the user postgres runs as. The
// temporary directory is made traversable (MkdirTemp makes it 0700), so that
// the postgres user can reach its data and socket directories.
func (s *Server) prepare(cred *syscall.Credential) error {
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return err
	}
	for _, d := range []string{filepath.Join(s.dir, "data"), s.sockDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
		if cred != nil {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				return err
			}
		}
	}
	return nil
}

// initdb initialises the cluster.
func (s *Server) initdb(ctx context.Context) error {
	initdb := exec.CommandContext(ctx, filepath.Join(s.bin, "initdb"), "-D", filepath.Join(s.dir, "data"), "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	initdb.Dir = s.dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	return nil
}

// start starts postgres as a child process that dies with the test binary
// (Pdeathsig), so a killed test leaks no server.
func (s *Server) start() error {
	logf, err := os.OpenFile(filepath.Join(s.dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	// fsync stays on, so that stores that refuse an unsafe server accept
	// this one; synchronous_commit is off (per database it can be turned
	// back on) because tests need not survive a power cut, and it makes
	// every commit cheap on a busy machine.
	s.cmd = exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-k", s.sockDir, "-c", "listen_addresses=", "-c", "max_connections=300",
		"-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB", "-c", "log_min_messages=warning")
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited, cmd := make(chan struct{}), s.cmd
	s.exited = exited
	go func() {
		s.waitErr = cmd.Wait()
		close(exited)
	}()
	return nil
}

// ready waits until the server accepts connections, then (first) creates
// the test database. Waiting means trying to connect, with a short backoff:
// the server offers no other signal that it is ready.
func (s *Server) ready(ctx context.Context, first bool) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		conn, err := pgx.Connect(ctx, s.dsn("postgres", ""))
		if err == nil {
			if first {
				_, err = conn.Exec(ctx, "CREATE DATABASE "+dbName)
			}
			conn.Close(ctx)
			if err != nil {
				return fmt.Errorf("pgtest: create database: %w", err)
			}
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-s.exited:
			t.Stop()
			return fmt.Errorf("pgtest: postgres exited (%v) before accepting connections:\n%s", s.waitErr, s.logTail())
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("pgtest: postgres not ready (%v):\n%s", err, s.logTail())
		case <-t.C:
		}
	}
}

// Stop shuts the server down (fast shutdown: sessions are ended) and removes
// its directory. Safe to call more than once.
func (s *Server) Stop() error {
	s.halt()
	return os.RemoveAll(s.dir)
}

// halt stops postgres and waits for it to exit.
func (s *Server) halt() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	}
}

// DSN is the connection string of the test database (schema public).
func (s *Server) DSN() string { return s.dsn(dbName, "") }

// dsn is a postgres:// URL (the form courier's --store takes) of database
// db on the server's socket, with search_path schema if not empty.
func (s *Server) dsn(db, schema string) string {
	q := url.Values{"host": {s.sockDir}, "sslmode": {"disable"}}
	if schema != "" {
		q.Set("search_path", schema)
	}
	return "postgres://postgres@/" + db + "?" + q.Encode()
}

// logTail is the end of the server's log, for error messages.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// binDir finds PostgreSQL's server binaries: $COURIER_PG_BIN, else the
// newest of Debian's /usr/lib/postgresql/*/bin.
func binDir() (string, error) {
	if d := os.Getenv("COURIER_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("pgtest: PostgreSQL not found (no /usr/lib/postgresql/*/bin/postgres and no $COURIER_PG_BIN); " +
		"`make test` installs it on Debian (.ci/ensure-postgres), or run: apt-get install postgresql")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// credential is whom to run postgres as: nil (ourselves) unless we are
// root, then the postgres user that Debian's package creates.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and PostgreSQL refuses to; no postgres user to run it as: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// schemaSeq numbers the schemas of one test binary.
var schemaSeq atomic.Int64

// newSchemaName is a name no other schema of this server has.
func newSchemaName(prefix string) string {
	p := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(prefix))
	if len(p) > 40 {
		p = p[:40]
	}
	return fmt.Sprintf("t%d_%s", schemaSeq.Add(1), p)
}
