package pgstore

import (
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// The candidates of a lease: the messages it may hand out, best first,
// locked, skipping rows other transactions hold (FOR UPDATE SKIP LOCKED):
// consumers never wait for each other.
//
// Messages without a group and grouped ones are looked for separately.
// Without a group the query is a walk of the waiting index in order,
// stopped after max rows. The planner must be told so (enable_sort off for
// that statement): the statistics of a partition in the ring are those of
// its last analyze, often taken when it was nearly empty, and with them it
// reads every waiting message of the queue and sorts them, 100 ms a lease at
// 40,000 waiting, a burn-down quadratic in its backlog. The grouped query
// has a subplan (each group's head), which makes re-checking a row that a
// concurrent lease changed costly; it runs only when the queue has groups.
//
// A lease holds the move lock shared, and the rotator's move of leftovers
// to the long-lived partition (rotate.go) holds it exclusively: otherwise
// a lease would skip the rows a move holds, and hand out fewer messages
// than are leasable (part of a batch, say) for no reason its caller can
// see. A move is one short statement; leases wait for it.

const ungroupedSQL = `SELECT id, octet_length(body), priority ` + ungroupedFrom

// ungroupedFrom is ungroupedSQL after its columns (the fast lease wants one
// more).
const ungroupedFrom = `FROM courier_messages
WHERE queue = $1 AND lease IS NULL AND ready_at <= $2 AND grp IS NULL
ORDER BY priority DESC, id
LIMIT $3
FOR UPDATE SKIP LOCKED`

// groupedSQL: a grouped message is a candidate only as its group's head:
// the group's message in flight if there is one (then nothing of the group
// is), else its first by send order. Two leases racing for one group cannot
// both get a message of it: the head is one row, locked by the first; the
// second skips it, and if the first has committed by then, re-checking the
// row finds it leased. A lease that sees a stale head (an ack or
// dead-lettering freed the next one meanwhile) just hands out less; the
// change wakes the queue's watchers, who lease again.
const groupedSQL = `
WITH heads AS (
	SELECT DISTINCT ON (grp) id, lease IS NOT NULL AS busy
	FROM courier_messages WHERE queue = $1 AND grp IS NOT NULL
	ORDER BY grp, lease IS NULL, id
)
SELECT m.id, octet_length(m.body), m.priority FROM courier_messages m
WHERE m.queue = $1 AND m.lease IS NULL AND m.ready_at <= $2 AND m.grp IS NOT NULL
	AND m.id IN (SELECT id FROM heads WHERE NOT busy)
ORDER BY m.priority DESC, m.id
LIMIT $3
FOR UPDATE OF m SKIP LOCKED`

type candidate struct {
	id, size int64
	priority int16
}

// candidates returns up to max candidates of queue, best first, and
// whether the queue has grouped messages. Rows it locked beyond max stay
// locked until the transaction ends; it then wakes the queue's watchers,
// who may lease them.
func candidates(t *txn, queue string, now time.Time, max int) ([]candidate, bool, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock_shared(` + moveLockKey + `)`)
	b.Queue(`SET LOCAL enable_sort = off`)
	b.Queue(ungroupedSQL, queue, now, max)
	b.Queue(`SELECT EXISTS (SELECT 1 FROM courier_messages WHERE queue = $1 AND grp IS NOT NULL)`, queue)
	b.Queue(`SET LOCAL enable_sort TO DEFAULT`)
	br := t.SendBatch(t.ctx, b)
	var out []candidate
	var grouped bool
	err := func() (err error) {
		if err := execN(br, 2); err != nil { // the lock, the setting
			return err
		}
		if out, err = collectCandidates(br.Query()); err != nil {
			return err
		}
		if err := br.QueryRow().Scan(&grouped); err != nil {
			return err
		}
		_, err = br.Exec()
		return err
	}()
	if err := errors.Join(err, br.Close()); err != nil || !grouped {
		return out, grouped, err
	}
	heads, err := collectCandidates(t.Query(t.ctx, groupedSQL, queue, now, max))
	if err != nil {
		return nil, true, err
	}
	out = append(out, heads...)
	slices.SortFunc(out, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(b.priority, a.priority), cmp.Compare(a.id, b.id))
	})
	if len(out) > max {
		out = out[:max]
		t.wakeQueue(queue)
	}
	return out, true, nil
}

// collectCandidates reads the rows of a candidates query.
func collectCandidates(rows pgx.Rows, err error) ([]candidate, error) {
	if err != nil {
		return nil, err
	}
	var out []candidate
	var c candidate
	_, err = pgx.ForEachRow(rows, []any{&c.id, &c.size, &c.priority}, func() error {
		out = append(out, c)
		return nil
	})
	return out, err
}
