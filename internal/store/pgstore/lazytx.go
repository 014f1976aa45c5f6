package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// txConn is what a verb's transaction runs statements on.
type txConn interface {
	queryer
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	// CommitAfter runs b's statements (the transaction's last: counts,
	// notifications) and commits; on failure it rolls back.
	CommitAfter(ctx context.Context, b *pgx.Batch) error
	Rollback(ctx context.Context) error
	// backend is the process id of the connection's server process.
	backend() uint32
}

// savepoint is a verb's transaction inside an application's (InTx).
type savepoint struct{ pgx.Tx }

func (sp savepoint) CommitAfter(ctx context.Context, b *pgx.Batch) error {
	if b.Len() > 0 {
		if err := sp.SendBatch(ctx, b).Close(); err != nil {
			_ = sp.Rollback(context.WithoutCancel(ctx))
			return beforeCommit{err}
		}
	}
	return sp.Commit(ctx)
}

func (sp savepoint) backend() uint32 { return sp.Conn().PgConn().PID() }

// beforeCommit is an error met before the COMMIT was sent: whatever it is,
// nothing was committed.
type beforeCommit struct{ error }

func (b beforeCommit) Unwrap() error { return b.error }

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

func (l *lazyTx) backend() uint32 { return l.conn.Conn().PgConn().PID() }

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

// CommitAfter sends b's statements and COMMIT in one batch: a round trip
// less than running them and then committing.
func (l *lazyTx) CommitAfter(ctx context.Context, b *pgx.Batch) error {
	if !l.begun && b.Len() == 0 {
		l.conn.Release()
		return nil
	}
	n := b.Len()
	b.Queue("commit")
	br := l.SendBatch(ctx, b)
	var err error
	for range n {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && tag.String() == "ROLLBACK" {
		err = pgx.ErrTxCommitRollback
	}
	if err != nil && !l.conn.Conn().IsClosed() && l.conn.Conn().PgConn().TxStatus() != 'I' {
		return errors.Join(err, l.Rollback(context.WithoutCancel(ctx)))
	}
	l.conn.Release()
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
