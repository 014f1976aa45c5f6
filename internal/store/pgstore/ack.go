package pgstore

import (
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/internal/store"
)

func (s *Store) Ack(ctx context.Context, p *store.AckParams) ([]error, error) {
	var out []error
	err := s.write(ctx, func(t *txn) error {
		if _, err := lockQueueFixedPlans(t, p.Queue); err != nil {
			return err
		}
		var err error
		out, err = ack(t, p)
		return err
	})
	return out, err
}

// ack is Ack in t, which holds p.Queue's lock.
func ack(t *txn, p *store.AckParams) ([]error, error) {
	a := newAcking(p)
	if err := a.likely(t); err != nil {
		return nil, err
	}
	return a.finish(t)
}

// ackSQL deletes the messages of p.Queue whose current, unexpired lease is
// one of ($2, $3); ackCurrentSQL looks in the current partition of the ring
// alone (rotate.go), ackPartSQL in partition $5 alone. Looking in all five costs a primary-key probe in each
// per message, three times as much as in one: a 100-row ack took 1.1–1.4 ms
// against 0.3–0.5 ms (pgbench, 100,000 rows in flight). The partition is
// pruned as the statement runs, from the subquery, so that lease tokens
// need not name it (and tokens stay readable by nodes of earlier versions
// during a rolling upgrade).
//
// The conditions beside the id are one opaque test (IS TRUE), so that the
// one plan kept for this statement looks rows up by id: with them apart, it
// may walk an index of the queue's leases instead, once per lease acked.
const (
	ackSQL = `DELETE FROM courier_messages m USING unnest($2::bigint[], $3::bigint[]) AS u(id, lease)
		WHERE m.id = u.id AND (m.lease = u.lease AND m.queue = $1 AND m.lease_exp > $4) IS TRUE
		RETURNING m.id, m.lease, m.is_task, m.grp IS NOT NULL`
	ackCurrentSQL = `DELETE FROM courier_messages m USING unnest($2::bigint[], $3::bigint[]) AS u(id, lease)
		WHERE m.id = u.id AND m.part = (SELECT current FROM courier_rotation)
			AND (m.lease = u.lease AND m.queue = $1 AND m.lease_exp > $4) IS TRUE
		RETURNING m.id, m.lease, m.is_task, m.grp IS NOT NULL`
	ackPartSQL = `DELETE FROM courier_messages m USING unnest($2::bigint[], $3::bigint[]) AS u(id, lease)
		WHERE m.id = u.id AND m.part = $5
			AND (m.lease = u.lease AND m.queue = $1 AND m.lease_exp > $4) IS TRUE
		RETURNING m.id, m.lease, m.is_task, m.grp IS NOT NULL`
)

// ringHint is what a node last read of the ring (courier_rotation): the
// current partition, and the last message id issued before it became
// current. A message of a greater id is almost always in the current
// partition; one of a smaller id, in the partition before it, until it
// moves to the long-lived one. A hint may be stale: an ack that does not
// find its message where the hint says looks everywhere (acking.finish).
type ringHint struct {
	current int16
	firstID int64
}

// leaseKey is a lease: message id and lease number.
type leaseKey struct{ id, lease int64 }

// acking is an ack under way in a transaction that holds its queue's lock:
// first where the messages most likely are (likely, or the statements queued
// by queueLikely), then everywhere for the rest (finish).
type acking struct {
	p     *store.AckParams
	out   []error          // per lease
	at    map[leaseKey]int // each lease's first occurrence
	keys  []leaseKey       // in order; finish drops those acked
	acked map[leaseKey]bool
	done  []taskEnd // the tasks among the acked
}

// newAcking parses p's leases; the malformed and the repeated have their
// error set at once.
func newAcking(p *store.AckParams) *acking {
	a := &acking{p: p, out: make([]error, len(p.Leases)), at: map[leaseKey]int{}, acked: map[leaseKey]bool{}}
	for i, l := range p.Leases {
		id, lease, err := parseLease(l)
		if err != nil {
			a.out[i] = err
			continue
		}
		k := leaseKey{id, lease}
		if _, seen := a.at[k]; seen {
			a.out[i] = store.ErrLeaseExpired // a repetition: applied once
			continue
		}
		a.at[k] = i
		a.keys = append(a.keys, k)
	}
	return a
}

