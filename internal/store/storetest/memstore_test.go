package storetest_test

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// memStore is a deliberately simple, slow reference model of the port: one
// mutex, linear scans. It exists only to check the conformance suite itself
// (that its expectations are consistent and reachable), never to serve.
type memStore struct {
	mu     sync.Mutex // guards every field below
	closed bool
	queues map[string]*memQueue
	seq    uint64 // last message number
	leases uint64 // last lease number
	watch  map[string]chan struct{}
	// tasks holds every task record by id, a finished one until a Tick
	// after its ExpiresAt; taskWatch the WatchTask channels by task id.
	tasks     map[string]*store.Task
	taskWatch map[string]chan struct{}
}

type memQueue struct {
	q           store.Queue // Name, Config, Paused, CreatedAt
	msgs        map[string]*memMsg
	dedup       map[string]dedupEntry
	sent, acked int64
}

type dedupEntry struct {
	id string
	at time.Time
}

type memMsg struct {
	id       string
	body     []byte
	kind     store.BodyKind
	headers  map[string]string
	priority int
	group    string
	sentAt   time.Time
	readyAt  time.Time // not deliverable before
	delayed  bool      // waiting for readyAt; cleared when promoted
	attempt  int       // deliveries so far
	lease    string    // current lease; "" when not in flight
	leaseExp time.Time
	deadFrom string // the queue it was dead-lettered from
	task     bool   // the message of a task (its dead letter is not)
}

var _ store.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{queues: map[string]*memQueue{}, watch: map[string]chan struct{}{},
		tasks: map[string]*store.Task{}, taskWatch: map[string]chan struct{}{}}
}

var leaseRE = regexp.MustCompile(`^[0-9]+\.[0-9]{20}$`)

func (s *memStore) lock() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	return nil
}

func (s *memStore) queue(name string) (*memQueue, error) {
	q, ok := s.queues[name]
	if !ok {
		return nil, store.ErrQueueNotFound
	}
	return q, nil
}

func (s *memStore) signal(name string) {
	if ch, ok := s.watch[name]; ok {
		close(ch)
		delete(s.watch, name)
	}
}

func (s *memStore) CreateQueue(_ context.Context, p *store.CreateQueueParams) (store.Queue, error) {
	if err := s.lock(); err != nil {
		return store.Queue{}, err
	}
	defer s.mu.Unlock()
	if _, ok := s.queues[p.Name]; ok {
		return store.Queue{}, store.ErrQueueExists
	}
	s.create(p.Name, p.Config, p.Now)
	return s.view(p.Name, p.Now), nil
}

func (s *memStore) create(name string, cfg store.QueueConfig, now time.Time) *memQueue {
	q := &memQueue{q: store.Queue{Name: name, Config: cfg, CreatedAt: now},
		msgs: map[string]*memMsg{}, dedup: map[string]dedupEntry{}}
	s.queues[name] = q
	return q
}

func (s *memStore) UpdateQueue(_ context.Context, p *store.UpdateQueueParams) (store.Queue, error) {
	if err := s.lock(); err != nil {
		return store.Queue{}, err
	}
	defer s.mu.Unlock()
	q, err := s.queue(p.Name)
	if err != nil {
		return store.Queue{}, err
	}
	q.q.Config = p.Config
	return s.view(p.Name, p.Now), nil
}

func (s *memStore) GetQueue(_ context.Context, p *store.GetQueueParams) (store.Queue, error) {
	if err := s.lock(); err != nil {
		return store.Queue{}, err
	}
	defer s.mu.Unlock()
	q, err := s.queue(p.Name)
	if err != nil {
		return store.Queue{}, err
	}
	if p.ConfigOnly {
		return q.q, nil
	}
	return s.view(p.Name, p.Now), nil
}

func (s *memStore) ListQueues(_ context.Context, p *store.ListQueuesParams) ([]store.Queue, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []store.Queue
	for _, name := range slices.Sorted(maps.Keys(s.queues)) {
		out = append(out, s.view(name, p.Now))
	}
	return out, nil
}

// view is a queue with its stats as of now.
func (s *memStore) view(name string, now time.Time) store.Queue {
	q := s.queues[name]
	v := q.q
	v.Stats = store.Stats{SentTotal: q.sent, AckedTotal: q.acked}
	for _, m := range q.msgs {
		switch {
		case m.lease != "":
			v.Stats.InFlight++
		case m.readyAt.After(now):
			v.Stats.Delayed++
		default:
			v.Stats.Ready++
			if v.Stats.OldestReady.IsZero() || m.sentAt.Before(v.Stats.OldestReady) {
				v.Stats.OldestReady = m.sentAt
			}
		}
	}
	for _, other := range s.queues {
		for _, m := range other.msgs {
			if m.deadFrom == name {
				v.Stats.Dead++
			}
		}
	}
	return v
}

func (s *memStore) DeleteQueue(_ context.Context, p *store.DeleteQueueParams) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	q, err := s.queue(p.Name)
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(q.msgs)) {
		s.finishTask(q.msgs[id], p.Now, store.TaskCancelled, nil, "queue deleted")
	}
	delete(s.queues, p.Name)
	return nil
}

func (s *memStore) PurgeQueue(_ context.Context, p *store.PurgeQueueParams) (int, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	q, err := s.queue(p.Name)
	if err != nil {
		return 0, err
	}
	n := 0
	for id, m := range q.msgs {
		if m.lease == "" {
			s.finishTask(m, p.Now, store.TaskCancelled, nil, "purged")
			delete(q.msgs, id)
			n++
		}
	}
	return n, nil
}

func (s *memStore) SetPaused(_ context.Context, p *store.SetPausedParams) (store.Queue, error) {
	if err := s.lock(); err != nil {
		return store.Queue{}, err
	}
	defer s.mu.Unlock()
	q, err := s.queue(p.Name)
	if err != nil {
		return store.Queue{}, err
	}
	q.q.Paused = p.Paused
	if !p.Paused {
		s.signal(p.Name)
	}
	return s.view(p.Name, p.Now), nil
}
