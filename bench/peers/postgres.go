package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is a throwaway PostgreSQL server in a temporary directory, on a
// unix socket there (no TCP port at all). It is configured as an operator
// who wants durability would leave it: fsync, synchronous_commit and
// full_page_writes on (the defaults), so every commit River or courier
// waits for is on disk.
type pgServer struct {
	dir, sockDir string
	proc         *child
}

// startPostgres initialises and starts a server; stop ends it and removes
// its directory. The binaries are $COURIER_PG_BIN or the newest of
// Debian's /usr/lib/postgresql/*/bin (run.sh installs them when missing).
func startPostgres(ctx context.Context, tmp string) (*pgServer, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	s := &pgServer{dir: filepath.Join(tmp, "postgres")}
	s.sockDir = filepath.Join(s.dir, "sock")
	data := filepath.Join(s.dir, "data")
	// The run's temporary directory must be traversable by the postgres
	// user, who owns only the directories below it.
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	for _, d := range []string{data, s.sockDir} {
		if err := mkdirOwned(d, cred); err != nil {
			return nil, err
		}
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions",
		"--no-sync") // initdb's own files only; the server syncs as usual
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = s.dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// max_connections: courier's nodes and River's pool together stay far
	// below it. Nothing about durability is changed.
	s.proc, err = startChild("postgres", filepath.Join(bin, "postgres"), []string{"-D", data,
		"-k", s.sockDir, "-c", "listen_addresses=", "-c", "max_connections=300",
		"-c", "log_min_messages=warning"}, s.dir, filepath.Join(s.dir, "log"), cred, syscall.SIGQUIT)
	if err != nil {
		return nil, err
	}
	if err := s.ready(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// ready waits until the server accepts connections. Trying to connect is
// the only signal PostgreSQL gives.
func (s *pgServer) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		conn, err := pgx.Connect(ctx, s.dsn("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.proc.exited:
			return fmt.Errorf("postgres exited (%v) before accepting connections:\n%s", s.proc.waitErr, s.proc.logTail())
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready (%v):\n%s", err, s.proc.logTail())
		case <-time.After(wait):
		}
	}
}

// createDB makes an empty database and returns its URL.
func (s *pgServer) createDB(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.dsn(name), nil
}

// dsn is a postgres:// URL (the form courier's --store takes) of database
// db on the server's socket.
func (s *pgServer) dsn(db string) string {
	q := url.Values{"host": {s.sockDir}, "sslmode": {"disable"}}
	return "postgres://postgres@/" + db + "?" + q.Encode()
}

// stop shuts the server down (fast shutdown) and removes its directory.
func (s *pgServer) stop() {
	s.proc.stop(syscall.SIGINT)
	_ = os.RemoveAll(s.dir)
}

// pgBinDir finds PostgreSQL's server binaries.
func pgBinDir() (string, error) {
	if d := os.Getenv("COURIER_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(binDir string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
		return n
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin or $COURIER_PG_BIN); run.sh installs them")
}
