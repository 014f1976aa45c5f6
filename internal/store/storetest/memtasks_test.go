package storetest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// The tasks of memStore. A task is a record in s.tasks, keyed by its
// message's id; the message carries task=true while the task is unfinished.
// Each message verb calls the hook below that matches what it did to the
// message (started, retried, finished), and the hook changes the record.

// newTask stores the record of a task sent as message id of queue.
func (s *memStore) newTask(id, queue string, req store.NewTask, now time.Time) {
	tk := &store.Task{ID: id, Queue: queue, State: store.TaskQueued, CreatedAt: now, Request: req}
	s.tasks[id] = tk
	s.touchTask(tk, now)
}

// touchTask records a change of tk: a new version, and its watchers woken.
func (s *memStore) touchTask(tk *store.Task, now time.Time) {
	tk.Version++
	tk.UpdatedAt = now
	s.wakeTask(tk.ID)
}

func (s *memStore) wakeTask(id string) {
	if ch, ok := s.taskWatch[id]; ok {
		close(ch)
		delete(s.taskWatch, id)
	}
}

// liveTask returns the unfinished task of message m, or nil.
func (s *memStore) liveTask(m *memMsg) *store.Task {
	if !m.task {
		return nil
	}
	if tk := s.tasks[m.id]; tk != nil && !tk.State.Finished() {
		return tk
	}
	return nil
}

// taskStarted: m was leased. A new attempt starts with no progress.
func (s *memStore) taskStarted(m *memMsg, now time.Time) {
	if tk := s.liveTask(m); tk != nil {
		tk.State, tk.Attempt, tk.Progress, tk.ProgressMessage = store.TaskRunning, m.attempt, 0, ""
		s.touchTask(tk, now)
	}
}

// taskRetried: m's attempt failed for reason and m waits for a retry.
func (s *memStore) taskRetried(m *memMsg, now time.Time, reason string) {
	if tk := s.liveTask(m); tk != nil {
		tk.State, tk.Error = store.TaskQueued, reason
		s.touchTask(tk, now)
	}
}

// cancelPending reports whether m's task is to be cancelled.
func (s *memStore) cancelPending(m *memMsg) bool {
	tk := s.liveTask(m)
	return tk != nil && tk.CancelRequested
}

// endCancelled ends m's task cancelled and removes m from q.
func (s *memStore) endCancelled(q *memQueue, m *memMsg, now time.Time) {
	s.finishTask(m, now, store.TaskCancelled, nil, "cancelled")
	delete(q.msgs, m.id)
	if m.group != "" {
		s.signal(q.q.Name) // the next of its group is free
	}
}

// finishTask ends m's task, if m is an unfinished task's: its state, result
// or reason, its result TTL, its webhook due now, its outcome sent.
func (s *memStore) finishTask(m *memMsg, now time.Time, state store.TaskState, result []byte, reason string) {
	tk := s.liveTask(m)
	if tk == nil {
		return
	}
	tk.State, tk.Result, tk.Error, tk.CancelRequested = state, slices.Clone(result), reason, false
	tk.FinishedAt, tk.ExpiresAt = now, now.Add(tk.Request.ResultTTL)
	if tk.Request.NotifyURL != "" {
		tk.Webhook.Pending, tk.Webhook.NextAttemptAt = true, now
	}
	s.touchTask(tk, now)
	if tk.Request.ReplyTo != "" {
		s.reply(tk, now)
	}
}

// reply sends tk's outcome to its reply_to queue, created if missing.
func (s *memStore) reply(tk *store.Task, now time.Time) {
	name := tk.Request.ReplyTo
	q, ok := s.queues[name]
	if !ok {
		q = s.create(name, store.DefaultConfig(name), now)
	}
	body, err := json.Marshal(struct {
		ID     string          `json:"id"`
		State  store.TaskState `json:"state"`
		Result json.RawMessage `json:"result,omitempty"`
		Error  string          `json:"error,omitempty"`
	}{tk.ID, tk.State, tk.Result, tk.Error})
	if err != nil {
		panic(err) // results are valid JSON: the broker checks them
	}
	s.seq++
	m := &memMsg{id: fmt.Sprintf("%020d", s.seq), body: body, kind: store.BodyJSON, sentAt: now,
		headers: map[string]string{store.HeaderTaskID: tk.ID, store.HeaderTaskState: string(tk.State)}}
	q.msgs[m.id] = m
	q.sent++
	s.signal(name)
}

// expireTasks forgets the finished tasks whose result TTL has ended.
func (s *memStore) expireTasks(now time.Time) {
	for id, tk := range s.tasks {
		if tk.State.Finished() && !now.Before(tk.ExpiresAt) {
			delete(s.tasks, id)
			s.wakeTask(id)
		}
	}
}

