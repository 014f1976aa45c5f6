package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/courierhq/courier/internal/store"
)

const queueColumns = `name, visibility_ns, max_attempts, backoff_initial_ns, backoff_max_ns,
	backoff_multiplier, backoff_jitter, dead_letter_queue, retention_ns, max_message_bytes,
	dedup_window_ns, paused, created_at`

func scanQueue(row pgx.Row) (store.Queue, error) {
	var q store.Queue
	c := &q.Config
	var vis, bi, bm, ret, dd int64
	err := row.Scan(&q.Name, &vis, &c.MaxAttempts, &bi, &bm, &c.Backoff.Multiplier, &c.Backoff.Jitter,
		&c.DeadLetterQueue, &ret, &c.MaxMessageBytes, &dd, &q.Paused, &q.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return q, store.ErrQueueNotFound
	}
	c.VisibilityTimeout, c.Backoff.Initial, c.Backoff.Max = time.Duration(vis), time.Duration(bi), time.Duration(bm)
	c.Retention, c.DedupWindow = time.Duration(ret), time.Duration(dd)
	return q, err
}

func configArgs(c store.QueueConfig) []any {
	return []any{int64(c.VisibilityTimeout), c.MaxAttempts, int64(c.Backoff.Initial), int64(c.Backoff.Max),
		c.Backoff.Multiplier, c.Backoff.Jitter, c.DeadLetterQueue, int64(c.Retention), c.MaxMessageBytes,
		int64(c.DedupWindow)}
}

