package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/courierhq/courier/internal/store"
)

// Listening returns the channel signalled each time s's listener is
// listening (after starting or reconnecting).
func Listening(s *Store) <-chan struct{} { return s.ln.connected }

// Leading reports whether s holds the leader lock, and LeaderChanged is
// signalled when that changes.
func Leading(s *Store) bool                  { return s.el.leading.Load() }
func LeaderChanged(s *Store) <-chan struct{} { return s.el.changed }

// Pool is s's connection pool.
func Pool(s *Store) *pgxpool.Pool { return s.pool }

// Rotation is what one run of the partition rotator did.
type Rotation = rotation

// Rotate runs s's partition rotator once, as Tick does on the leader.
func Rotate(ctx context.Context, s *Store, now time.Time) (Rotation, error) {
	return s.rot.runOnce(ctx, now)
}

// SetRotator sets the rotator's move batch and truncation lock timeout.
func SetRotator(s *Store, moveBatch int, lockTimeout time.Duration) {
	s.rot.batch, s.rot.lockTimeout = moveBatch, lockTimeout
}

// LongPart is the long-lived partition's part.
const LongPart = longPart

// MigrateTo applies the migrations up to version v.
func MigrateTo(ctx context.Context, dsn string, v int) ([]int, error) { return migrate(ctx, dsn, v) }

// FormatLease is the token of lease number lease of message id.
func FormatLease(id, lease int64) string { return formatLease(id, lease) }

// FormatID is the id of message number n.
func FormatID(n int64) string { return formatID(n) }

// Combined is how many fast leases the store ran and how many calls they
// served (combine.go).
func Combined(s *Store) (runs, calls int64) { return s.leases.runs.Load(), s.leases.calls.Load() }

// GiveBack is what the store's lease combiner calls with the share of a
// caller that gave up (Store.releaseShare).
func GiveBack(s *Store) func(p *store.LeaseParams, msgs []store.Message) { return s.leases.giveBack }
