package pgstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/internal/store"
)

func (s *Store) Lease(ctx context.Context, p *store.LeaseParams) (store.LeaseResult, error) {
	now := us(p.Now)
	if p.Max > 0 && !s.grouped.get(p.Queue) && !s.hints.due(p.Queue, now) {
		res, err := s.leases.lease(ctx, p, now, s.leaseFastTx)
		if !errors.Is(err, errNotFast) {
			return res, err
		}
		if res.Acked != nil { // applied by a combined lease (combine.go): not again
			q := *p
			q.Acks, q.AckResults = nil, nil
			full, err := s.leaseFull(ctx, &q, now)
			full.Acked = res.Acked
			return full, err
		}
	}
	return s.leaseFull(ctx, p, now)
}

// leaseFastTx is the fast lease (leasefast.go) in a transaction of its own,
// with the acks p carries.
func (s *Store) leaseFastTx(ctx context.Context, p *store.LeaseParams, now time.Time) (store.LeaseResult, error) {
	var res store.LeaseResult
	err := s.write(ctx, func(t *txn) error {
		var a *acking
		if p.Acks != nil {
			a = newAcking(leaseAcks(p))
		}
		var err error
		if res, err = s.leaseFast(t, p, now, a); err != nil || a == nil {
			return err
		}
		res.Acked, err = a.finish(t)
		return err
	})
	return res, err
}

// leaseAcks is the ack a lease carries.
func leaseAcks(p *store.LeaseParams) *store.AckParams {
	return &store.AckParams{Queue: p.Queue, Leases: p.Acks, Results: p.AckResults, Now: p.Now}
}

// leaseFull is Lease in every case: the due work first when the hint asks
// for it, grouped messages, the byte limit.
func (s *Store) leaseFull(ctx context.Context, p *store.LeaseParams, now time.Time) (store.LeaseResult, error) {
	var res store.LeaseResult
	var reset *dueReset // the due work runs, and the queue's due hint is read afresh
	var hint time.Time
	err := s.write(ctx, func(t *txn) error {
		res = store.LeaseResult{}
		q, err := lockQueueFixedPlans(t, p.Queue)
		if err != nil {
			return err
		}
		if p.Acks != nil {
			if res.Acked, err = ack(t, leaseAcks(p)); err != nil {
				return err
			}
		}
		if reset == nil && s.hints.due(p.Queue, now) {
			reset = s.hints.begin(p.Queue)
		}
		if reset != nil {
			if res.Due, err = due(t, q, now, p.Retry); err != nil {
				return err
			}
		}
		if !q.Paused && p.Max > 0 {
			vis := p.Visibility
			if vis == 0 {
				vis = q.Config.VisibilityTimeout
			}
			var grouped bool
			if res.Messages, grouped, err = lease(t, q.Name, p.Max, p.MaxBytes, now, us(now.Add(vis))); err != nil {
				return err
			}
			s.grouped.set(q.Name, grouped)
		}
		if reset == nil {
			res.NextDue, err = nextDue(t, q.Name, now)
			return err
		}
		var retainFrom time.Time
		res.NextDue, retainFrom, err = nextDueAndRetention(t, q.Name, now)
		hint = never
		if !res.NextDue.IsZero() {
			hint = res.NextDue
		}
		if !retainFrom.IsZero() {
			hint = earliest(hint, retainFrom.Add(q.Config.Retention))
		}
		return err
	})
	s.hints.finish(reset, hint, err == nil)
	return res, err
}

// lease hands out up to max of the queue's candidates, until their bodies
// reach maxBytes (at least one);
// grouped tells whether the queue has grouped messages.
func lease(t *txn, queue string, max, maxBytes int, now, exp time.Time) ([]store.Message, bool, error) {
	cands, grouped, err := candidates(t, queue, now, max)
	if err != nil {
		return nil, false, err
	}
	var ids []int64
	total := 0
	for _, c := range cands {
		if maxBytes > 0 && total >= maxBytes {
			t.wakeQueue(queue) // locked but not leased: others may take them after commit
			break
		}
		ids = append(ids, c.id)
		total += int(c.size)
	}
	if len(ids) == 0 {
		return nil, grouped, nil
	}
	t.noteDue(queue, exp)
	rows, err := t.Query(t.ctx, `UPDATE courier_messages SET lease = (SELECT nextval('courier_lease_seq')),
			lease_exp = $2, attempt = attempt + 1, delayed = false
		WHERE id = ANY($1)
		RETURNING `+leasedColumns, ids, exp)
	out, started, _, err := collectLeased(queue, rows, err)
	if err != nil {
		return nil, false, err
	}
	return out, grouped, startTasks(t, started, now)
}

