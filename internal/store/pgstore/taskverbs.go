package pgstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/internal/store"
)

const taskColumns = `id, queue, state, attempt, progress, progress_message, result, error, created_at,
	updated_at, finished_at, expires_at, version, cancel_requested, notify_url, notify_secret, reply_to,
	result_ttl_ns, hook_pending, hook_next, hook_delivered, hook_attempts`

// readable is the condition of a task that GetTask may return as of $2.
const readable = `(expires_at IS NULL OR expires_at > $2)`

func scanTask(row pgx.Row) (store.Task, error) {
	var tk store.Task
	var id, ttl int64
	var finished, expires, hookNext *time.Time
	var attempts []byte
	var state string
	err := row.Scan(&id, &tk.Queue, &state, &tk.Attempt, &tk.Progress, &tk.ProgressMessage, &tk.Result,
		&tk.Error, &tk.CreatedAt, &tk.UpdatedAt, &finished, &expires, &tk.Version, &tk.CancelRequested,
		&tk.Request.NotifyURL, &tk.Request.NotifySecret, &tk.Request.ReplyTo, &ttl,
		&tk.Webhook.Pending, &hookNext, &tk.Webhook.Delivered, &attempts)
	if isNoRows(err) {
		return tk, store.ErrTaskNotFound
	}
	if err != nil {
		return tk, err
	}
	tk.ID, tk.State, tk.Request.ResultTTL = formatID(id), store.TaskState(state), time.Duration(ttl)
	for src, dst := range map[*time.Time]*time.Time{finished: &tk.FinishedAt, expires: &tk.ExpiresAt, hookNext: &tk.Webhook.NextAttemptAt} {
		if src != nil {
			*dst = *src
		}
	}
	if err := json.Unmarshal(attempts, &tk.Webhook.Attempts); err != nil {
		return tk, err
	}
	if len(tk.Webhook.Attempts) == 0 {
		tk.Webhook.Attempts = nil
	}
	return tk, nil
}

// taskByID reads a task readable as of now; lock adds FOR UPDATE.
func taskByID(ctx context.Context, db queryer, id string, now time.Time, lock bool) (store.Task, error) {
	n, ok := parseID(id)
	if !ok {
		return store.Task{}, store.ErrTaskNotFound
	}
	sql := `SELECT ` + taskColumns + ` FROM courier_tasks WHERE id = $1 AND ` + readable
	if lock {
		sql += ` FOR UPDATE`
	}
	return scanTask(db.QueryRow(ctx, sql, n, now))
}

// queryTasks runs a query of taskColumns and scans every task it returns.
func queryTasks(ctx context.Context, db queryer, sql string, args ...any) ([]store.Task, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Task
	for rows.Next() {
		tk, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, tk)
	}
	return out, rows.Err()
}

func (s *Store) GetTask(ctx context.Context, p *store.GetTaskParams) (store.Task, error) {
	var tk store.Task
	err := s.read(ctx, func(db queryer) error {
		var err error
		tk, err = taskByID(ctx, db, p.ID, us(p.Now), false)
		return err
	})
	return tk, err
}

// GetTasks reads the tasks in one query (a batch submit's answer: a query
// each was a round trip each).
func (s *Store) GetTasks(ctx context.Context, p *store.GetTasksParams) ([]store.Task, error) {
	ns := make([]int64, len(p.IDs))
	for i, id := range p.IDs {
		n, ok := parseID(id)
		if !ok {
			return nil, store.ErrTaskNotFound
		}
		ns[i] = n
	}
	var found []store.Task
	err := s.read(ctx, func(db queryer) error {
		var err error
		found, err = queryTasks(ctx, db, `SELECT `+taskColumns+` FROM courier_tasks WHERE id = ANY($1) AND `+readable, ns, us(p.Now))
		return err
	})
	if err != nil {
		return nil, err
	}
	byID := make(map[string]store.Task, len(found))
	for _, tk := range found {
		byID[tk.ID] = tk
	}
	ts := make([]store.Task, len(ns))
	for i, n := range ns {
		tk, ok := byID[formatID(n)]
		if !ok {
			return nil, store.ErrTaskNotFound
		}
		ts[i] = tk
	}
	return ts, nil
}

