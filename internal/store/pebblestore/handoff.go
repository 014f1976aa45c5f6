package pebblestore

// Hand-off to waiting receives. A long-poll that found nothing leaves a
// claim (store.Handoff); a change that makes messages ready in its queue
// leases them for the waiting claims, oldest first, in its own batch. The
// send and the lease are then made durable by one fsync instead of two in
// a row, and the receive answers right after it, with no wake-up and no
// second transaction between: the latency from send to receive loses a
// sync and its queueing, and the disk does a third fewer syncs per message
// delivered to a waiting consumer. The lease is the same as a receive's
// (attempt, nonce, in-flight entry), and the claim's answer waits for the
// same sync as the send's, so the 2xx of each still promises a durable
// change.

import (
	"slices"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// claim is a waiting receive. Its fields other than msgs and err are fixed
// at creation; taken is guarded by Store.mu; msgs and err are set before
// done is closed and read only after.
type claim struct {
	s        *Store
	queue    string
	max      int
	maxBytes int
	vis      time.Duration // 0: the queue's visibility timeout
	taken    bool          // leased for by an applied change: Withdraw waits for done
	msgs     []store.Message
	err      error
	done     chan struct{}
}

// handed is a claim a txn leased messages for.
type handed struct {
	c    *claim
	msgs []store.Message
}

var _ store.Handoff = (*Store)(nil)

// Claim registers a waiting receive on an existing queue (nil otherwise).
func (s *Store) Claim(p *store.LeaseParams) store.Claim {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.queues[p.Queue]; !ok || s.usable() != nil {
		return nil
	}
	c := &claim{s: s, queue: p.Queue, max: p.Max, maxBytes: p.MaxBytes, vis: p.Visibility, done: make(chan struct{})}
	s.claims[p.Queue] = append(s.claims[p.Queue], c)
	return c
}

func (c *claim) Done() <-chan struct{} { return c.done }

func (c *claim) Withdraw() ([]store.Message, error) {
	s := c.s
	s.mu.Lock()
	if !c.taken {
		s.dropClaim(c)
		s.mu.Unlock()
		return nil, nil
	}
	s.mu.Unlock()
	<-c.done // the change that leased for it is being synced
	return c.msgs, c.err
}

// dropClaim removes c from its queue's waiting claims. Requires mu.
func (s *Store) dropClaim(c *claim) {
	cs := slices.DeleteFunc(s.claims[c.queue], func(x *claim) bool { return x == c })
	if len(cs) == 0 {
		delete(s.claims, c.queue)
		return
	}
	s.claims[c.queue] = cs
}

// handOff leases, for the claims waiting on each queue in which this txn
// made messages ready, what is ready there now, oldest claim first. A
// queue left with nothing ready is taken out of t.wake: its other waiting
// receives would wake only to find nothing. Requires mu.
func (t *txn) handOff() error {
	if len(t.s.claims) == 0 || len(t.wake) == 0 {
		return nil
	}
	wake := t.wake[:0:0]
	for i, name := range t.wake {
		if slices.Contains(t.wake[:i], name) {
			continue
		}
		w, ok := t.queue(name)
		if ok && !w.rec.Paused {
			if err := t.handOffIn(w); err != nil {
				return err
			}
		}
		if !ok || w.c.ready > 0 {
			wake = append(wake, name)
		}
	}
	t.wake = wake
	return nil
}

// handOffIn leases ready messages of w for its waiting claims.
func (t *txn) handOffIn(w *qwork) error {
	for _, c := range t.s.claims[w.q.name] {
		if w.c.ready <= 0 {
			return nil
		}
		vis := c.vis
		if vis == 0 {
			vis = w.rec.Config.VisibilityTimeout
		}
		msgs, err := t.lease(w, c.max, c.maxBytes, vis)
		if err != nil || len(msgs) == 0 {
			return err
		}
		t.handed = append(t.handed, handed{c, msgs})
	}
	return nil
}

// takeClaims marks the claims this txn leased for as taken, once its
// batch is applied. Requires mu.
func (t *txn) takeClaims() {
	for _, h := range t.handed {
		h.c.taken = true
		t.s.dropClaim(h.c)
	}
}

// settleClaims answers the claims this txn leased for, once its batch is
// synced (err: the sync failed, and no lease is handed out).
func (t *txn) settleClaims(err error) {
	for _, h := range t.handed {
		if err != nil {
			h.c.err = err
		} else {
			h.c.msgs = h.msgs
		}
		close(h.c.done)
	}
}
