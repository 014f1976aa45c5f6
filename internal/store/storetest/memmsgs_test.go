package storetest_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// The message verbs of memStore.

func (s *memStore) Send(ctx context.Context, p *store.SendParams) ([]store.SendResult, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, err := s.queue(p.Queue)
	if err != nil {
		return nil, err
	}
	out := make([]store.SendResult, len(p.Messages))
	for i, nm := range p.Messages {
		if w := q.q.Config.DedupWindow; w > 0 && nm.DedupKey != "" {
			if d, ok := q.dedup[nm.DedupKey]; ok && p.Now.Before(d.at.Add(w)) {
				out[i] = store.SendResult{ID: d.id, Duplicate: true}
				continue
			}
		}
		s.seq++
		m := &memMsg{id: fmt.Sprintf("%020d", s.seq), body: slices.Clone(nm.Body), kind: nm.Kind,
			headers: maps.Clone(nm.Headers), priority: nm.Priority, group: nm.Group, sentAt: p.Now,
			task: nm.Task != nil}
		if nm.Task != nil {
			s.newTask(m.id, p.Queue, *nm.Task, p.Now)
		}
		if nm.NotBefore.After(p.Now) {
			m.readyAt, m.delayed = nm.NotBefore, true
		}
		q.msgs[m.id] = m
		q.sent++
		if nm.DedupKey != "" {
			q.dedup[nm.DedupKey] = dedupEntry{id: m.id, at: p.Now}
		}
		out[i] = store.SendResult{ID: m.id}
	}
	s.signal(p.Queue)
	return out, nil
}

// due applies what now makes due in q, counting it in r.
func (s *memStore) due(q *memQueue, now time.Time, retry store.RetryFunc, r *store.TickResult) {
	for _, id := range slices.Sorted(maps.Keys(q.msgs)) {
		m := q.msgs[id]
		if m.lease == "" || now.Before(m.leaseExp) {
			continue
		}
		if s.cancelPending(m) {
			s.endCancelled(q, m, now)
			r.Expired++
			continue
		}
		delay, dead := retry(q.q.Config, m.attempt, nil)
		if dead {
			s.deadLetter(q, m, now, "lease expired", store.DeadMaxAttempts)
			r.DeadLettered++
			continue
		}
		m.lease, m.readyAt = "", m.leaseExp.Add(delay)
		m.delayed = m.readyAt.After(now) // a retry already due is not promoted too
		s.taskRetried(m, now, "lease expired")
		r.Expired++
		s.signal(q.q.Name)
	}
	for id, m := range q.msgs {
		if m.lease != "" || m.readyAt.After(now) {
			continue
		}
		if m.delayed {
			m.delayed = false
			r.Promoted++
		}
		if !now.Before(m.sentAt.Add(q.q.Config.Retention)) {
			s.finishTask(m, now, store.TaskFailed, nil, "expired: the queue's retention ended before it ran")
			delete(q.msgs, id)
			r.Dropped++
		}
	}
	for k, d := range q.dedup {
		if !now.Before(d.at.Add(q.q.Config.DedupWindow)) {
			delete(q.dedup, k)
		}
	}
}

// deadLetter moves m out of q into q's dead-letter queue, or drops it, for
// reason why; its task ends failed.
func (s *memStore) deadLetter(q *memQueue, m *memMsg, now time.Time, errText, why string) {
	s.finishTask(m, now, store.TaskFailed, nil, errText)
	m.task = false // a dead letter is a plain message
	delete(q.msgs, m.id)
	name := q.q.Config.DeadLetterQueue
	if name == "" {
		return
	}
	dq, ok := s.queues[name]
	if !ok {
		dq = s.create(name, store.DefaultConfig(name), now)
	}
	if m.headers == nil {
		m.headers = map[string]string{}
	}
	m.headers[store.HeaderSourceQueue] = q.q.Name
	m.headers[store.HeaderAttempts] = strconv.Itoa(m.attempt)
	m.headers[store.HeaderError] = errText
	m.headers[store.HeaderDeadReason] = why
	// The dead letter keeps its group: in the dead-letter queue, and back
	// in its queue after a redrive, it holds its place by send order.
	m.attempt, m.lease, m.readyAt, m.delayed, m.deadFrom = 0, "", time.Time{}, false, q.q.Name
	dq.msgs[m.id] = m
	s.signal(name)
	s.signal(q.q.Name) // the next of its group may be free
}

