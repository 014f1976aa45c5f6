package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Tables built for churn.
//
// Every message is inserted once, updated when leased and deleted when
// acked. In one plain table that leaves two dead tuples per message and
// dead entries in every index, which only vacuum reclaims; under millions of
// sends and acks the table and its indexes grow between vacuums, and a
// vacuum that falls behind (a long transaction, too few workers) lets them
// grow without bound. So courier_messages is LIST-partitioned by a small
// column, part (migration 0002):
//
//   - Parts 0..3 are a ring. Sends go to the current one (courier_rotation).
//     The leader rotates to the next part of the ring once the current one
//     has grown to Options.RotateBytes (heap, TOAST and indexes), or
//     Options.RotateEvery has passed with at least one message sent, and
//     only when that next part is empty and truncated. Size, not a count
//     of messages, is the trigger: it is what is being bounded, whatever
//     the size of the bodies.
//   - A non-current partition that holds no live row is TRUNCATEd: its space
//     and its indexes' space go back at once, with no vacuum debt. Under
//     churn the part just rotated out empties within moments (its messages
//     are acked) and is truncated at the next tick, so the table stays
//     within about two RotateBytes plus the long-lived partition.
//   - Rows still alive in a part two or more rotations old (a backlog, a
//     long delay, a long lease) are moved, in bounded batches, to part 4, the
//     long-lived partition, which is vacuumed as the one table was. A
//     message is moved at most once, so truncation is never blocked for
//     long and a week's delay costs one move, not one per rotation.
//
// Safety. A send reads the current part in its INSERT statement, so one that
// began before a rotation may still insert into the part just rotated out;
// an application's transaction (transactional enqueue, InTx) may do so long
// after. TRUNCATE would destroy such a row, so a partition is truncated only
// in a transaction that first takes its ACCESS EXCLUSIVE lock (which waits
// for every transaction that inserted into, or read, the partition to end,
// and keeps new ones out) and then finds it empty. The lock is asked for
// with a short lock_timeout: while it waits, every new statement on
// courier_messages (they read every partition) waits behind it, so the wait
// is bounded and, when the lock is not granted, the truncation is tried
// again later with a growing backoff. It is asked for only after an
// unlocked look found no live row, so a partition still in use costs no
// wait.
//
// A move is an UPDATE of part, which PostgreSQL makes a delete and an
// insert. The mover takes rows with FOR UPDATE SKIP LOCKED, so it never
// waits for a verb and never moves a row a verb holds; a verb that meets a
// row moved after its snapshot gets a serialization failure (40001), and
// the verb's transaction is run again (Store.write), finding the row in its
// new partition. A row keeps its id and lease number, so lease tokens,
// fencing, group heads and send order are unchanged by a move.
//
// Rejected alternatives:
//   - One table and more aggressive autovacuum (version 1): bloat is bounded
//     only while vacuum keeps up, and one long transaction stops it.
//   - Partitions by time or id range, created and dropped as time passes
//     (pg_partman style): DDL in the steady state, a partition count that
//     grows with long delays, and DROP needs the same lock as TRUNCATE
//     while also invalidating every plan. A fixed ring needs no DDL.
//   - Moving leftovers to the current partition instead of a long-lived
//     one: a message delayed a week would be moved every two rotations.
//   - Making sends take a shared lock that rotation takes exclusively, so
//     that no insert can reach a partition rotated out: one more lock per
//     send, and it still would not cover an application's REPEATABLE READ
//     transaction, whose snapshot can predate the rotation.

// The partitions of courier_messages (migration 0002).
const (
	ringParts = 4 // parts 0..3 rotate
	longPart  = 4 // courier_messages_long
)

// Defaults of Options.RotateBytes and Options.RotateEvery, and of the
// rotator's internal knobs.
const (
	defaultRotateBytes = 64 << 20
	defaultRotateEvery = 10 * time.Minute
	// defaultMoveBatch bounds the rows moved to the long-lived partition per
	// run, so that a large backlog is moved a little at a time.
	defaultMoveBatch = 1000
	// defaultLockTimeout bounds how long a truncation waits for its lock,
	// and so how long the statements queued behind it wait.
	defaultLockTimeout = 100 * time.Millisecond
	// rotateCheckEvery: Tick runs the rotator at most this often (by Now).
	rotateCheckEvery = time.Second
	// maxTruncateBackoff caps the wait before a refused lock is asked again.
	maxTruncateBackoff = time.Minute
)

