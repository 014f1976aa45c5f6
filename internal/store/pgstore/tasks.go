package pgstore

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// The task hooks of the message verbs. A task is a row of courier_tasks
// with its message's id; the message has is_task set while the task is
// unfinished. Each message verb calls the hook that matches what it did to
// the message (started, retried, finished), which changes the record, raises
// its version and wakes its watchers. Every hook locks the message row
// before the task row, as every verb does, so that they cannot deadlock.

// live is the condition of a task that has not finished.
const live = `state IN ('queued', 'running')`

func insertTask(t *txn, id int64, queue string, req *store.NewTask, now time.Time) error {
	_, err := t.Exec(t.ctx, `INSERT INTO courier_tasks (id, queue, state, created_at, updated_at, version,
			notify_url, notify_secret, reply_to, result_ttl_ns)
		VALUES ($1, $2, 'queued', $3, $3, 1, $4, $5, $6, $7)`,
		id, queue, now, req.NotifyURL, req.NotifySecret, req.ReplyTo, int64(req.ResultTTL))
	t.wakeTask(formatID(id))
	return err
}

// taskStart is a task's message leased, for its attempt-th time.
type taskStart struct {
	id      int64
	attempt int
}

// startTasks: the messages were leased. A new attempt starts with no progress.
func startTasks(t *txn, started []taskStart, now time.Time) error {
	if len(started) == 0 {
		return nil
	}
	ids, attempts := make([]int64, len(started)), make([]int32, len(started))
	for i, s := range started {
		ids[i], attempts[i] = s.id, int32(s.attempt)
		t.wakeTask(formatID(s.id))
	}
	_, err := t.Exec(t.ctx, `UPDATE courier_tasks k SET state = 'running', attempt = u.attempt, progress = 0,
			progress_message = '', version = version + 1, updated_at = $3
		FROM unnest($1::bigint[], $2::integer[]) AS u(id, attempt)
		WHERE k.id = u.id AND k.`+live, ids, attempts, now)
	return err
}

// retryTask: the message's attempt failed for reason; it waits for a retry.
func retryTask(t *txn, id int64, now time.Time, reason string) error {
	return requeueTask(t, id, now, &reason, nil)
}

// requeueTask: the task's message waits to be delivered again; the task's
// error becomes reason and its attempt attempt, where not nil.
func requeueTask(t *txn, id int64, now time.Time, reason *string, attempt *int) error {
	tag, err := t.Exec(t.ctx, `UPDATE courier_tasks SET state = 'queued', error = coalesce($2, error),
		attempt = coalesce($4, attempt), version = version + 1, updated_at = $3
		WHERE id = $1 AND `+live, id, reason, now, attempt)
	if err == nil && tag.RowsAffected() > 0 {
		t.wakeTask(formatID(id))
	}
	return err
}

// cancelPending reports whether the task of message id (a task's message)
// is to be cancelled, and locks the task.
func cancelPending(t *txn, id int64) (bool, error) {
	var pending bool
	err := t.QueryRow(t.ctx, `SELECT coalesce((SELECT cancel_requested FROM courier_tasks
		WHERE id = $1 AND `+live+` FOR UPDATE), false)`, id).Scan(&pending)
	return pending, err
}

// endCancelled ends the task of message id cancelled and deletes the message.
func endCancelled(t *txn, queue string, id int64, grouped bool, now time.Time) error {
	if err := finishTasks(t, []int64{id}, now, store.TaskCancelled, nil, "cancelled"); err != nil {
		return err
	}
	if _, err := t.Exec(t.ctx, `DELETE FROM courier_messages WHERE id = $1`, id); err != nil {
		return err
	}
	if grouped {
		t.wakeQueue(queue) // the next of its group is free
	}
	return nil
}

// taskEnd is a task to finish, with its result.
type taskEnd struct {
	id     int64
	result []byte
}

// finishTasks ends the unfinished tasks among ids, in id order, with state
// and reason (and result, when there is one for all).
func finishTasks(t *txn, ids []int64, now time.Time, state store.TaskState, result []byte, reason string) error {
	ends := make([]taskEnd, len(ids))
	for i, id := range ids {
		ends[i] = taskEnd{id, result}
	}
	return endTasks(t, ends, now, state, reason)
}

// endTasks ends each unfinished task of ends, in id order: its state,
// result or reason, its result TTL, its webhook due now, its outcome sent
// to its reply_to queue.
func endTasks(t *txn, ends []taskEnd, now time.Time, state store.TaskState, reason string) error {
	slices.SortFunc(ends, func(a, b taskEnd) int { return int(a.id - b.id) })
	for _, e := range ends {
		var replyTo string
		err := t.QueryRow(t.ctx, `UPDATE courier_tasks SET state = $2, result = $3, error = $4,
				cancel_requested = false, finished_at = $5,
				expires_at = $5::timestamptz + (result_ttl_ns / 1000) * interval '1 microsecond',
				hook_pending = notify_url <> '', hook_next = CASE WHEN notify_url <> '' THEN $5::timestamptz END,
				version = version + 1, updated_at = $5
			WHERE id = $1 AND `+live+` RETURNING reply_to`,
			e.id, string(state), e.result, reason, now).Scan(&replyTo)
		if isNoRows(err) {
			continue // not a task, or finished already
		}
		if err != nil {
			return err
		}
		t.wakeTask(formatID(e.id))
		if replyTo != "" {
			if err := reply(t, replyTo, formatID(e.id), state, e.result, reason, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// reply sends a task's outcome to its reply_to queue, created if missing.
func reply(t *txn, queue, id string, state store.TaskState, result []byte, reason string, now time.Time) error {
	body, err := json.Marshal(struct {
		ID     string          `json:"id"`
		State  store.TaskState `json:"state"`
		Result json.RawMessage `json:"result,omitempty"`
		Error  string          `json:"error,omitempty"`
	}{id, state, result, reason})
	if err != nil {
		return err
	}
	if err := ensureQueue(t, queue, now); err != nil {
		return err
	}
	q, err := lockQueue(t, queue)
	if err != nil {
		return err
	}
	_, err = send(t, q, []store.NewMessage{{Body: body, Kind: store.BodyJSON,
		Headers: map[string]string{store.HeaderTaskID: id, store.HeaderTaskState: string(state)}}}, now)
	return err
}
