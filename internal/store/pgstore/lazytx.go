package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// txConn is what a verb's transaction runs statements on.
type txConn interface {
	queryer
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// lazyTx is a transaction on a connection of the pool whose BEGIN goes out
// with its first statements: in a batch, as the batch's first statement, so
// that a verb that starts with a batch (lease, ack) saves a round trip,
// which costs more than most of its statements. pgx's own transactions send
// BEGIN alone.
type lazyTx struct {
	conn  *pgxpool.Conn
	begun bool
}

func beginLazy(ctx context.Context, pool *pgxpool.Pool) (*lazyTx, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &lazyTx{conn: conn}, nil
}

func (l *lazyTx) begin(ctx context.Context) error {
	if l.begun {
		return nil
	}
	if _, err := l.conn.Exec(ctx, "begin"); err != nil {
		return err
	}
	l.begun = true
	return nil
}

func (l *lazyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := l.begin(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return l.conn.Exec(ctx, sql, args...)
}

func (l *lazyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := l.begin(ctx); err != nil {
		return nil, err
	}
	return l.conn.Query(ctx, sql, args...)
}

func (l *lazyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := l.begin(ctx); err != nil {
		return errRow{err}
	}
	return l.conn.QueryRow(ctx, sql, args...)
}

// SendBatch sends b, after a BEGIN if the transaction has not begun; the
// BEGIN's result is read here, the rest is b's, in order.
func (l *lazyTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if l.begun {
		return l.conn.SendBatch(ctx, b)
	}
	withBegin := &pgx.Batch{QueuedQueries: append([]*pgx.QueuedQuery{{SQL: "begin"}}, b.QueuedQueries...)}
	br := l.conn.SendBatch(ctx, withBegin)
	l.begun = true // sent: from here on, a rollback must follow any failure
	if _, err := br.Exec(); err != nil {
		return failedBatch{br, err}
	}
	return br
}

func (l *lazyTx) Commit(ctx context.Context) error {
	defer l.conn.Release()
	if !l.begun {
		return nil
	}
	tag, err := l.conn.Exec(ctx, "commit")
	if err == nil && tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return err
}

func (l *lazyTx) Rollback(ctx context.Context) error {
	defer l.conn.Release()
	if !l.begun {
		return nil
	}
	_, err := l.conn.Exec(ctx, "rollback")
	return err
}

// errRow is a row whose query could not be sent.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// failedBatch is a batch whose BEGIN failed: every result is that error.
type failedBatch struct {
	pgx.BatchResults
	err error
}

func (f failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, f.err }
func (f failedBatch) Query() (pgx.Rows, error)         { return nil, f.err }
func (f failedBatch) QueryRow() pgx.Row                { return errRow{f.err} }
func (f failedBatch) Close() error                     { f.BatchResults.Close(); return f.err }
