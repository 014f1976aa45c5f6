package pgtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/courierhq/courier/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.WithServer(m)) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Two schemas are isolated: a table made in one is not seen from the other.
func TestSchemasAreIsolated(t *testing.T) {
	ctx := context.Background()
	a := connect(t, pgtest.Schema(t))
	b := connect(t, pgtest.Schema(t))
	if _, err := a.Exec(ctx, "CREATE TABLE x (v int); INSERT INTO x VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := a.QueryRow(ctx, "SELECT count(*) FROM x").Scan(&n); err != nil || n != 1 {
		t.Fatalf("count in a = %d, %v; want 1", n, err)
	}
	if _, err := b.Exec(ctx, "SELECT * FROM x"); err == nil {
		t.Fatal("table of schema a visible from schema b")
	}
}

// The server is the one the harness promises: not running as root, with
// fsync on, and a database can turn synchronous_commit back on.
func TestServerSettings(t *testing.T) {
	ctx := context.Background()
	conn := connect(t, pgtest.DSN(t))
	var fsync, user string
	if err := conn.QueryRow(ctx, "SELECT current_setting('fsync'), current_user").Scan(&fsync, &user); err != nil {
		t.Fatal(err)
	}
	if fsync != "on" || user != "postgres" {
		t.Errorf("fsync %q, user %q; want on, postgres", fsync, user)
	}
	db := connect(t, pgtest.Database(t, map[string]string{"synchronous_commit": "on"}))
	var sc string
	if err := db.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sc); err != nil || sc != "on" {
		t.Errorf("synchronous_commit in the new database = %q, %v; want on", sc, err)
	}
}

// Without PostgreSQL's binaries, Start fails with a reason (and
// WithServer's Run then fails the package), never skips.
func TestStartFailsWithoutBinaries(t *testing.T) {
	t.Setenv("COURIER_PG_BIN", t.TempDir())
	s, err := pgtest.Start(context.Background())
	if err == nil {
		s.Stop()
		t.Fatal("Start succeeded without binaries")
	}
	if !strings.Contains(err.Error(), "initdb") {
		t.Errorf("error %q does not name what failed", err)
	}
}
