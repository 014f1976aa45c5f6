package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/internal/store"
)

// Reasons a store gives for ending an attempt or a task on its own.
const (
	reasonLeaseExpired = "lease expired"
	reasonRetention    = "expired: the queue's retention ended before it ran"
)

// dropLimit bounds the messages past retention one due drops; the rest
// go at the next.
const dropLimit = 1000

// due applies what now makes due in q: expired leases are released (retried
// or dead-lettered by retry), delayed messages promoted, and messages past
// retention dropped. Rows other transactions hold are skipped (SKIP
// LOCKED): whoever holds them is dealing with them, and each message is
// released exactly once.
func due(t *txn, q store.Queue, now time.Time, retry store.RetryFunc) (store.TickResult, error) {
	var r store.TickResult
	if err := expire(t, q, now, retry, &r); err != nil {
		return r, err
	}
	tag, err := t.Exec(t.ctx, `UPDATE courier_messages SET delayed = false WHERE id IN (
		SELECT id FROM courier_messages WHERE queue = $1 AND lease IS NULL AND ready_at <= $2 AND delayed
		FOR UPDATE SKIP LOCKED)`, q.Name, now)
	if err != nil {
		return r, err
	}
	r.Promoted = int(tag.RowsAffected())
	// In sent_at order, so that only the messages past retention are looked
	// at (the courier_messages_retain index), a bounded number at a time.
	rows, err := t.Query(t.ctx, `DELETE FROM courier_messages WHERE id IN (
			SELECT id FROM courier_messages WHERE queue = $1 AND lease IS NULL AND sent_at <= $3
				AND ready_at <= $2
			ORDER BY sent_at LIMIT $4
			FOR UPDATE SKIP LOCKED)
		RETURNING id, is_task`, q.Name, now, us(now.Add(-q.Config.Retention)), dropLimit)
	if err != nil {
		return r, err
	}
	d, err := collectDeleted(rows)
	if err != nil {
		return r, err
	}
	r.Dropped = len(d.all)
	return r, finishTasks(t, d.tasks, now, store.TaskFailed, nil, reasonRetention)
}

// expire releases the expired leases of q. A message that failed is retried
// retry's delay after its lease expired, however late this runs.
func expire(t *txn, q store.Queue, now time.Time, retry store.RetryFunc, r *store.TickResult) error {
	rows, err := t.Query(t.ctx, `SELECT id, attempt, grp IS NOT NULL, is_task, lease_exp FROM courier_messages
		WHERE queue = $1 AND lease IS NOT NULL AND lease_exp <= $2 ORDER BY id FOR UPDATE SKIP LOCKED`, q.Name, now)
	if err != nil {
		return err
	}
	var expired []heldMsg
	var m heldMsg
	if _, err := pgx.ForEachRow(rows, []any{&m.id, &m.attempt, &m.grouped, &m.isTask, &m.leaseExp}, func() error {
		expired = append(expired, m)
		return nil
	}); err != nil {
		return err
	}
	var ids []int64
	var readyAt []time.Time
	var delayed []bool
	for _, m := range expired {
		if m.isTask {
			cancel, err := cancelPending(t, m.id)
			if err != nil {
				return err
			}
			if cancel {
				r.Expired++
				if err := endCancelled(t, q.Name, m.id, m.grouped, now); err != nil {
					return err
				}
				continue
			}
		}
		delay, dead := retry(q.Config, m.attempt, nil)
		if dead {
			r.DeadLettered++
			if err := deadLetter(t, q, m, now, reasonLeaseExpired, store.DeadMaxAttempts); err != nil {
				return err
			}
			continue
		}
		r.Expired++
		// A retry already due is ready at once, not delayed, so that it is
		// not counted as promoted too (as on the embedded store).
		at := us(m.leaseExp.Add(delay))
		ids, readyAt, delayed = append(ids, m.id), append(readyAt, at), append(delayed, at.After(now))
		if m.isTask {
			if err := retryTask(t, m.id, now, reasonLeaseExpired); err != nil {
				return err
			}
		}
	}
	if len(ids) > 0 {
		t.wakeQueue(q.Name)
	}
	return release(t, ids, readyAt, delayed)
}

// Tick does the time-driven work of every queue, each queue in its own
// transaction, then forgets expired tasks and dedup keys, and rotates and
// truncates the partitions of the messages table (rotate.go). With
// Options.Elect, only the leader does it.
func (s *Store) Tick(ctx context.Context, p *store.TickParams) (store.TickResult, error) {
	var res store.TickResult
	if s.closed.Load() {
		return res, store.ErrClosed
	}
	if !s.leader() {
		return res, nil // the leader does it; Lease does what is due in its queue
	}
	now := us(p.Now)
	var names []string
	err := s.read(ctx, func(db queryer) error {
		rows, err := db.Query(ctx, `SELECT name FROM courier_queues ORDER BY name`)
		if err == nil {
			names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		return err
	})
	if err != nil {
		return res, err
	}
	for _, name := range names {
		var r store.TickResult // of the attempt that committed: a retried one starts again
		err := s.write(ctx, func(t *txn) error {
			q, err := lockQueue(t, name)
			if err != nil {
				return err
			}
			r, err = due(t, q, now, p.Retry)
			return err
		})
		if err != nil && !errors.Is(err, store.ErrQueueNotFound) {
			return res, err
		}
		if err == nil {
			res.Add(r)
		}
	}
	err = s.write(ctx, func(t *txn) error {
		if err := forget(t, now); err != nil {
			return err
		}
		res.NextDue, err = nextDueAll(t, now)
		return err
	})
	if err != nil || s.rot == nil {
		return res, err
	}
	if _, err := s.rot.tick(ctx, now); err != nil {
		return res, fmt.Errorf("messages partitions: %w", err)
	}
	return res, nil
}

// forget deletes the tasks whose result TTL has ended and the dedup keys
// whose window has.
func forget(t *txn, now time.Time) error {
	rows, err := t.Query(t.ctx, `DELETE FROM courier_tasks WHERE expires_at <= $1 RETURNING id`, now)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	for _, id := range ids {
		t.wakeTask(formatID(id))
	}
	_, err = t.Exec(t.ctx, `DELETE FROM courier_dedup d USING courier_queues q
		WHERE d.queue = q.name AND d.at + (q.dedup_window_ns / 1000) * interval '1 microsecond' <= $1`, now)
	return err
}

// nextDueAll is when any queue next changes by itself; zero if never.
func nextDueAll(t *txn, now time.Time) (time.Time, error) {
	var next *time.Time
	err := t.QueryRow(t.ctx, `SELECT least(
			(SELECT min(lease_exp) FROM courier_messages WHERE lease IS NOT NULL),
			(SELECT min(ready_at) FROM courier_messages WHERE lease IS NULL AND ready_at > $1))`, now).Scan(&next)
	if err != nil || next == nil {
		return time.Time{}, err
	}
	return *next, nil
}
