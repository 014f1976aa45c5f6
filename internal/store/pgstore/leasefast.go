package pgstore

import (
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/internal/store"
)

// The fast lease: two round trips instead of five. On a loaded machine a
// round trip costs as much as the statements of a lease together, so when
// the lease is of the common kind — nothing due in the queue by this node's
// hint (duehints.go), no grouped message — everything up to the COMMIT goes
// in one batch: BEGIN, the plan settings, the queue's lock, one statement
// that picks the candidates and leases them, and what the caller is told
// (whether the queue has groups now, when it is next due). When the batch
// finds grouped messages after all, it is rolled back and the lease is done
// the general way (Store.leaseFull).

// errNotFast: the fast lease does not apply; do the general one.
var errNotFast = errors.New("pgstore: not a fast lease")

// leaseFastSQL leases the ungrouped candidates (candidates.go's ordered
// walk) in one statement, unless the queue is paused: those before the
// bodies reach maxBytes ($4), at least one. When candidates are left locked
// and not leased, one row of id 0 says so. The expiry is $5, or the
// queue's visibility timeout from now ($2). The range of the candidates'
// partitions lets the UPDATE look up ids in those alone (pruned as it
// starts), not in every partition's primary key; the partitions stay put,
// since a lease holds the move lock.
const leaseFastSQL = `WITH c AS MATERIALIZED (SELECT id, octet_length(body), priority, part ` + ungroupedFrom + `),
fit AS (
	SELECT id, coalesce(sum(octet_length) OVER (ORDER BY priority DESC, id
		ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) < $4 AS ok
	FROM c
),
u AS (
	UPDATE courier_messages m SET lease = (SELECT nextval('courier_lease_seq')),
		lease_exp = coalesce($5, $2 + (SELECT visibility_ns / 1000 FROM courier_queues WHERE name = $1) * interval '1 microsecond'),
		attempt = attempt + 1, delayed = false
	WHERE m.id = ANY (ARRAY(SELECT id FROM fit WHERE ok))
		AND m.part BETWEEN (SELECT min(part) FROM c) AND (SELECT max(part) FROM c)
		AND NOT (SELECT paused FROM courier_queues WHERE name = $1)
	RETURNING ` + leasedColumns + `
)
SELECT * FROM u
UNION ALL
SELECT 0, ''::bytea, 0::smallint, NULL::jsonb, 0::smallint, '', 0, $2, 0, $2, false
WHERE EXISTS (SELECT 1 FROM fit WHERE NOT ok)`

// groupedQueues remembers the queues whose last lease found grouped
// messages: their leases go the general way from the start.
type groupedQueues struct {
	mu sync.Mutex
	m  map[string]bool
}

func (g *groupedQueues) get(q string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[q]
}

func (g *groupedQueues) set(q string, grouped bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if grouped {
		g.m[q] = true
	} else {
		delete(g.m, q)
	}
}

// leaseFast is Lease in two round trips, or errNotFast. With a, the acks
// the lease carries, the batch first deletes their messages in the current
// partition; the caller then finishes a.
func (s *Store) leaseFast(t *txn, p *store.LeaseParams, now time.Time, a *acking) (store.LeaseResult, error) {
	var res store.LeaseResult
	var vis *time.Time
	if p.Visibility > 0 {
		exp := us(now.Add(p.Visibility))
		vis = &exp
	}
	maxBytes := int64(p.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1 << 62
	}
	b := &pgx.Batch{}
	settings := queueFixPlans(t, b)
	b.Queue(lockQueueSQL, p.Queue)
	b.Queue(`SELECT pg_advisory_xact_lock_shared(` + moveLockKey + `)`)
	acks := 0
	if a != nil {
		acks = a.queueLikely(b, t.ring)
	}
	b.Queue(`SET LOCAL enable_sort = off`)
	b.Queue(leaseFastSQL, p.Queue, now, p.Max, maxBytes, vis)
	b.Queue(`SET LOCAL enable_sort TO DEFAULT`)
	b.Queue(`SELECT EXISTS (SELECT 1 FROM courier_messages WHERE queue = $1 AND grp IS NOT NULL)`, p.Queue)
	b.Queue(`SELECT `+nextDueSQL, p.Queue, now)
	b.Queue(`SELECT current, first_id FROM courier_rotation`)
	br := t.SendBatch(t.ctx, b)
	var started []taskStart
	err := func() error {
		if err := execN(br, settings); err != nil {
			return err
		}
		if _, err := scanQueue(br.QueryRow()); err != nil {
			return err
		}
		if err := execN(br, 1); err != nil { // the move lock
			return err
		}
		if err := a.collectN(t, br, acks); err != nil {
			return err
		}
		if err := execN(br, 1); err != nil { // the setting
			return err
		}
		rows, err := br.Query()
		var short bool
		res.Messages, started, short, err = collectLeased(p.Queue, rows, err)
		if err != nil {
			return err
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		var grouped bool
		if err := br.QueryRow().Scan(&grouped); err != nil {
			return err
		}
		s.grouped.set(p.Queue, grouped)
		if grouped {
			return errNotFast
		}
		if short {
			t.wakeQueue(p.Queue) // locked but not leased: others may take them after commit
		}
		var next *time.Time
		if err := br.QueryRow().Scan(&next); err != nil {
			return err
		}
		if next != nil {
			res.NextDue = *next
		}
		var ring ringHint
		if err := br.QueryRow().Scan(&ring.current, &ring.firstID); err != nil {
			return err
		}
		s.ring.Store(&ring)
		return nil
	}()
	if err := errors.Join(err, br.Close()); err != nil {
		return store.LeaseResult{}, err
	}
	for _, m := range res.Messages {
		t.noteDue(p.Queue, m.LeaseExpiresAt)
	}
	return res, startTasks(t, started, now)
}
