package pgtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// current is the server of this test binary, set by WithServer's Run.
var current *Server

// TestingM is what testing.M and goleak.VerifyTestMain share.
type TestingM interface{ Run() int }

type withServer struct{ m TestingM }

// WithServer wraps m so that its Run starts a server first and stops it
// after the tests: one server per package test binary. A server that cannot
// start fails the run (exit code 1) with the reason; nothing is skipped.
func WithServer(m TestingM) TestingM { return withServer{m} }

func (w withServer) Run() int {
	s, err := Start(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: cannot start PostgreSQL for the tests:", err)
		return 1
	}
	current = s
	code := w.m.Run()
	current = nil
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: stop:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// server returns this binary's server, failing t when there is none.
func server(t testing.TB) *Server {
	t.Helper()
	if current == nil {
		t.Fatal("pgtest: no server: TestMain must run the tests through pgtest.WithServer")
	}
	return current
}

// Schema creates a fresh, empty schema for t, dropped when t ends, and
// returns a connection string whose search_path is that schema.
func Schema(t testing.TB) string {
	t.Helper()
	s := server(t)
	name := newSchemaName(t.Name())
	run1(t, s.DSN(), "CREATE SCHEMA "+name)
	t.Cleanup(func() { run1(t, s.DSN(), "DROP SCHEMA "+name+" CASCADE") })
	return s.dsn(dbName, name)
}

// Database creates a fresh database for t, with the given per-database
// settings (ALTER DATABASE … SET name = value), dropped when t ends, and
// returns its connection string.
func Database(t testing.TB, settings map[string]string) string {
	t.Helper()
	s := server(t)
	name := newSchemaName(t.Name())
	admin := s.dsn("postgres", "")
	run1(t, admin, "CREATE DATABASE "+name)
	for k, v := range settings {
		run1(t, admin, fmt.Sprintf("ALTER DATABASE %s SET %s = '%s'", name, k, strings.ReplaceAll(v, "'", "''")))
	}
	t.Cleanup(func() { run1(t, admin, "DROP DATABASE "+name+" WITH (FORCE)") })
	return s.dsn(name, "")
}

// DSN is the connection string of the package's test database (schema
// public), for tests that manage schemas themselves.
func DSN(t testing.TB) string {
	t.Helper()
	return server(t).DSN()
}

// run1 runs one statement on a connection of its own.
func run1(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}
