package pgstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/internal/store"
)

// heldMsg is an in-flight message, locked by the transaction.
type heldMsg struct {
	id       int64
	attempt  int
	grouped  bool
	isTask   bool
	leaseExp time.Time
}

// held locks the in-flight message whose current, unexpired lease is lease.
func held(t *txn, queue, lease string, now time.Time) (heldMsg, error) {
	id, n, err := parseLease(lease)
	if err != nil {
		return heldMsg{}, err
	}
	var m heldMsg
	err = t.QueryRow(t.ctx, `SELECT id, attempt, grp IS NOT NULL, is_task, lease_exp FROM courier_messages
		WHERE id = $1 AND lease = $2 AND queue = $3 AND lease_exp > $4 FOR UPDATE`, id, n, queue, now).
		Scan(&m.id, &m.attempt, &m.grouped, &m.isTask, &m.leaseExp)
	if isNoRows(err) {
		return m, store.ErrLeaseExpired
	}
	return m, err
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// deadLetter moves m out of q into q's dead-letter queue (created if
// missing), same id and body, with the dead-letter headers, attempt reset
// and ready at once, or drops it when q has none. Its task ends failed.
func deadLetter(t *txn, q store.Queue, m heldMsg, now time.Time, errText, why string) error {
	if m.isTask {
		if err := finishTasks(t, []int64{m.id}, now, store.TaskFailed, nil, errText); err != nil {
			return err
		}
	}
	if m.grouped {
		t.wakeQueue(q.Name) // the next of its group is free
	}
	dlq := q.Config.DeadLetterQueue
	if dlq == "" {
		_, err := t.Exec(t.ctx, `DELETE FROM courier_messages WHERE id = $1`, m.id)
		return err
	}
	if err := ensureQueue(t, dlq, now); err != nil {
		return err
	}
	t.noteDue(dlq, time.Time{})
	// The dead letter keeps its group: in the dead-letter queue, and back in
	// its queue after a redrive, it holds its place by send order.
	_, err := t.Exec(t.ctx, `UPDATE courier_messages SET queue = $2,
			headers = coalesce(headers, '{}'::jsonb) || jsonb_build_object($3::text, $4::text, $5::text, $6::text,
				$7::text, $8::text, $9::text, $10::text),
			attempt = 0, lease = NULL, lease_exp = NULL, ready_at = sent_at, delayed = false,
			dead_from = $4, is_task = false
		WHERE id = $1`, m.id, dlq,
		store.HeaderSourceQueue, q.Name, store.HeaderAttempts, strconv.Itoa(m.attempt),
		store.HeaderError, errText, store.HeaderDeadReason, why)
	t.wakeQueue(dlq)
	return err
}

// release puts failed in-flight messages back to wait until their time.
func release(t *txn, ids []int64, readyAt []time.Time, delayed []bool) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := t.Exec(t.ctx, `UPDATE courier_messages m SET lease = NULL, lease_exp = NULL,
			ready_at = u.ready_at, delayed = u.delayed
		FROM unnest($1::bigint[], $2::timestamptz[], $3::boolean[]) AS u(id, ready_at, delayed)
		WHERE m.id = u.id`, ids, readyAt, delayed)
	return err
}