// nextDue is when q next changes by itself; zero if never.
func nextDue(q *memQueue, now time.Time) time.Time {
	var next time.Time
	for _, m := range q.msgs {
		t := m.leaseExp
		if m.lease == "" {
			if !m.readyAt.After(now) {
				continue
			}
			t = m.readyAt
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}

func (s *memStore) Lease(_ context.Context, p *store.LeaseParams) (store.LeaseResult, error) {
	if err := s.lock(); err != nil {
		return store.LeaseResult{}, err
	}
	defer s.mu.Unlock()
	q, err := s.queue(p.Queue)
	if err != nil {
		return store.LeaseResult{}, err
	}
	var res store.LeaseResult
	if p.Acks != nil {
		res.Acked = s.ack(q, p.Queue, p.Acks, p.AckResults, p.Now)
	}
	s.due(q, p.Now, p.Retry, &res.Due)
	if !q.q.Paused {
		// group → its head: the member in flight if any (a redriven older
		// member may not overtake it), else the first by send order.
		heads := map[string]string{}
		busy := map[string]bool{}
		for id, m := range q.msgs {
			switch h, ok := heads[m.group]; {
			case m.group == "" || busy[m.group]:
			case m.lease != "":
				heads[m.group], busy[m.group] = id, true
			case !ok || id < h:
				heads[m.group] = id
			}
		}
		var ready []*memMsg
		for id, m := range q.msgs {
			if m.lease == "" && !m.readyAt.After(p.Now) && (m.group == "" || heads[m.group] == id) {
				ready = append(ready, m)
			}
		}
		slices.SortFunc(ready, func(a, b *memMsg) int {
			return cmp.Or(cmp.Compare(b.priority, a.priority), cmp.Compare(a.id, b.id))
		})
		vis := p.Visibility
		if vis == 0 {
			vis = q.q.Config.VisibilityTimeout
		}
		budget := p.MaxBytes
		for _, m := range ready[:min(len(ready), p.Max)] {
			if p.MaxBytes > 0 && budget <= 0 {
				break // the bodies handed out reached MaxBytes
			}
			budget -= len(m.body)
			s.leases++
			m.attempt++
			m.lease, m.leaseExp = fmt.Sprintf("%d.%s", s.leases, m.id), p.Now.Add(vis)
			s.taskStarted(m, p.Now)
			res.Messages = append(res.Messages, store.Message{ID: m.id, Queue: p.Queue, Body: slices.Clone(m.body),
				Kind: m.kind, Headers: maps.Clone(m.headers), Priority: m.priority, Group: m.group,
				Attempt: m.attempt, SentAt: m.sentAt, Lease: m.lease, LeaseExpiresAt: m.leaseExp})
		}
	}
	res.NextDue = nextDue(q, p.Now)
	return res, nil
}

// held returns the in-flight message whose current, unexpired lease is lease.
func held(q *memQueue, lease string, now time.Time) (*memMsg, error) {
	if !leaseRE.MatchString(lease) {
		return nil, store.ErrInvalidLease
	}
	for _, m := range q.msgs {
		if m.lease == lease && now.Before(m.leaseExp) {
			return m, nil
		}
	}
	return nil, store.ErrLeaseExpired
}

func (s *memStore) Ack(_ context.Context, p *store.AckParams) ([]error, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	q, err := s.queue(p.Queue)
	if err != nil {
		return nil, err
	}
	return s.ack(q, p.Queue, p.Leases, p.Results, p.Now), nil
}

// ack deletes the messages of valid leases; s.mu is held.
func (s *memStore) ack(q *memQueue, queue string, leases []string, results [][]byte, now time.Time) []error {
	out := make([]error, len(leases))
	for i, l := range leases {
		m, err := held(q, l, now)
		if err != nil {
			out[i] = err
			continue
		}
		var result []byte
		if results != nil {
			result = results[i]
		}
		s.finishTask(m, now, store.TaskSucceeded, result, "")
		delete(q.msgs, m.id)
		q.acked++
		if m.group != "" {
			s.signal(queue)
		}
	}
	return out
}

func (s *memStore) Nack(_ context.Context, p *store.NackParams) (store.NackResult, error) {
	if err := s.lock(); err != nil {
		return store.NackResult{}, err
	}
	defer s.mu.Unlock()
	q, err := s.queue(p.Queue)
	if err != nil {
		return store.NackResult{}, err
	}
	m, err := held(q, p.Lease, p.Now)
	if err != nil {
		return store.NackResult{}, err
	}
	if p.Terminate {
		s.deadLetter(q, m, p.Now, p.Error, store.DeadTerminated)
		return store.NackResult{DeadLettered: true}, nil
	}
	if s.cancelPending(m) {
		s.endCancelled(q, m, p.Now)
		return store.NackResult{Cancelled: true}, nil
	}
	if p.Release {
		m.attempt = max(m.attempt-1, 0)
		m.lease, m.readyAt, m.delayed = "", p.Now, false
		if p.Delay != nil {
			m.readyAt, m.delayed = p.Now.Add(*p.Delay), *p.Delay > 0
		}
		if tk := s.liveTask(m); tk != nil {
			tk.State, tk.Attempt = store.TaskQueued, m.attempt
			s.touchTask(tk, p.Now)
		}
		s.signal(p.Queue)
		return store.NackResult{RetryAt: m.readyAt}, nil
	}
	delay, dead := p.Retry(q.q.Config, m.attempt, p.Delay)
	if dead {
		s.deadLetter(q, m, p.Now, p.Error, store.DeadMaxAttempts)
		return store.NackResult{DeadLettered: true}, nil
	}
	m.lease, m.readyAt, m.delayed = "", p.Now.Add(delay), delay > 0
	s.taskRetried(m, p.Now, p.Error)
	s.signal(p.Queue)
	return store.NackResult{RetryAt: m.readyAt}, nil
}

func (s *memStore) Extend(_ context.Context, p *store.ExtendParams) (time.Time, error) {
	if err := s.lock(); err != nil {
		return time.Time{}, err
	}
	defer s.mu.Unlock()
	q, err := s.queue(p.Queue)
	if err != nil {
		return time.Time{}, err
	}
	m, err := held(q, p.Lease, p.Now)
	if err != nil {
		return time.Time{}, err
	}
	if s.cancelPending(m) {
		s.endCancelled(q, m, p.Now)
		return time.Time{}, store.ErrTaskCancelled
	}
	vis := p.Visibility
	if vis == 0 {
		vis = q.q.Config.VisibilityTimeout
	}
	m.leaseExp = p.Now.Add(vis)
	return m.leaseExp, nil
}

func (s *memStore) Redrive(_ context.Context, p *store.RedriveParams) (int, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	q, err := s.queue(p.Queue)
	if err != nil {
		return 0, err
	}
	dq, ok := s.queues[q.q.Config.DeadLetterQueue]
	if !ok {
		return 0, nil
	}
	n := 0
	for _, id := range slices.Sorted(maps.Keys(dq.msgs)) {
		m := dq.msgs[id]
		if n == p.Max || m.deadFrom != p.Queue || m.lease != "" {
			continue
		}
		delete(dq.msgs, id)
		for _, h := range []string{store.HeaderSourceQueue, store.HeaderAttempts, store.HeaderError, store.HeaderDeadReason} {
			delete(m.headers, h)
		}
		m.attempt, m.deadFrom, m.readyAt, m.delayed = 0, "", time.Time{}, false
		q.msgs[id] = m
		n++
	}
	if n > 0 {
		s.signal(p.Queue)
	}
	return n, nil
}

func (s *memStore) Tick(_ context.Context, p *store.TickParams) (store.TickResult, error) {
	if err := s.lock(); err != nil {
		return store.TickResult{}, err
	}
	defer s.mu.Unlock()
	var r store.TickResult
	for _, name := range slices.Sorted(maps.Keys(s.queues)) {
		if q, ok := s.queues[name]; ok {
			s.due(q, p.Now, p.Retry, &r)
		}
	}
	s.expireTasks(p.Now)
	for _, q := range s.queues {
		if t := nextDue(q, p.Now); !t.IsZero() && (r.NextDue.IsZero() || t.Before(r.NextDue)) {
			r.NextDue = t
		}
	}
	return r, nil
}

func (s *memStore) Watch(queue string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.watch[queue]
	if !ok {
		ch = make(chan struct{})
		s.watch[queue] = ch
	}
	return ch
}

func (s *memStore) Ready(context.Context) error {
	if err := s.lock(); err != nil {
		return err
	}
	s.mu.Unlock()
	return nil
}

func (s *memStore) Close() error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
