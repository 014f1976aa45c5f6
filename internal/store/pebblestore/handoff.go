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
// at creation; taken is guarded by Store.cmu; msgs and err are set before
// done is closed and read only after.
type claim struct {
	s        *Store
	queue    string
	max      int
	maxBytes int
	vis      time.Duration // 0: the queue's visibility timeout
	taken    bool          // leased for by a change being made: Withdraw waits for done
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
	if s.refused() != nil {
		return nil // at once, as Watch: not queued behind a stalled commit
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.queues[p.Queue]; !ok || s.usable() != nil {
		return nil
	}
	c := &claim{s: s, queue: p.Queue, max: p.Max, maxBytes: p.MaxBytes, vis: p.Visibility, done: make(chan struct{})}
	s.cmu.Lock()
	s.claims[p.Queue] = append(s.claims[p.Queue], c)
	s.cmu.Unlock()
	return c
}

func (c *claim) Done() <-chan struct{} { return c.done }

// Withdraw takes cmu, never mu: a commit stalled by the engine holds mu.
func (c *claim) Withdraw() ([]store.Message, error) {
	s := c.s
	s.cmu.Lock()
	if !c.taken {
		s.dropClaim(c)
		s.cmu.Unlock()
		return nil, nil
	}
	s.cmu.Unlock()
	<-c.done // the change that leased for it is being made and synced
	return c.msgs, c.err
}

// dropClaim removes c from its queue's waiting claims. Requires cmu.
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
	if len(t.wake) == 0 {
		return nil
	}
	s := t.s
	s.cmu.Lock() // held while leasing: a Withdraw sees a claim before or after, taken
	defer s.cmu.Unlock()
	if len(s.claims) == 0 {
		return nil
	}
	// Leasing can make messages ready in another queue (a task dropped past
	// its retention sends its outcome to its reply_to queue): t.wake grows
	// meanwhile, and the queues it gains are handled too.
	var names []string
	for i := 0; i < len(t.wake); i++ {
		name := t.wake[i]
		if slices.Contains(names, name) {
			continue
		}
		names = append(names, name)
		if w, ok := t.queue(name); ok && !w.rec.Paused {
			if err := t.handOffIn(w); err != nil {
				for _, h := range t.handed { // the txn is dropped: they wait on
					h.c.taken = false
				}
				t.handed = nil
				return err
			}
		}
	}
	t.wake = slices.DeleteFunc(names, func(name string) bool {
		w, ok := t.queue(name)
		return ok && w.c.ready <= 0
	})
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
		c.taken = true
		t.handed = append(t.handed, handed{c, msgs})
	}
	return nil
}

// takeClaims removes the claims this txn leased for from the waiting
// ones, once its batch is applied.
func (t *txn) takeClaims() {
	if len(t.handed) == 0 {
		return
	}
	t.s.cmu.Lock()
	defer t.s.cmu.Unlock()
	for _, h := range t.handed {
		t.s.dropClaim(h.c)
	}
}

// dropClaims answers the claims this txn leased for with err, when its
// batch was not applied (a failed write, a panic): no lease was handed out.
func (t *txn) dropClaims(err error) {
	t.takeClaims()
	t.settleClaims(err)
	t.handed = nil
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
