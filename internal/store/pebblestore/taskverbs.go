package pebblestore

import (
	"context"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// GetTask returns a task; ErrTaskNotFound once its result TTL has passed.
// GetTask is GetTasks of one task.
func (s *Store) GetTask(ctx context.Context, p *store.GetTaskParams) (store.Task, error) {
	ts, err := s.GetTasks(ctx, &store.GetTasksParams{IDs: []string{p.ID}, Now: p.Now})
	if err != nil {
		return store.Task{}, err
	}
	return ts[0], nil
}

// GetTasks reads the tasks under one hold of the mutex (a batch submit's
// answer: a read each held it a hundred times for a batch of a hundred).
func (s *Store) GetTasks(ctx context.Context, p *store.GetTasksParams) ([]store.Task, error) {
	var mark uint64
	ts, err := s.getTasks(p, &mark)
	if err := s.dur.wait(ctx, mark); err != nil {
		return nil, err
	}
	return ts, err
}

// getTasks reads tasks under one hold of the mutex; *mark is set to the
// batch the reads may have seen.
func (s *Store) getTasks(p *store.GetTasksParams, mark *uint64) ([]store.Task, error) {
	seqs := make([]uint64, len(p.IDs))
	for i, id := range p.IDs {
		seq, err := parseID(id)
		if err != nil {
			return nil, store.ErrTaskNotFound
		}
		seqs[i] = seq
	}
	if err := s.refused(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	*mark = s.dur.mark()
	if err := s.usable(); err != nil {
		return nil, err
	}
	t := &txn{s: s, b: s.db.NewIndexedBatch(), now: p.Now}
	defer t.b.Close()
	ts := make([]store.Task, len(seqs))
	for i, seq := range seqs {
		r, ok, err := t.getTask(seq)
		if err != nil {
			return nil, err
		}
		if !ok || (!r.ExpiresAt.IsZero() && !r.ExpiresAt.After(p.Now)) {
			return nil, store.ErrTaskNotFound
		}
		ts[i] = r.task(seq)
	}
	t.cacheTasks() // nothing to apply: what it read, and decoded, is what the store holds
	return ts, nil
}

// CancelTask cancels a queued task at once and marks a running one.
func (s *Store) CancelTask(ctx context.Context, p *store.CancelTaskParams) (store.Task, error) {
	seq, err := parseID(p.ID)
	if err != nil {
		return store.Task{}, store.ErrTaskNotFound
	}
	var out store.Task
	err = s.update(p.Now, func(t *txn) error {
		r, ok, err := t.getTask(seq)
		if err != nil {
			return err
		}
		if !ok || (!r.ExpiresAt.IsZero() && !r.ExpiresAt.After(t.now)) {
			return store.ErrTaskNotFound
		}
		if err := t.cancel(seq, r); err != nil {
			return err
		}
		r, _, err = t.getTask(seq)
		if err == nil {
			out = r.task(seq)
		}
		return err
	})
	return out, err
}

// cancel ends a queued task, removing its message, or marks a running one.
func (t *txn) cancel(seq uint64, r *taskRecord) error {
	switch r.State {
	case store.TaskRunning:
		if !r.CancelRequested {
			r.CancelRequested = true
			t.putTask(seq, r)
		}
		return nil
	case store.TaskQueued:
	default:
		return nil // finished: nothing to cancel
	}
	w, ok := t.queue(r.Queue)
	if !ok {
		return orCorrupt(nil, "queued task without its queue")
	}
	m, found, err := t.getMsg(w, seq)
	if err != nil || !found {
		return orCorrupt(err, "queued task without its message")
	}
	if err := t.finishTask(seq, &m, store.TaskCancelled, nil, "cancelled"); err != nil {
		return err
	}
	return t.remove(w, seq, &m)
}

// cancelRequested reports whether m is the message of a task whose cancel
// was requested.
func (t *txn) cancelRequested(seq uint64, m *msg) (bool, error) {
	if !m.task {
		return false, nil
	}
	r, ok, err := t.getTask(seq)
	return ok && r.CancelRequested, err
}

// endIfCancelled ends a running task whose cancel was requested: its
// message is removed and the caller (extend, progress) gets ErrTaskCancelled.
func (t *txn) endIfCancelled(w *qwork, seq uint64, m *msg) error {
	if !m.task {
		return nil
	}
	r, ok, err := t.getTask(seq)
	if err != nil || !ok || !r.CancelRequested {
		return err
	}
	if err := t.finishTask(seq, m, store.TaskCancelled, nil, "cancelled"); err != nil {
		return err
	}
	if err := t.remove(w, seq, m); err != nil {
		return err
	}
	return errCancelled
}

// errCancelled makes update apply the batch and then report ErrTaskCancelled.
var errCancelled = store.ErrTaskCancelled

// Progress records a running task's progress and extends its lease.
func (s *Store) Progress(ctx context.Context, p *store.ProgressParams) (store.Task, error) {
	seq, err := parseID(p.ID)
	if err != nil {
		return store.Task{}, store.ErrTaskNotFound
	}
	var out store.Task
	err = s.updateKeep(p.Now, errCancelled, func(t *txn) error {
		r, ok, err := t.getTask(seq)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrTaskNotFound
		}
		w, ok := t.queue(r.Queue)
		if !ok {
			return store.ErrLeaseExpired
		}
		held, m, err := t.held(w, p.Lease)
		if err != nil {
			return err
		}
		if held != seq || !m.task || r.State.Finished() {
			return store.ErrLeaseExpired // a lease, but not of this running task
		}
		if err := t.endIfCancelled(w, seq, &m); err != nil {
			return err
		}
		t.extend(w, seq, &m, p.Visibility)
		r.Progress, r.ProgressMessage = p.Progress, p.Message
		t.putTask(seq, r)
		out = r.task(seq)
		return nil
	})
	return out, err
}

// extend moves an in-flight message's lease to now+vis (0: the queue's).
func (t *txn) extend(w *qwork, seq uint64, m *msg, vis time.Duration) time.Time {
	if vis == 0 {
		vis = w.rec.Config.VisibilityTimeout
	}
	t.unindex(w, seq, m)
	m.leaseExp = t.now.Add(vis)
	t.setState(w, seq, m, stInFlight)
	return m.leaseExp
}

// WatchWebhooks returns a channel closed once a task with a webhook has
// finished durably, or the store closes. On a closed store it is nil, so
// that a loop on it waits for its own timer instead of spinning.
func (s *Store) WatchWebhooks() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.hookWatch == nil {
		s.hookWatch = make(chan struct{})
	}
	return s.hookWatch
}

// WatchTask returns a channel closed at the task's next change.
func (s *Store) WatchTask(id string) <-chan struct{} {
	if s.refused() != nil {
		return closedChan // the read that follows answers why
	}
	seq, err := parseID(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.taskWatchers[seq]
	if !ok {
		ch = make(chan struct{})
		if s.closed || err != nil {
			close(ch)
			return ch
		}
		s.taskWatchers[seq] = ch
	}
	return ch
}
