// Package pgstore is courier's PostgreSQL backend: the storage port over one
// database that several courier nodes share. Each verb is one transaction
// (READ COMMITTED); leases are taken with FOR UPDATE SKIP LOCKED, so that
// consumers on any node never wait for each other's rows, and every lease
// carries a number from a sequence, so a fencing token never repeats.
//
// Time comes from the caller (each verb's Now), as the port requires; a
// cluster decides lease expiry by one clock when every node derives Now from
// the database's clock (see DBClock). Times are kept to the microsecond.
//
// The schema is created and upgraded by embedded, versioned migrations
// (Migrate; `courier migrate`). Open refuses a database whose schema is
// behind unless Options.Migrate is set.
//
// Watch and WatchTask are woken by this process's own changes at once and,
// through LISTEN/NOTIFY, by other nodes' changes shortly after they commit.
//
// The messages table is partitioned for churn: the leader rotates sends
// over a ring of partitions and truncates the drained ones instead of
// leaving them to vacuum (rotate.go).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/courierhq/courier/internal/store"
)

var _ store.Store = (*Store)(nil)

// ErrUnsafeDurability: the server may lose commits it acknowledged (fsync or
// synchronous_commit is off) and Options.AllowUnsafeDurability is not set.
var ErrUnsafeDurability = errors.New("postgresql may lose acknowledged commits")

// ErrSchemaOutdated: the database's schema is older than this binary's and
// Options.Migrate is not set.
var ErrSchemaOutdated = errors.New("database schema is not up to date; run `courier migrate`")

// Options configure a Store.
type Options struct {
	// DSN is the database: a postgres:// URL or key=value string. Tables live
	// in the first schema of its search_path (public by default).
	DSN string
	// Migrate applies missing migrations at Open; default false: Open fails
	// with ErrSchemaOutdated and `courier migrate` must be run first.
	Migrate bool
	// AllowUnsafeDurability accepts a server with fsync or synchronous_commit
	// off, which can lose commits it acknowledged; default false: Open fails
	// with ErrUnsafeDurability.
	AllowUnsafeDurability bool
	// MaxConns bounds the connection pool; default 16.
	MaxConns int32
	// Notify makes the nodes of a cluster wake each other: each change is
	// announced with NOTIFY in its transaction, and one extra connection
	// LISTENs for the others' and wakes Watch and WatchTask; default false:
	// only this process's changes wake them (one node, or a fallback poll).
	Notify bool
	// Elect makes the nodes of a cluster elect one leader (a session
	// advisory lock) that alone does Tick's cluster-wide work and delivers
	// webhooks; the others' Tick and DueWebhooks do nothing. Default false:
	// this store always does them (a single node).
	Elect bool
	// ElectEvery is how often a node tries to become leader, and the leader
	// checks its lock; default 1s. A dead leader is replaced within about
	// this long once the server notices its connection is gone.
	ElectEvery time.Duration
	// RotateBytes is the size (heap, TOAST and indexes) the current
	// partition of the messages table grows to before the leader rotates
	// sends to the next one; the one rotated out is truncated once its
	// messages are gone (see rotate.go), so the table stays within about
	// twice this. Default 64 MiB; negative: never by size.
	RotateBytes int64
	// RotateEvery rotates also after this long, if any message was sent
	// since; default 10m; negative: never by time.
	RotateEvery time.Duration
	// Logger receives the store's logs; default discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxConns == 0 {
		o.MaxConns = 16
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ElectEvery == 0 {
		o.ElectEvery = time.Second
	}
	if o.RotateBytes == 0 {
		o.RotateBytes = defaultRotateBytes
	}
	if o.RotateEvery == 0 {
		o.RotateEvery = defaultRotateEvery
	}
	return o
}

// Store is the PostgreSQL store.
type Store struct {
	pool *pgxpool.Pool // nil for a store bound to a transaction (InTx)
	// db runs the verbs: the pool, or the application's transaction, in
	// which each verb is a savepoint.
	db     database
	inTx   bool
	log    *slog.Logger
	closed atomic.Bool
	schema string // the schema the tables live in, for notification channels
	w      *watchers
	hints  *dueHints
	// grouped: the queues whose last lease here found grouped messages (leasefast.go)
	grouped *groupedQueues
	// leases: this node's fast leases of a queue take turns (combine.go)
	leases *combiner
	// ring is what the last fast lease read of the ring (ack.go)
	ring atomic.Pointer[ringHint]
	ln   *listener // nil without Options.Notify
	el   *elector  // nil without Options.Elect
	rot  *rotator  // nil for a store bound to a transaction

	closeOnce sync.Once
}