// task finds a task readable as of now.
func (s *memStore) task(id string, now time.Time) (*store.Task, error) {
	tk, ok := s.tasks[id]
	if !ok || (tk.State.Finished() && !now.Before(tk.ExpiresAt)) {
		return nil, store.ErrTaskNotFound
	}
	return tk, nil
}

// copyTask is a copy of tk that shares no memory with it.
func copyTask(tk *store.Task) store.Task {
	c := *tk
	c.Result = slices.Clone(tk.Result)
	c.Webhook.Attempts = slices.Clone(tk.Webhook.Attempts)
	return c
}

func (s *memStore) GetTask(_ context.Context, p *store.GetTaskParams) (store.Task, error) {
	if err := s.lock(); err != nil {
		return store.Task{}, err
	}
	defer s.mu.Unlock()
	tk, err := s.task(p.ID, p.Now)
	if err != nil {
		return store.Task{}, err
	}
	return copyTask(tk), nil
}

func (s *memStore) GetTasks(_ context.Context, p *store.GetTasksParams) ([]store.Task, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	ts := make([]store.Task, len(p.IDs))
	for i, id := range p.IDs {
		tk, err := s.task(id, p.Now)
		if err != nil {
			return nil, err
		}
		ts[i] = copyTask(tk)
	}
	return ts, nil
}

func (s *memStore) CancelTask(_ context.Context, p *store.CancelTaskParams) (store.Task, error) {
	if err := s.lock(); err != nil {
		return store.Task{}, err
	}
	defer s.mu.Unlock()
	tk, err := s.task(p.ID, p.Now)
	if err != nil {
		return store.Task{}, err
	}
	switch tk.State {
	case store.TaskRunning:
		if !tk.CancelRequested {
			tk.CancelRequested = true
			s.touchTask(tk, p.Now)
		}
	case store.TaskQueued:
		q := s.queues[tk.Queue]
		s.endCancelled(q, q.msgs[tk.ID], p.Now)
	}
	return copyTask(tk), nil
}

func (s *memStore) Progress(_ context.Context, p *store.ProgressParams) (store.Task, error) {
	if err := s.lock(); err != nil {
		return store.Task{}, err
	}
	defer s.mu.Unlock()
	tk, err := s.task(p.ID, p.Now)
	if err != nil {
		return store.Task{}, err
	}
	q, ok := s.queues[tk.Queue]
	if !ok {
		return store.Task{}, store.ErrLeaseExpired
	}
	m, err := held(q, p.Lease, p.Now)
	if err != nil {
		return store.Task{}, err
	}
	if m.id != p.ID || s.liveTask(m) == nil {
		return store.Task{}, store.ErrLeaseExpired // another message's lease, or a plain copy's
	}
	if tk.CancelRequested {
		s.endCancelled(q, m, p.Now)
		return store.Task{}, store.ErrTaskCancelled
	}
	vis := p.Visibility
	if vis == 0 {
		vis = q.q.Config.VisibilityTimeout
	}
	m.leaseExp = p.Now.Add(vis)
	tk.Progress, tk.ProgressMessage = p.Progress, p.Message
	s.touchTask(tk, p.Now)
	return copyTask(tk), nil
}

func (s *memStore) WatchTask(id string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.taskWatch[id]
	if !ok {
		ch = make(chan struct{})
		s.taskWatch[id] = ch
	}
	return ch
}

func (s *memStore) DueWebhooks(_ context.Context, p *store.DueWebhooksParams) ([]store.Task, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var due []*store.Task
	for _, id := range slices.Sorted(maps.Keys(s.tasks)) {
		tk := s.tasks[id]
		if h := tk.Webhook; h.Pending && !h.NextAttemptAt.After(p.Now) && p.Now.Before(tk.ExpiresAt) {
			due = append(due, tk)
		}
	}
	slices.SortStableFunc(due, func(a, b *store.Task) int { return a.Webhook.NextAttemptAt.Compare(b.Webhook.NextAttemptAt) })
	out := []store.Task{}
	for _, tk := range due[:min(len(due), p.Max)] {
		out = append(out, copyTask(tk))
	}
	return out, nil
}

func (s *memStore) RecordWebhook(_ context.Context, p *store.RecordWebhookParams) (store.Task, error) {
	if err := s.lock(); err != nil {
		return store.Task{}, err
	}
	defer s.mu.Unlock()
	tk, err := s.task(p.ID, p.Now)
	if err != nil {
		return store.Task{}, err
	}
	h := &tk.Webhook
	h.Attempts = append(h.Attempts, p.Attempt)
	h.Delivered = h.Delivered || p.Delivered
	h.Pending = !h.Delivered && !p.NextAttemptAt.IsZero()
	h.NextAttemptAt = time.Time{}
	if h.Pending {
		h.NextAttemptAt = p.NextAttemptAt
	}
	s.touchTask(tk, p.Now)
	return copyTask(tk), nil
}