// insertQueue creates a queue; created is false when it already existed.
func insertQueue(t *txn, name string, c store.QueueConfig, now time.Time) (created bool, err error) {
	args := append([]any{name}, configArgs(c)...)
	args = append(args, us(now))
	tag, err := t.Exec(t.ctx, `INSERT INTO courier_queues (`+queueColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, false, $12) ON CONFLICT (name) DO NOTHING`, args...)
	return err == nil && tag.RowsAffected() == 1, err
}

// ensureQueue creates queue name with store.DefaultConfig if it does not
// exist (a dead-letter or reply_to queue).
func ensureQueue(t *txn, name string, now time.Time) error {
	_, err := insertQueue(t, name, store.DefaultConfig(name), now)
	return err
}

// lockQueue reads a queue's settings and holds it against deletion until
// the transaction ends (FOR KEY SHARE lets every other verb through).
//
// A verb that locks a queue this way may change it in any way: the node's
// due hint of the queue is dropped when it commits (duehints.go). The verbs
// that note exactly what they make due use lockQueueTracked.
func lockQueue(t *txn, name string) (store.Queue, error) {
	t.noteDue(name, time.Time{})
	return lockQueueTracked(t, name)
}

// lockQueueTracked is lockQueue for a verb that notes itself what it
// makes due (t.noteDue).
func lockQueueTracked(t *txn, name string) (store.Queue, error) {
	return scanQueue(t.QueryRow(t.ctx, lockQueueSQL, name))
}

const lockQueueSQL = `SELECT ` + queueColumns + ` FROM courier_queues WHERE name = $1 FOR KEY SHARE`

// lockQueueFixedPlans is lockQueueTracked for the hot verbs (lease, ack), which
// first fix how the rest of their transaction is planned, in the same round
// trip. Their statements each have one right plan: walk an index of every
// partition (by id, or in the order wanted). PostgreSQL would otherwise plan
// them afresh at every call (a custom plan for a table of five partitions
// and forty indexes costs more than running it: half the database's time in
// a burn-down), and from a ring partition's statistics, taken when it was
// nearly empty, it would choose to read a partition whole. So: plans made
// once per connection and kept (force_generic_plan), and never a sequential
// scan where an index serves.
func lockQueueFixedPlans(t *txn, name string) (store.Queue, error) {
	if !t.fixPlans {
		return lockQueueTracked(t, name)
	}
	b := &pgx.Batch{}
	n := queueFixPlans(t, b)
	b.Queue(lockQueueSQL, name)
	br := t.SendBatch(t.ctx, b)
	q, err := func() (store.Queue, error) {
		if err := execN(br, n); err != nil {
			return store.Queue{}, err
		}
		return scanQueue(br.QueryRow())
	}()
	return q, errors.Join(err, br.Close())
}

// queueFixPlans queues lockQueueFixedPlans's settings in b, if t may fix
// plans, and returns how many statements it queued.
func queueFixPlans(t *txn, b *pgx.Batch) int {
	if !t.fixPlans {
		return 0
	}
	b.Queue(`SET LOCAL plan_cache_mode = force_generic_plan`)
	b.Queue(`SET LOCAL enable_seqscan = off`)
	return 2
}

// execN reads the results of the next n statements of br, which return no rows.
func execN(br pgx.BatchResults, n int) error {
	for range n {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) CreateQueue(ctx context.Context, p *store.CreateQueueParams) (store.Queue, error) {
	var q store.Queue
	err := s.write(ctx, func(t *txn) error {
		t.noteDue(p.Name, time.Time{}) // nothing known of a queue of that name before
		created, err := insertQueue(t, p.Name, p.Config, p.Now)
		if err != nil {
			return err
		}
		if !created {
			return store.ErrQueueExists
		}
		q, err = queueWithStats(t.ctx, t, p.Name, p.Now)
		return err
	})
	return q, err
}

func (s *Store) UpdateQueue(ctx context.Context, p *store.UpdateQueueParams) (store.Queue, error) {
	var q store.Queue
	err := s.write(ctx, func(t *txn) error {
		t.noteDue(p.Name, time.Time{}) // a shorter retention may make messages due now
		args := append([]any{p.Name}, configArgs(p.Config)...)
		tag, err := t.Exec(t.ctx, `UPDATE courier_queues SET visibility_ns = $2, max_attempts = $3,
			backoff_initial_ns = $4, backoff_max_ns = $5, backoff_multiplier = $6, backoff_jitter = $7,
			dead_letter_queue = $8, retention_ns = $9, max_message_bytes = $10, dedup_window_ns = $11
			WHERE name = $1`, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrQueueNotFound
		}
		q, err = queueWithStats(t.ctx, t, p.Name, p.Now)
		return err
	})
	return q, err
}

func (s *Store) GetQueue(ctx context.Context, p *store.GetQueueParams) (store.Queue, error) {
	var q store.Queue
	err := s.read(ctx, func(db queryer) error {
		var err error
		if p.ConfigOnly {
			q, err = scanQueue(db.QueryRow(ctx, `SELECT `+queueColumns+` FROM courier_queues WHERE name = $1`, p.Name))
			return err
		}
		q, err = queueWithStats(ctx, db, p.Name, p.Now)
		return err
	})
	return q, err
}

func (s *Store) ListQueues(ctx context.Context, p *store.ListQueuesParams) ([]store.Queue, error) {
	var out []store.Queue
	err := s.read(ctx, func(db queryer) error {
		rows, err := db.Query(ctx, `SELECT name FROM courier_queues ORDER BY name`)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, n := range names {
			q, err := queueWithStats(ctx, db, n, p.Now)
			if errors.Is(err, store.ErrQueueNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			out = append(out, q)
		}
		return nil
	})
	return out, err
}

// queryer is what a pool and a transaction share.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// queueWithStats reads a queue and its stats as of now. Counting is a scan
// of the queue's rows: what is ready and what is delayed depends on now.
func queueWithStats(ctx context.Context, db queryer, name string, now time.Time) (store.Queue, error) {
	q, err := scanQueue(db.QueryRow(ctx, `SELECT `+queueColumns+` FROM courier_queues WHERE name = $1`, name))
	if err != nil {
		return q, err
	}
	st := &q.Stats
	var oldest *time.Time
	err = db.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE lease IS NULL AND ready_at <= $2),
			count(*) FILTER (WHERE lease IS NULL AND ready_at > $2),
			count(*) FILTER (WHERE lease IS NOT NULL),
			min(sent_at) FILTER (WHERE lease IS NULL AND ready_at <= $2),
			(SELECT count(*) FROM courier_messages WHERE dead_from = $1),
			(SELECT coalesce(sum(sent), 0) FROM courier_counters WHERE queue = $1),
			(SELECT coalesce(sum(acked), 0) FROM courier_counters WHERE queue = $1)
		FROM courier_messages WHERE queue = $1`, name, us(now)).
		Scan(&st.Ready, &st.Delayed, &st.InFlight, &oldest, &st.Dead, &st.SentTotal, &st.AckedTotal)
	if err != nil {
		return q, fmt.Errorf("queue stats: %w", err)
	}
	if oldest != nil {
		st.OldestReady = *oldest
	}
	return q, nil
}