// partName is the table of partition p.
func partName(p int) string {
	if p == longPart {
		return "courier_messages_long"
	}
	return fmt.Sprintf("courier_messages_%d", p)
}

// rotator rotates, drains and truncates the partitions. Only the leader runs
// it (from Tick), but it is safe if two run at once (a leader and its
// successor for a moment): rotation is a compare-and-set, moves skip locked
// rows, and a truncation checks under its lock.
type rotator struct {
	s           *Store
	bytes       int64         // rotate at this size of the current part; <0 never
	every       time.Duration // rotate after this long; <0 never
	batch       int
	lockTimeout time.Duration

	mu      sync.Mutex // guards lastRun, retryAt, backoff; one run at a time
	lastRun time.Time
	retryAt time.Time     // no truncation before this (a lock was refused)
	backoff time.Duration // the next wait after a refused lock
}

func newRotator(s *Store, o Options) *rotator {
	return &rotator{s: s, bytes: o.RotateBytes, every: o.RotateEvery, batch: defaultMoveBatch,
		lockTimeout: defaultLockTimeout}
}

// rotation is what one run did.
type rotation struct {
	Rotated   bool  // the current part moved on
	Current   int   // the current part after the run
	Moved     int   // rows moved to the long-lived partition
	Truncated []int // parts truncated
	Postponed []int // parts whose truncation lock was not granted
}

// ringState is courier_rotation and the partitions' sizes.
type ringState struct {
	current   int
	rotatedAt time.Time
	sent      int64                // message numbers taken since the rotation
	size      [ringParts + 1]int64 // of each partition's heap: 0 once truncated
	total     int64                // of the current partition: heap, TOAST, indexes
}

// age is how many rotations ago part p was current (0: it is).
func (st ringState) age(p int) int { return (st.current - p + ringParts) % ringParts }

// tick runs the rotator unless it ran less than rotateCheckEvery ago.
func (r *rotator) tick(ctx context.Context, now time.Time) (rotation, error) {
	r.mu.Lock()
	if d := now.Sub(r.lastRun); !r.lastRun.IsZero() && d >= 0 && d < rotateCheckEvery {
		r.mu.Unlock()
		return rotation{}, nil
	}
	r.mu.Unlock()
	return r.runOnce(ctx, now)
}

// runOnce moves a batch of leftovers out of old ring parts, truncates the
// non-current partitions that hold no live row, and rotates if due.
func (r *rotator) runOnce(ctx context.Context, now time.Time) (rotation, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastRun = now
	var res rotation
	st, err := r.state(ctx)
	if err != nil {
		return res, err
	}
	for p := range ringParts {
		if st.age(p) >= 2 && st.size[p] > 0 && res.Moved < r.batch {
			n, err := r.move(ctx, p, r.batch-res.Moved)
			res.Moved += n
			if err != nil {
				return res, fmt.Errorf("move rows of %s: %w", partName(p), err)
			}
		}
	}
	if err := r.truncateIdle(ctx, st, now, &res); err != nil {
		return res, err
	}
	if st, err = r.state(ctx); err != nil {
		return res, err
	}
	res.Current = st.current
	next := (st.current + 1) % ringParts
	if !r.due(st, now) || st.size[next] != 0 {
		return res, nil
	}
	if res.Rotated, err = r.rotate(ctx, st.current, next, now); err != nil {
		return res, fmt.Errorf("rotate: %w", err)
	}
	if res.Rotated {
		res.Current = next
		r.s.log.Debug("postgres messages: rotated", "current", partName(next), "sent", st.sent)
	}
	return res, nil
}

// due reports whether the current part has grown enough, or aged.
func (r *rotator) due(st ringState, now time.Time) bool {
	if st.size[st.current] == 0 {
		return false // nothing was ever written to it
	}
	return r.bytes > 0 && st.total >= r.bytes ||
		r.every > 0 && st.sent > 0 && now.Sub(st.rotatedAt) >= r.every
}

func (r *rotator) state(ctx context.Context) (ringState, error) {
	var st ringState
	var cur int16
	var first, last int64
	err := r.s.read(ctx, func(db queryer) error {
		return db.QueryRow(ctx, `SELECT r.current, r.rotated_at, r.first_id, `+lastIDSQL+`,
				pg_relation_size('courier_messages_0'), pg_relation_size('courier_messages_1'),
				pg_relation_size('courier_messages_2'), pg_relation_size('courier_messages_3'),
				pg_relation_size('courier_messages_long'),
				pg_total_relation_size(('courier_messages_' || r.current)::regclass)
			FROM courier_rotation r`).
			Scan(&cur, &st.rotatedAt, &first, &last, &st.size[0], &st.size[1], &st.size[2], &st.size[3], &st.size[4], &st.total)
	})
	if err != nil {
		return st, fmt.Errorf("partition state: %w", err)
	}
	st.current, st.sent = int(cur), last-first
	return st, nil
}