// args are the arguments of ackSQL and ackCurrentSQL for keys.
func (a *acking) args(keys []leaseKey) []any {
	ids, leases := make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		ids[i], leases[i] = k.id, k.lease
	}
	return []any{a.p.Queue, ids, leases, us(a.p.Now)}
}

// queueLikely queues in b the deletes where the messages of the keys most
// likely are, and returns how many statements it queued (none when no lease
// is well formed); their rows go to collect. Without a ring hint, that is
// the current partition; with one, the current partition for the messages
// sent since it became current, and the partition before it for the
// others. Right after a rotation every message in flight is in the
// partition before: looking only in the current one, every ack of them
// took a second statement, a look in all five partitions.
func (a *acking) queueLikely(b *pgx.Batch, ring *ringHint) int {
	if len(a.keys) == 0 {
		return 0
	}
	if ring == nil {
		b.Queue(ackCurrentSQL, a.args(a.keys)...)
		return 1
	}
	var newer, older []leaseKey
	for _, k := range a.keys {
		if k.id > ring.firstID {
			newer = append(newer, k)
		} else {
			older = append(older, k)
		}
	}
	n := 0
	for _, g := range [...]struct {
		part int16
		keys []leaseKey
	}{{ring.current, newer}, {(ring.current + ringParts - 1) % ringParts, older}} {
		if len(g.keys) > 0 { // in a fixed order, the same in every transaction
			b.Queue(ackPartSQL, append(a.args(g.keys), g.part)...)
			n++
		}
	}
	return n
}

// likely runs queueLikely's deletes.
func (a *acking) likely(t *txn) error {
	b := &pgx.Batch{}
	n := a.queueLikely(b, t.ring)
	if n == 0 {
		return nil
	}
	br := t.SendBatch(t.ctx, b)
	return errors.Join(a.collectN(t, br, n), br.Close())
}

// collectN collects the rows of the next n statements of br.
func (a *acking) collectN(t *txn, br pgx.BatchResults, n int) error {
	for range n {
		rows, err := br.Query()
		if err := a.collect(t, rows, err); err != nil {
			return err
		}
	}
	return nil
}

// everywhere deletes the messages of the keys not acked yet, in whichever
// partition they are.
func (a *acking) everywhere(t *txn) error {
	a.keys = slices.DeleteFunc(a.keys, func(k leaseKey) bool { return a.acked[k] })
	if len(a.keys) == 0 {
		return nil
	}
	rows, err := t.Query(t.ctx, ackSQL, a.args(a.keys)...)
	return a.collect(t, rows, err)
}

// collect records the messages a delete returned as acked, with the tasks
// among them.
func (a *acking) collect(t *txn, rows pgx.Rows, err error) error {
	if err != nil {
		return err
	}
	var k leaseKey
	var isTask, grouped bool
	_, err = pgx.ForEachRow(rows, []any{&k.id, &k.lease, &isTask, &grouped}, func() error {
		a.acked[k] = true
		if isTask {
			var result []byte
			if a.p.Results != nil {
				result = a.p.Results[a.at[k]]
			}
			a.done = append(a.done, taskEnd{id: k.id, result: result})
		}
		if grouped {
			t.wakeQueue(a.p.Queue) // the next of its group is free
		}
		return nil
	})
	return err
}

// finish looks everywhere for the messages not found in the current
// partition, ends the tasks acked, counts, and answers one error per lease.
func (a *acking) finish(t *txn) ([]error, error) {
	if err := a.everywhere(t); err != nil {
		return nil, err
	}
	for k, i := range a.at {
		if !a.acked[k] {
			a.out[i] = store.ErrLeaseExpired
		}
	}
	if err := endTasks(t, a.done, us(a.p.Now), store.TaskSucceeded, ""); err != nil {
		return nil, err
	}
	return a.out, count(t, a.p.Queue, 0, len(a.acked))
}