func (s *Store) DeleteQueue(ctx context.Context, p *store.DeleteQueueParams) error {
	return s.write(ctx, func(t *txn) error {
		t.noteDue(p.Name, time.Time{})
		var one int
		err := t.QueryRow(t.ctx, `SELECT 1 FROM courier_queues WHERE name = $1 FOR UPDATE`, p.Name).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrQueueNotFound
		}
		if err != nil {
			return err
		}
		rows, err := t.Query(t.ctx, `DELETE FROM courier_messages WHERE queue = $1 RETURNING id, is_task`, p.Name)
		if err != nil {
			return err
		}
		if err := finishDeleted(t, rows, p.Now, store.TaskCancelled, "queue deleted"); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM courier_dedup WHERE queue = $1`,
			`DELETE FROM courier_counters WHERE queue = $1`, `DELETE FROM courier_queues WHERE name = $1`} {
			if _, err := t.Exec(t.ctx, q, p.Name); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) PurgeQueue(ctx context.Context, p *store.PurgeQueueParams) (int, error) {
	n := 0
	err := s.write(ctx, func(t *txn) error {
		if _, err := lockQueue(t, p.Name); err != nil {
			return err
		}
		rows, err := t.Query(t.ctx, `DELETE FROM courier_messages WHERE queue = $1 AND lease IS NULL RETURNING id, is_task`, p.Name)
		if err != nil {
			return err
		}
		ids, err := collectDeleted(rows)
		if err != nil {
			return err
		}
		n = len(ids.all)
		return finishTasks(t, ids.tasks, p.Now, store.TaskCancelled, nil, "purged")
	})
	return n, err
}

func (s *Store) SetPaused(ctx context.Context, p *store.SetPausedParams) (store.Queue, error) {
	var q store.Queue
	err := s.write(ctx, func(t *txn) error {
		tag, err := t.Exec(t.ctx, `UPDATE courier_queues SET paused = $2 WHERE name = $1`, p.Name, p.Paused)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrQueueNotFound
		}
		if !p.Paused {
			t.wakeQueue(p.Name)
		}
		q, err = queueWithStats(t.ctx, t, p.Name, p.Now)
		return err
	})
	return q, err
}

// deleted are the ids of deleted messages, and which of them were tasks'.
type deleted struct{ all, tasks []int64 }

func collectDeleted(rows pgx.Rows) (deleted, error) {
	var d deleted
	var id int64
	var isTask bool
	_, err := pgx.ForEachRow(rows, []any{&id, &isTask}, func() error {
		d.all = append(d.all, id)
		if isTask {
			d.tasks = append(d.tasks, id)
		}
		return nil
	})
	return d, err
}

// finishDeleted ends the tasks of the deleted messages rows returns.
func finishDeleted(t *txn, rows pgx.Rows, now time.Time, state store.TaskState, reason string) error {
	d, err := collectDeleted(rows)
	if err != nil {
		return err
	}
	return finishTasks(t, d.tasks, now, state, nil, reason)
}