// Open connects to the database, checks that it is safe and its schema up to
// date (or migrates it), and returns the store.
func Open(ctx context.Context, o Options) (*Store, error) {
	o = o.withDefaults()
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres dsn: %w", err)
	}
	cfg.MaxConns = o.MaxConns
	// courier's statements are short: compiling one (JIT) would cost far
	// more than running it, and PostgreSQL compiles whatever it estimates
	// costly, as a plan with a disabled step (enable_sort off) is.
	cfg.ConnConfig.RuntimeParams["jit"] = "off"
	if o.Migrate {
		if _, err := Migrate(ctx, o.DSN); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, db: pool, log: o.Logger, w: newWatchers(), hints: newDueHints(),
		grouped: &groupedQueues{m: map[string]bool{}}, leases: newCombiner()}
	s.leases.giveBack = s.releaseShare
	s.rot = newRotator(s, o)
	if err := s.check(ctx, o); err != nil {
		pool.Close()
		return nil, err
	}
	if o.Notify {
		s.ln = startListener(s, cfg.ConnConfig.Copy())
	}
	if o.Elect {
		s.el = startElector(s, cfg.ConnConfig.Copy(), o.ElectEvery)
	}
	return s, nil
}

// check refuses an unsafe server and an outdated schema.
func (s *Store) check(ctx context.Context, o Options) error {
	var fsync, syncCommit string
	var hasTable bool
	err := s.pool.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit'),
		current_schema(), to_regclass('courier_schema_migrations') IS NOT NULL`).Scan(&fsync, &syncCommit, &s.schema, &hasTable)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if !o.AllowUnsafeDurability && (fsync != "on" || syncCommit == "off") {
		return fmt.Errorf("%w: fsync=%s, synchronous_commit=%s ; turn them on, or accept the risk explicitly (courier serve --allow-unsafe-durability)", ErrUnsafeDurability, fsync, syncCommit)
	}
	have := 0
	if hasTable {
		if have, err = appliedVersion(ctx, s.pool); err != nil {
			return err
		}
	}
	switch want := latestVersion(); {
	case have < want:
		return fmt.Errorf("%w (schema version %d, this binary needs %d)", ErrSchemaOutdated, have, want)
	case have > want:
		return fmt.Errorf("database schema version %d is newer than this binary's %d", have, want)
	}
	return nil
}

// Ready reports whether the database answers.
func (s *Store) Ready(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if _, err := s.db.Exec(ctx, "SELECT 1"); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// Close closes the pool; verbs called afterwards return store.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return store.ErrClosed
	}
	if s.pool == nil {
		return nil // bound to a transaction, which its owner ends
	}
	s.closeOnce.Do(func() {
		if s.ln != nil {
			s.ln.stop()
		}
		if s.el != nil {
			s.el.stop()
		}
		s.pool.Close()
	})
	return nil
}

// database is what a pool and a transaction share: a verb begins a
// transaction (on a transaction: a savepoint) or queries directly.
type database interface {
	queryer
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx returns a store whose verbs run inside tx, the application's own
// transaction: each verb is a savepoint in it, and its changes become
// visible, durable and announced to the cluster's nodes (NOTIFY) exactly
// when, and if, tx commits. Watch and WatchTask of the returned store are
// never woken (the nodes are, through the notifications). It is for the
// transactional enqueue of package courierpgx; tx must not be used
// concurrently, and the store not after tx ends.
func InTx(ctx context.Context, tx pgx.Tx) (*Store, error) {
	s := &Store{db: tx, inTx: true, log: slog.New(slog.DiscardHandler), w: newWatchers(), hints: newDueHints(),
		grouped: &groupedQueues{m: map[string]bool{}}, leases: newCombiner()}
	// Checked without touching a missing table: an error would abort tx.
	var hasTable bool
	err := tx.QueryRow(ctx, `SELECT current_schema(), to_regclass('courier_schema_migrations') IS NOT NULL`).
		Scan(&s.schema, &hasTable)
	if err != nil {
		return nil, fmt.Errorf("courier schema: %w", err)
	}
	version := 0
	if hasTable {
		if version, err = appliedVersion(ctx, tx); err != nil {
			return nil, err
		}
	}
	if want := latestVersion(); version != want {
		return nil, fmt.Errorf("%w (schema version %d, this binary needs %d)", ErrSchemaOutdated, version, want)
	}
	return s, nil
}

// txn is one verb's transaction, with what it changed, so that watchers
// are woken once it commits.
type txn struct {
	txConn
	ctx    context.Context
	queues map[string]bool      // queues where messages may have become available
	tasks  map[string]bool      // tasks that changed
	counts map[string][2]int64  // sent, acked per queue, added at commit
	due    map[string]time.Time // per queue, the earliest time something may be due (duehints.go)
	ring   *ringHint            // the store's ring hint as the transaction began (ack.go)
	// fixPlans: the hot verbs may fix how their statements are planned
	// (lockQueueFixedPlans); not in an application's transaction, where
	// SET LOCAL would outlive the verb.
	fixPlans bool
	// after is the verb's error to return once the transaction commits (a
	// refusal that still changes state, like ErrTaskCancelled).
	after error
}

func (t *txn) wakeQueue(name string) { t.queues[name] = true }

// noteDue records that something in queue may be due at at (the zero time:
// anything may be), for the node's due hints once t commits.
func (t *txn) noteDue(queue string, at time.Time) {
	if cur, ok := t.due[queue]; !ok || at.Before(cur) {
		t.due[queue] = at
	}
}
func (t *txn) wakeTask(id string) { t.tasks[id] = true }

// maxAttempts bounds how often a transaction that lost a deadlock or a
// serialization conflict is run again.
const maxAttempts = 5

// write runs fn in a transaction and commits it when fn returns nil, then
// wakes the watchers of what it changed and returns t.after. A transaction
// chosen as a deadlock victim is run again.
func (s *Store) write(ctx context.Context, fn func(t *txn) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	for attempt := 1; ; attempt++ {
		t, err := s.try(ctx, fn)
		if t != nil && errors.Is(err, store.ErrOutcomeUnknown) {
			s.noteDue(t) // it may have committed
		}
		if retryable(err) && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return s.mapErr(err)
		}
		s.notify(ctx, t)
		s.noteDue(t)
		return t.after
	}
}

func (s *Store) try(ctx context.Context, fn func(t *txn) error) (*txn, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	t := &txn{txConn: tx, ctx: ctx, queues: map[string]bool{}, tasks: map[string]bool{},
		counts: map[string][2]int64{}, due: map[string]time.Time{}, fixPlans: !s.inTx, ring: s.ring.Load()}
	if err := fn(t); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	b := &pgx.Batch{}
	queueCounts(t, b)
	s.queueAnnounce(t, b)
	if err := tx.CommitAfter(ctx, b); err != nil {
		return t, commitErr(err)
	}
	return t, nil
}

// noteDue gives the node's due hints what t noted (duehints.go).
func (s *Store) noteDue(t *txn) {
	for q, at := range t.due {
		s.hints.note(q, at)
	}
}

// begin starts a verb's transaction: on the pool, one whose BEGIN goes
// out with its first statements; in an application's transaction, a
// savepoint.
func (s *Store) begin(ctx context.Context) (txConn, error) {
	if s.pool != nil && !s.inTx {
		return beginLazy(ctx, s.pool)
	}
	tx, err := s.db.Begin(ctx)
	return savepoint{tx}, err
}

// read runs fn on a read-only snapshot-free query path (no transaction).
func (s *Store) read(ctx context.Context, fn func(db queryer) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return s.mapErr(fn(s.db))
}

// commitErr classifies an error of COMMIT: a server's answer means the
// transaction rolled back; a broken connection leaves the outcome unknown
// (store.ErrOutcomeUnknown), unless the COMMIT was never sent.
func commitErr(err error) error {
	var pgErr *pgconn.PgError
	var before beforeCommit
	if errors.As(err, &before) {
		return before.error
	}
	if errors.As(err, &pgErr) || pgconn.SafeToRetry(err) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrOutcomeUnknown, err)
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// mapErr turns a closed pool into store.ErrClosed, and a database that
// cannot be reached into store.ErrUnavailable.
func (s *Store) mapErr(err error) error {
	switch {
	case err == nil || errors.Is(err, store.ErrOutcomeUnknown):
		return err
	case s.closed.Load():
		return fmt.Errorf("%w: %w", store.ErrClosed, err)
	case unreachable(err):
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// unreachable reports whether err means the database could not be talked
// to: a failed connection, a connection lost before COMMIT (the server
// rolls the transaction back), or a server shutting down or starting.
func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "53300": // admin/crash shutdown, starting up, too many connections
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection exception
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// us truncates t to what PostgreSQL keeps, so that times handed out equal
// the times stored.
func us(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// nullTime is t, or NULL when zero.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
