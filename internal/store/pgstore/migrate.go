package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The schema's migrations, embedded in the binary: migrations/NNNN_name.sql,
// applied in order of NNNN, each in its own transaction, each recorded in
// courier_schema_migrations. A migration, once released, never changes.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one step of the schema.
type Migration struct {
	Version int
	Name    string
	sql     string
}

// Migrations lists the schema's migrations in order.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", n)
		}
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %d (%s): versions must run 1, 2, 3… without gaps", m.Version, m.Name)
		}
	}
	return out, nil
}

// latestVersion is the schema version this binary works with.
func latestVersion() int {
	ms, err := Migrations()
	if err != nil || len(ms) == 0 {
		panic(fmt.Sprintf("pgstore: embedded migrations: %v", err)) // a build error, caught by any test
	}
	return ms[len(ms)-1].Version
}

// migrateLockSQL takes the session-level advisory lock that serialises
// migrations of one schema, so that several nodes starting at once with
// --migrate apply each migration exactly once: the first takes the lock and
// migrates, the others wait, then find nothing left to do.
const migrateLockSQL = `SELECT pg_advisory_lock(hashtextextended('courier.migrate.' || current_schema(), 0))`
const migrateUnlockSQL = `SELECT pg_advisory_unlock(hashtextextended('courier.migrate.' || current_schema(), 0))`

// Migrate applies the migrations that the database at dsn lacks, and returns
// the versions it applied (none when the schema is up to date). It is safe
// to run from several processes at once.
func Migrate(ctx context.Context, dsn string) ([]int, error) { return migrate(ctx, dsn, 0) }

// migrate applies the missing migrations up to version upTo (0: all).
func migrate(ctx context.Context, dsn string, upTo int) ([]int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, migrateLockSQL); err != nil {
		return nil, fmt.Errorf("migrate: lock: %w", err)
	}
	// The lock is the session's: it ends with the connection, also if the
	// unlock below is never reached.
	defer conn.Exec(context.WithoutCancel(ctx), migrateUnlockSQL) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS courier_schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	have, err := appliedVersion(ctx, conn)
	if err != nil {
		return nil, err
	}
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	if have > len(ms) {
		return nil, fmt.Errorf("migrate: the database's schema is at version %d, newer than this binary's %d", have, len(ms))
	}
	if upTo > 0 && upTo < len(ms) {
		ms = ms[:upTo]
	}
	var applied []int
	for _, m := range ms[min(have, len(ms)):] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO courier_schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migrate: version %d (%s): %w", m.Version, m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// querier is what a connection, a pool and a transaction share.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// appliedVersion is the schema's version: 0 before any migration.
func appliedVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM courier_schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
