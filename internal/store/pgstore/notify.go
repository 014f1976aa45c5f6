package pgstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// watchers hold the channels of Watch and WatchTask: one per queue or task,
// closed (and forgotten) at its next change.
type watchers struct {
	mu     sync.Mutex // guards queues, tasks
	queues map[string]chan struct{}
	tasks  map[string]chan struct{}
}

func newWatchers() *watchers {
	return &watchers{queues: map[string]chan struct{}{}, tasks: map[string]chan struct{}{}}
}

func watch(m map[string]chan struct{}, key string) chan struct{} {
	ch, ok := m[key]
	if !ok {
		ch = make(chan struct{})
		m[key] = ch
	}
	return ch
}

func wake(m map[string]chan struct{}, key string) {
	if ch, ok := m[key]; ok {
		close(ch)
		delete(m, key)
	}
}

// wakeAll closes every channel: after the listener lost its connection it
// cannot know what it missed, so every waiter looks again.
func (w *watchers) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range w.queues {
		wake(w.queues, k)
	}
	for k := range w.tasks {
		wake(w.tasks, k)
	}
}

// Watch returns a channel closed when messages may have become available in
// queue, by a change of this process or (with Options.Notify) of another.
func (s *Store) Watch(queue string) <-chan struct{} {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return watch(s.w.queues, queue)
}

// WatchTask returns a channel closed at the task's next change.
func (s *Store) WatchTask(id string) <-chan struct{} {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return watch(s.w.tasks, id)
}

// notify wakes this process's watchers of what a committed transaction changed.
func (s *Store) notify(_ context.Context, t *txn) {
	if len(t.queues) == 0 && len(t.tasks) == 0 {
		return
	}
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	for q := range t.queues {
		wake(s.w.queues, q)
	}
	for id := range t.tasks {
		wake(s.w.tasks, id)
	}
}

// Payloads of notifications: "q" or "t", then the queue's name or task's id.
const (
	notifyQueue = 'q'
	notifyTask  = 't'
)

// channel is the notification channel of the store's schema, so that two
// schemas in one database (two clusters, or tests) do not wake each other.
func channel(schema string) string {
	h := fnv.New64a()
	h.Write([]byte(schema))
	return fmt.Sprintf("courier_%016x", h.Sum64())
}

// queueAnnounce queues, for the end of t and so sent only if it commits,
// one notification per queue and task it changed, for the other nodes'
// listeners.
func (s *Store) queueAnnounce(t *txn, b *pgx.Batch) {
	if (s.ln == nil && !s.inTx) || len(t.queues)+len(t.tasks) == 0 {
		return
	}
	payloads := make([]string, 0, len(t.queues)+len(t.tasks))
	for _, q := range slices.Sorted(maps.Keys(t.queues)) {
		payloads = append(payloads, string(notifyQueue)+q)
	}
	for _, id := range slices.Sorted(maps.Keys(t.tasks)) {
		payloads = append(payloads, string(notifyTask)+id)
	}
	b.Queue(`SELECT pg_notify($1, p) FROM unnest($2::text[]) p`, channel(s.schema), payloads)
}

// listener holds one connection that LISTENs to the schema's channel and
// wakes local watchers; it reconnects when the connection drops.
type listener struct {
	s      *Store
	cfg    *pgx.ConnConfig
	cancel context.CancelFunc
	done   chan struct{}
	// connected is signalled (non-blocking) each time the listener is
	// listening, after a start or a reconnect; tests wait on it.
	connected chan struct{}
}

// listenerApp is the application_name of the listener's connection, so
// that operators (and tests) can tell it apart in pg_stat_activity.
const listenerApp = "courier-listener"

func startListener(s *Store, cfg *pgx.ConnConfig) *listener {
	cfg.RuntimeParams["application_name"] = listenerApp
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{s: s, cfg: cfg, cancel: cancel, done: make(chan struct{}), connected: make(chan struct{}, 1)}
	go l.run(ctx)
	return l
}

func (l *listener) stop() {
	l.cancel()
	<-l.done
}

// run listens until stopped, reconnecting with a bounded backoff. Each
// (re)connection wakes every watcher, since notifications sent while it was
// away are lost.
func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		listened, err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if listened {
			backoff = 50 * time.Millisecond
		}
		l.s.log.Warn("postgres listener lost its connection; reconnecting", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// listen connects, LISTENs and dispatches notifications until an error;
// listened says whether it got as far as listening.
func (l *listener) listen(ctx context.Context) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+channel(l.s.schema)); err != nil {
		return false, err
	}
	l.s.w.wakeAll()
	select {
	case l.connected <- struct{}{}:
	default:
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		if len(n.Payload) < 2 {
			continue
		}
		key := n.Payload[1:]
		l.s.w.mu.Lock()
		switch n.Payload[0] {
		case notifyQueue:
			wake(l.s.w.queues, key)
		case notifyTask:
			wake(l.s.w.tasks, key)
		}
		l.s.w.mu.Unlock()
	}
}
