package pgstore

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// elector keeps trying to become the cluster's leader: the node that holds
// a session-level advisory lock, on a connection of its own. Only the
// leader does Tick's cluster-wide work (releasing expired leases of queues
// nobody leases, dropping messages past retention, forgetting tasks and
// dedup keys) and delivers webhooks. When the leader dies its connection
// closes, the server frees the lock, and another node's next try (every
// electEvery) takes it. Correctness never depends on the leader: Lease
// applies what is due in its queue itself; the leader only keeps idle
// queues and records tidy.
type elector struct {
	s       *Store
	cfg     *pgx.ConnConfig
	every   time.Duration
	leading atomic.Bool
	cancel  context.CancelFunc
	done    chan struct{}
	// changed is signalled (non-blocking) when leadership is won or lost.
	changed chan struct{}
}

// electorApp is the application_name of the elector's connection.
const electorApp = "courier-leader"

const leaderLockSQL = `SELECT pg_try_advisory_lock(hashtextextended('courier.leader.' || current_schema(), 0))`

func startElector(s *Store, cfg *pgx.ConnConfig, every time.Duration) *elector {
	cfg.RuntimeParams["application_name"] = electorApp
	ctx, cancel := context.WithCancel(context.Background())
	e := &elector{s: s, cfg: cfg, every: every, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{}, 1)}
	go e.run(ctx)
	return e
}

func (e *elector) stop() {
	e.cancel()
	<-e.done
}

func (e *elector) set(leading bool) {
	if e.leading.Swap(leading) != leading {
		e.s.log.Info("postgres leadership", "leader", leading)
		select {
		case e.changed <- struct{}{}:
		default:
		}
	}
}

func (e *elector) run(ctx context.Context) {
	defer close(e.done)
	defer e.set(false)
	for ctx.Err() == nil {
		e.session(ctx)
		e.set(false)
		if !e.wait(ctx) {
			return
		}
	}
}

// session holds one connection: it tries for the lock, and once leader
// checks every e.every that the connection (and so the lock) is alive.
func (e *elector) session(ctx context.Context) {
	conn, err := pgx.ConnectConfig(ctx, e.cfg)
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		if e.leading.Load() {
			if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
				return
			}
		} else {
			var got bool
			if err := conn.QueryRow(ctx, leaderLockSQL).Scan(&got); err != nil {
				return
			}
			e.set(got)
		}
		if !e.wait(ctx) {
			return
		}
	}
}

func (e *elector) wait(ctx context.Context) bool {
	t := time.NewTimer(e.every)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// leader reports whether this store should do cluster-wide work: always
// without election (a single node), else while it holds the lock.
func (s *Store) leader() bool { return s.el == nil || s.el.leading.Load() }