func (s *Store) CancelTask(ctx context.Context, p *store.CancelTaskParams) (store.Task, error) {
	var tk store.Task
	now := us(p.Now)
	err := s.write(ctx, func(t *txn) error {
		n, ok := parseID(p.ID)
		if !ok {
			return store.ErrTaskNotFound
		}
		// The message first, then the task: the order of every verb.
		var queue string
		var grouped bool
		err := t.QueryRow(t.ctx, `SELECT queue, grp IS NOT NULL FROM courier_messages WHERE id = $1 FOR UPDATE`, n).Scan(&queue, &grouped)
		if err != nil && !isNoRows(err) {
			return err
		}
		if tk, err = taskByID(t.ctx, t, p.ID, now, true); err != nil {
			return err
		}
		switch tk.State {
		case store.TaskRunning:
			if !tk.CancelRequested {
				_, err = t.Exec(t.ctx, `UPDATE courier_tasks SET cancel_requested = true, version = version + 1,
					updated_at = $2 WHERE id = $1`, n, now)
				t.wakeTask(p.ID)
			}
		case store.TaskQueued:
			err = endCancelled(t, queue, n, grouped, now)
		default:
			return nil
		}
		if err != nil {
			return err
		}
		tk, err = taskByID(t.ctx, t, p.ID, now, false)
		return err
	})
	return tk, err
}

func (s *Store) Progress(ctx context.Context, p *store.ProgressParams) (store.Task, error) {
	var tk store.Task
	now := us(p.Now)
	err := s.write(ctx, func(t *txn) error {
		var err error
		if tk, err = taskByID(t.ctx, t, p.ID, now, false); err != nil {
			return err
		}
		q, err := lockQueue(t, tk.Queue)
		if isErr(err, store.ErrQueueNotFound) {
			return store.ErrLeaseExpired
		}
		if err != nil {
			return err
		}
		m, err := held(t, q.Name, p.Lease, now)
		if err != nil {
			return err
		}
		if formatID(m.id) != p.ID || !m.isTask {
			return store.ErrLeaseExpired // another message's lease, or a plain copy's
		}
		if tk, err = taskByID(t.ctx, t, p.ID, now, true); err != nil {
			return err
		}
		if tk.State.Finished() {
			return store.ErrLeaseExpired
		}
		if tk.CancelRequested {
			t.after = store.ErrTaskCancelled
			return endCancelled(t, q.Name, m.id, m.grouped, now)
		}
		vis := p.Visibility
		if vis == 0 {
			vis = q.Config.VisibilityTimeout
		}
		if _, err := t.Exec(t.ctx, `UPDATE courier_messages SET lease_exp = $2 WHERE id = $1`, m.id, us(now.Add(vis))); err != nil {
			return err
		}
		if _, err := t.Exec(t.ctx, `UPDATE courier_tasks SET progress = $2, progress_message = $3,
			version = version + 1, updated_at = $4 WHERE id = $1`, m.id, p.Progress, p.Message, now); err != nil {
			return err
		}
		t.wakeTask(p.ID)
		tk, err = taskByID(t.ctx, t, p.ID, now, false)
		return err
	})
	if err != nil {
		return store.Task{}, err
	}
	return tk, nil
}

func (s *Store) DueWebhooks(ctx context.Context, p *store.DueWebhooksParams) ([]store.Task, error) {
	out := []store.Task{}
	now := us(p.Now)
	if !s.leader() && !s.closed.Load() {
		return out, nil // the leader delivers webhooks, so each goes out once
	}
	err := s.read(ctx, func(db queryer) error {
		var err error
		out, err = queryTasks(ctx, db, `SELECT `+taskColumns+` FROM courier_tasks
			WHERE hook_pending AND hook_next <= $2 AND `+readable+`
			ORDER BY hook_next, id LIMIT $1`, p.Max, now)
		return err
	})
	return out, err
}

func (s *Store) RecordWebhook(ctx context.Context, p *store.RecordWebhookParams) (store.Task, error) {
	var tk store.Task
	now := us(p.Now)
	err := s.write(ctx, func(t *txn) error {
		var err error
		if tk, err = taskByID(t.ctx, t, p.ID, now, true); err != nil {
			return err
		}
		h := &tk.Webhook
		h.Attempts = append(h.Attempts, p.Attempt)
		h.Delivered = h.Delivered || p.Delivered
		h.Pending = !h.Delivered && !p.NextAttemptAt.IsZero()
		h.NextAttemptAt = time.Time{}
		if h.Pending {
			h.NextAttemptAt = us(p.NextAttemptAt)
		}
		attempts, err := json.Marshal(h.Attempts)
		if err != nil {
			return err
		}
		id, _ := parseID(p.ID)
		if _, err := t.Exec(t.ctx, `UPDATE courier_tasks SET hook_attempts = $2, hook_delivered = $3,
				hook_pending = $4, hook_next = $5, version = version + 1, updated_at = $6 WHERE id = $1`,
			id, attempts, h.Delivered, h.Pending, nullTime(h.NextAttemptAt), now); err != nil {
			return err
		}
		t.wakeTask(p.ID)
		tk, err = taskByID(t.ctx, t, p.ID, now, false)
		return err
	})
	return tk, err
}
