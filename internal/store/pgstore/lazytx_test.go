package pgstore

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/courierhq/courier/internal/pgtest"
)

// A transaction's last statements go out with its COMMIT: when one of them
// fails, nothing of the transaction stays, the error is the server's (not
// an unknown outcome), and the connection goes back to the pool usable.
func TestLazyTxCommitAfter(t *testing.T) {
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE lazy (n int)`); err != nil {
		t.Fatal(err)
	}
	run := func(last string) error {
		t.Helper()
		tx, err := beginLazy(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO lazy VALUES (1)`)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
		end := &pgx.Batch{}
		end.Queue(last)
		return tx.CommitAfter(ctx, end)
	}
	var pgErr *pgconn.PgError
	if err := run(`SELECT 1/0`); !errors.As(err, &pgErr) || pgErr.Code != "22012" {
		t.Fatalf("CommitAfter with a failing statement: %v, want division_by_zero", err)
	}
	if err := commitErr(run(`SELECT 1/0`)); !errors.As(err, &pgErr) {
		t.Fatalf("classified as %v, want the server's error", err)
	}
	if err := run(`SELECT 1`); err != nil {
		t.Fatalf("CommitAfter: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM lazy`).Scan(&n); err != nil || n != 1 {
		t.Errorf("rows %d (%v), want 1: only the committed transaction's", n, err)
	}
	if st := pool.Stat(); st.AcquiredConns() != 0 {
		t.Errorf("%d connections still acquired", st.AcquiredConns())
	}
	// A transaction that did nothing commits without a round trip.
	tx, err := beginLazy(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.CommitAfter(ctx, &pgx.Batch{}); err != nil || tx.begun {
		t.Errorf("empty CommitAfter: %v, begun %v", err, tx.begun)
	}
}