func (s *Store) Nack(ctx context.Context, p *store.NackParams) (store.NackResult, error) {
	var res store.NackResult
	now := us(p.Now)
	err := s.write(ctx, func(t *txn) error {
		res = store.NackResult{}
		q, err := lockQueue(t, p.Queue)
		if err != nil {
			return err
		}
		m, err := held(t, p.Queue, p.Lease, now)
		if err != nil {
			return err
		}
		if p.Terminate {
			res.DeadLettered = true
			return deadLetter(t, q, m, now, p.Error, store.DeadTerminated)
		}
		if m.isTask {
			if cancel, err := cancelPending(t, m.id); err != nil || cancel {
				res.Cancelled = true
				return errors.Join(err, endCancelled(t, q.Name, m.id, m.grouped, now))
			}
		}
		if p.Release {
			res.RetryAt, err = giveBack(t, p.Queue, m, p.Delay, now)
			return err
		}
		delay, dead := p.Retry(q.Config, m.attempt, p.Delay)
		if dead {
			res.DeadLettered = true
			return deadLetter(t, q, m, now, p.Error, store.DeadMaxAttempts)
		}
		res.RetryAt = us(now.Add(delay))
		if err := release(t, []int64{m.id}, []time.Time{res.RetryAt}, []bool{delay > 0}); err != nil {
			return err
		}
		t.wakeQueue(p.Queue)
		if m.isTask {
			return retryTask(t, m.id, now, p.Error)
		}
		return nil
	})
	return res, err
}

// giveBack hands m back unprocessed (NackParams.Release): the attempt its
// lease counted is given back, and it is ready after delay (nil: at once),
// in its place: ready messages are taken in id order.
func giveBack(t *txn, queue string, m heldMsg, delay *time.Duration, now time.Time) (time.Time, error) {
	at, delayed := now, delay != nil && *delay > 0 // as a nack's: a delay under 1µs still delays
	if delayed {
		at = us(now.Add(*delay))
	}
	attempt := max(m.attempt-1, 0)
	_, err := t.Exec(t.ctx, `UPDATE courier_messages SET lease = NULL, lease_exp = NULL, attempt = $2,
		ready_at = $3, delayed = $4 WHERE id = $1`, m.id, attempt, at, delayed)
	if err != nil {
		return time.Time{}, err
	}
	t.wakeQueue(queue)
	if m.isTask {
		return at, requeueTask(t, m.id, now, nil, &attempt)
	}
	return at, nil
}

func (s *Store) Extend(ctx context.Context, p *store.ExtendParams) (time.Time, error) {
	var exp time.Time
	now := us(p.Now)
	err := s.write(ctx, func(t *txn) error {
		q, err := lockQueue(t, p.Queue)
		if err != nil {
			return err
		}
		m, err := held(t, p.Queue, p.Lease, now)
		if err != nil {
			return err
		}
		if m.isTask {
			if cancel, err := cancelPending(t, m.id); err != nil || cancel {
				t.after = store.ErrTaskCancelled
				return errors.Join(err, endCancelled(t, q.Name, m.id, m.grouped, now))
			}
		}
		vis := p.Visibility
		if vis == 0 {
			vis = q.Config.VisibilityTimeout
		}
		exp = us(now.Add(vis))
		_, err = t.Exec(t.ctx, `UPDATE courier_messages SET lease_exp = $2 WHERE id = $1`, m.id, exp)
		return err
	})
	if err != nil {
		return time.Time{}, err
	}
	return exp, nil
}

func (s *Store) Redrive(ctx context.Context, p *store.RedriveParams) (int, error) {
	n := 0
	err := s.write(ctx, func(t *txn) error {
		q, err := lockQueue(t, p.Queue)
		if err != nil {
			return err
		}
		dlq := q.Config.DeadLetterQueue
		if dlq == "" || p.Max <= 0 {
			n = 0
			return nil
		}
		tag, err := t.Exec(t.ctx, `UPDATE courier_messages SET queue = $1,
				headers = nullif(headers - $4::text[], '{}'::jsonb),
				attempt = 0, dead_from = NULL, ready_at = sent_at, delayed = false
			WHERE id IN (SELECT id FROM courier_messages
				WHERE queue = $2 AND dead_from = $1 AND lease IS NULL
				ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)`, p.Queue, dlq, p.Max,
			[]string{store.HeaderSourceQueue, store.HeaderAttempts, store.HeaderError, store.HeaderDeadReason})
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		if n > 0 {
			t.wakeQueue(p.Queue)
		}
		return nil
	})
	return n, err
}

func isErr(err, target error) bool { return errors.Is(err, target) }