// leasedColumns are what a lease's UPDATE returns, for collectLeased.
const leasedColumns = `id, body, kind, headers, priority, coalesce(grp, ''), attempt, sent_at, lease, lease_exp, is_task`

// collectLeased reads the messages a lease's UPDATE returned, best first
// (by priority, then send order), and the tasks among them. A row of id 0
// is not a message: it tells that candidates were locked and not leased
// (leaseFast's byte limit).
func collectLeased(queue string, rows pgx.Rows, err error) ([]store.Message, []taskStart, bool, error) {
	if err != nil {
		return nil, nil, false, err
	}
	var out []store.Message
	var started []taskStart
	var m store.Message
	var headers []byte
	var kind int16
	var id, lease int64
	var isTask, short bool
	_, err = pgx.ForEachRow(rows, []any{&id, &m.Body, &kind, &headers, &m.Priority, &m.Group, &m.Attempt,
		&m.SentAt, &lease, &m.LeaseExpiresAt, &isTask}, func() error {
		if id == 0 {
			short = true
			return nil
		}
		h, err := decodeHeaders(headers)
		if err != nil {
			return err
		}
		m.ID, m.Queue, m.Kind, m.Headers, m.Lease = formatID(id), queue, store.BodyKind(kind), h, formatLease(id, lease)
		out = append(out, m)
		if isTask {
			started = append(started, taskStart{id, m.Attempt})
		}
		m = store.Message{}
		return nil
	})
	slices.SortFunc(out, func(a, b store.Message) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), strings.Compare(a.ID, b.ID))
	})
	return out, started, short, err
}

// nextDue is when the queue next changes by itself (a lease expires or a
// delayed message comes due); zero if never. Each is the first entry of an
// index, in every partition.
func nextDue(t *txn, queue string, now time.Time) (time.Time, error) {
	var next *time.Time
	err := t.QueryRow(t.ctx, `SELECT `+nextDueSQL, queue, now).Scan(&next)
	if err != nil || next == nil {
		return time.Time{}, err
	}
	return *next, nil
}

const nextDueSQL = `least(
	(SELECT lease_exp FROM courier_messages WHERE queue = $1 AND lease IS NOT NULL ORDER BY lease_exp LIMIT 1),
	(SELECT ready_at FROM courier_messages WHERE queue = $1 AND lease IS NULL AND ready_at > $2 ORDER BY ready_at LIMIT 1))`

// nextDueAndRetention is nextDue, and when the queue's oldest waiting
// message was sent (zero if none): its retention ends first.
func nextDueAndRetention(t *txn, queue string, now time.Time) (next, oldest time.Time, err error) {
	var n, o *time.Time
	err = t.QueryRow(t.ctx, `SELECT `+nextDueSQL+`,
		(SELECT sent_at FROM courier_messages WHERE queue = $1 AND lease IS NULL ORDER BY sent_at LIMIT 1)`,
		queue, now).Scan(&n, &o)
	if n != nil {
		next = *n
	}
	if o != nil {
		oldest = *o
	}
	return next, oldest, err
}

// earliest is the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// releaseShareTimeout bounds releaseShare's releases.
const releaseShareTimeout = 10 * time.Second

// releaseShare hands back, uncounted and ready at once, the messages a
// combined lease took for a caller that gave up while it ran (combine.go).
// A release that fails leaves its message to expire, as before.
func (s *Store) releaseShare(p *store.LeaseParams, msgs []store.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseShareTimeout)
	defer cancel()
	failed := 0
	var last error
	for _, m := range msgs {
		_, err := s.Nack(ctx, &store.NackParams{Queue: p.Queue, Lease: m.Lease, Release: true, Now: p.Now, Retry: p.Retry})
		if err != nil && !errors.Is(err, store.ErrLeaseExpired) {
			failed, last = failed+1, err
		}
	}
	if failed > 0 {
		s.log.Warn("could not release the messages leased for a receive that gave up; they come back when their leases expire",
			"queue", p.Queue, "failed", failed, "of", len(msgs), "err", last)
	}
}