// moveLockKey is the advisory lock a move holds exclusively and leases
// shared (candidates.go).
const moveLockKey = `hashtextextended('courier.move.' || current_schema(), 0)`

// move moves up to n rows of part p to the long-lived partition, skipping
// rows other transactions hold, once no lease is choosing its candidates.
func (r *rotator) move(ctx context.Context, p, n int) (int, error) {
	moved := 0
	err := r.s.write(ctx, func(t *txn) error {
		if _, err := t.Exec(t.ctx, `SELECT pg_advisory_xact_lock(`+moveLockKey+`)`); err != nil {
			return err
		}
		tag, err := t.Exec(t.ctx, fmt.Sprintf(`UPDATE courier_messages SET part = %d WHERE part = %d AND id IN (
			SELECT id FROM courier_messages WHERE part = %d LIMIT $1 FOR UPDATE SKIP LOCKED)`, longPart, p, p), n)
		moved = int(tag.RowsAffected())
		return err
	})
	return moved, err
}

// truncateIdle truncates every non-current partition with pages and no
// live row, unless a refused lock asked to wait.
func (r *rotator) truncateIdle(ctx context.Context, st ringState, now time.Time, res *rotation) error {
	if now.Before(r.retryAt) {
		return nil
	}
	for p := range ringParts + 1 {
		if p == st.current || st.size[p] == 0 {
			continue
		}
		done, err := r.truncate(ctx, p)
		switch {
		case lockRefused(err):
			res.Postponed = append(res.Postponed, p)
			r.backoff = min(max(2*r.backoff, rotateCheckEvery), maxTruncateBackoff)
			r.retryAt = now.Add(r.backoff)
			r.s.log.Info("postgres messages: truncation postponed, its lock was not granted in time",
				"partition", partName(p), "retry_in", r.backoff)
			return nil
		case err != nil:
			return fmt.Errorf("truncate %s: %w", partName(p), err)
		case done:
			res.Truncated = append(res.Truncated, p)
			r.backoff = 0
			r.s.log.Debug("postgres messages: truncated", "partition", partName(p))
		}
	}
	return nil
}

// truncate empties part p if it holds no live row and is not current. An
// unlocked look first, so that a partition in use costs no lock; then the
// same look under the ACCESS EXCLUSIVE lock, which no transaction that
// inserted into p can still be running beside.
func (r *rotator) truncate(ctx context.Context, p int) (bool, error) {
	name := partName(p)
	var used bool
	err := r.s.read(ctx, func(db queryer) error {
		return db.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+name+`)`).Scan(&used)
	})
	if err != nil || used {
		return false, err
	}
	done := false
	err = r.s.write(ctx, func(t *txn) error {
		done = false
		if _, err := t.Exec(t.ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, max(r.lockTimeout.Milliseconds(), 1))); err != nil {
			return err
		}
		if _, err := t.Exec(t.ctx, `LOCK TABLE `+name+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			return err
		}
		err := t.QueryRow(t.ctx, `SELECT EXISTS (SELECT FROM `+name+`) OR $1 = (SELECT current FROM courier_rotation)`, p).Scan(&used)
		if err != nil || used {
			return err
		}
		_, err = t.Exec(t.ctx, `TRUNCATE `+name)
		done = err == nil
		return err
	})
	return done, err
}

// lastIDSQL is the last message number taken (0 before the first).
const lastIDSQL = `(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM courier_message_seq)`

// rotate makes next the current part, unless another run rotated first.
func (r *rotator) rotate(ctx context.Context, cur, next int, now time.Time) (bool, error) {
	rotated := false
	err := r.s.write(ctx, func(t *txn) error {
		tag, err := t.Exec(t.ctx, `UPDATE courier_rotation SET current = $2, rotated_at = $3,
			first_id = `+lastIDSQL+` WHERE current = $1`, cur, next, now)
		rotated = tag.RowsAffected() == 1
		return err
	})
	return rotated, err
}

// lockRefused reports whether err is a lock_timeout's (lock_not_available).
func lockRefused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}
