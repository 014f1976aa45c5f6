package pebblestore

import (
	"context"
	"encoding/binary"
	"maps"
	"math"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// Send stores a batch of messages in one queue, all or none.
func (s *Store) Send(ctx context.Context, p *store.SendParams) ([]store.SendResult, error) {
	if err := s.checkSpace(p.Messages); err != nil {
		return nil, err
	}
	var out []store.SendResult
	err := s.updateQueue(p.Now, p.Queue, func(t *txn, w *qwork) error {
		out = make([]store.SendResult, len(p.Messages))
		for i := range p.Messages {
			r, err := t.send(w, &p.Messages[i])
			if err != nil {
				return err
			}
			out[i] = r
		}
		return nil
	})
	return out, err
}

func (t *txn) send(w *qwork, nm *store.NewMessage) (store.SendResult, error) {
	win := w.rec.Config.DedupWindow
	if nm.DedupKey != "" && win > 0 {
		if first, dup, err := t.dedup(w, nm.DedupKey); err != nil || dup {
			return store.SendResult{ID: formatID(first), Duplicate: dup}, err
		}
	}
	seq := t.nextSeq()
	if nm.DedupKey != "" && win > 0 {
		exp := t.now.Add(win)
		t.b.Set(dedupKey(w.rec.ID, nm.DedupKey), binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, seq), unixNano(exp)), nil)
		k := dedupByKey(w.rec.ID, exp, nm.DedupKey)
		t.b.Set(k, nil, nil)
		lower(&w.cur.dedup, k)
	}
	m := &msg{kind: nm.Kind, priority: nm.Priority, sentAt: t.now, due: nm.NotBefore,
		group: nm.Group, dedupKey: nm.DedupKey, headers: nm.Headers, task: nm.Task != nil}
	if err := t.insert(w, seq, m, nm.Body); err != nil {
		return store.SendResult{}, err
	}
	if nm.Task != nil {
		t.newTask(w, seq, nm.Task)
		w.c.tasks++
	}
	w.c.sent++
	return store.SendResult{ID: formatID(seq)}, nil
}

// dedup looks a dedup key up: the first message's seq if it is within its window.
func (t *txn) dedup(w *qwork, key string) (uint64, bool, error) {
	v, ok, err := t.get(dedupKey(w.rec.ID, key))
	if err != nil || !ok || len(v) != 16 {
		return 0, false, err
	}
	if !fromNano(binary.BigEndian.Uint64(v[8:])).After(t.now) {
		return 0, false, nil // the window has ended; Tick has not yet cleaned it up
	}
	return binary.BigEndian.Uint64(v[:8]), true, nil
}

// Lease hands out up to Max ready messages.
func (s *Store) Lease(ctx context.Context, p *store.LeaseParams) (store.LeaseResult, error) {
	var res store.LeaseResult
	var mark uint64
	// Acks carried and refused change nothing either; their refusals are
	// answers about state, so that read still waits.
	noReadWait := p.NoReadWait && len(p.Acks) == 0
	err := s.updateQueueOrRead(ctx, p.Now, p.Queue, &mark, noReadWait, func(t *txn, w *qwork) error {
		res = store.LeaseResult{}
		if p.Acks != nil {
			var err error
			if res.Acked, err = t.ack(w, p.Acks, p.AckResults); err != nil {
				return err
			}
		}
		d, err := t.due(w, p.Retry, leaseDueLimit)
		if err != nil {
			return err
		}
		res.Due = d.counts()
		if !w.rec.Paused {
			vis := p.Visibility
			if vis == 0 {
				vis = w.rec.Config.VisibilityTimeout
			}
			t.leaseDropped = 0
			msgs, err := t.lease(w, p.Max, p.MaxBytes, vis)
			if err != nil {
				return err
			}
			res.Messages = msgs
			res.Due.Dropped += t.leaseDropped
		}
		t.deferSync = p.DeferSync && len(res.Messages) == 0
		if len(res.Messages) > 0 {
			// Its caller does not wait: no need to learn when to wake it
			// (an iterator each, when the first lease was just acked: 2.5%
			// of a burn-down's CPU). Tick's nextDue moves the cursors on.
			return nil
		}
		res.NextDue, err = t.nextDue(w)
		return err
	})
	res.SyncMark = mark
	return res, err
}

// leaseDueLimit bounds the due work a Lease does before leasing; Tick does the rest.
const leaseDueLimit = 1000

// lease takes up to max messages from the ready index, starting at the cursor.
func (t *txn) lease(w *qwork, max, maxBytes int, vis time.Duration) ([]store.Message, error) {
	var out []store.Message
	budget := maxBytes
	if budget <= 0 {
		budget = math.MaxInt
	}
	for {
		var dropped int
		var err error
		out, dropped, err = t.leaseScan(w, out, max, &budget, vis)
		t.leaseDropped += dropped
		// Dropping an expired group head made its next member ready, which
		// this scan's snapshot does not hold: scan again while that happens.
		if err != nil || dropped == 0 || len(out) >= max || budget <= 0 {
			return out, err
		}
	}
}

// leaseRoom is how many messages a lease of up to n may take: n, or what is
// ready if less (at least one).
func (w *qwork) leaseRoom(n int) int {
	return int(max(1, min(int64(n), w.c.ready)))
}

// leaseScan appends to out, up to max in all, the ready messages it takes
// in one pass over the ready index, dropping those past retention; it
// reports how many it dropped. On an error, it returns out as it was.
func (t *txn) leaseScan(w *qwork, out []store.Message, max int, budget *int, vis time.Duration) ([]store.Message, int, error) {
	start := len(out)
	lo := w.cur.ready
	if lo == nil {
		lo = qprefix(tagReady, w.rec.ID)
	}
	it, err := t.iter(lo, prefixEnd(qprefix(tagReady, w.rec.ID)))
	if err != nil {
		return out, 0, err
	}
	defer it.Close()
	recs, err := t.records(w)
	if err != nil {
		return out, 0, err
	}
	defer recs.close()
	dropped := 0
	pos := w.cur.ready
	for ok := it.First(); ok && len(out) < max && *budget > 0; ok = it.Next() {
		k := append([]byte(nil), it.Key()...)
		advance(&w.cur.ready, &pos, k) // everything before k is consumed below
		seq, err := keySeq(k)
		if err != nil {
			return out[:start], dropped, err
		}
		m, err := recs.get(seq)
		if err != nil {
			return out[:start], dropped, err
		}
		if t.expired(w, &m) {
			if err := t.dropExpired(w, seq, &m); err != nil {
				return out[:start], dropped, err
			}
			dropped++
			continue
		}
		if out == nil {
			// Sized once, when the first comes: grown by appends, the slice
			// of messages (large structs) was the biggest allocation of a
			// batched receive.
			out = make([]store.Message, 0, w.leaseRoom(max))
		}
		lm, err := t.take(w, seq, &m, vis)
		if err != nil {
			return out[:start], dropped, err
		}
		out = append(out, lm)
		*budget -= len(lm.Body)
	}
	return out, dropped, it.Error()
}

// dropExpired removes a message that outlived its retention; its task fails.
func (t *txn) dropExpired(w *qwork, seq uint64, m *msg) error {
	if err := t.finishTask(seq, m, store.TaskFailed, nil, "expired: the queue's retention ended before it was done"); err != nil {
		return err
	}
	return t.remove(w, seq, m)
}

// expired reports whether a message has outlived its queue's retention.
func (t *txn) expired(w *qwork, m *msg) bool {
	return !m.sentAt.Add(w.rec.Config.Retention).After(t.now)
}

// take leases one ready message: a new nonce, attempt+1, an in-flight key.
func (t *txn) take(w *qwork, seq uint64, m *msg, vis time.Duration) (store.Message, error) {
	body, err := t.readBody(w, seq, m)
	if err != nil {
		return store.Message{}, err
	}
	t.unindex(w, seq, m)
	m.attempt++
	m.nonce = t.s.rnd.Uint64()
	m.leaseExp = t.now.Add(vis)
	t.leased(w, seq, m)
	t.memoLease(w, seq, m)
	if err := t.taskLeased(seq, m); err != nil {
		return store.Message{}, err
	}
	return store.Message{
		ID: formatID(seq), Queue: w.q.name, Body: body, Kind: m.kind, Headers: maps.Clone(m.headers),
		Priority: m.priority, Group: m.group, Attempt: m.attempt, SentAt: m.sentAt,
		Lease: formatLease(seq, m.nonce), LeaseExpiresAt: m.leaseExp,
	}, nil
}

// held finds the in-flight message a lease names, or the error to answer.
func (t *txn) held(w *qwork, lease string) (uint64, msg, error) {
	return t.heldVia(w, nil, lease, false)
}

// heldVia is held, reading the record through recs when recs holds its
// current version (the txn has not changed it since recs was made); a
// record read through recs comes without its inline body. With memo, the
// lease memo may answer instead of the record (leasememo.go), with only
// what an ack needs. Both are for ack's use: it deletes the message, and
// never writes the record back.
func (t *txn) heldVia(w *qwork, recs *recReader, lease string, memo bool) (uint64, msg, error) {
	seq, nonce, err := parseLease(lease)
	if err != nil {
		return 0, msg{}, store.ErrInvalidLease
	}
	var (
		m     msg
		found bool
	)
	if memo {
		m, found = t.memoed(w, seq, nonce)
	}
	if !found {
		if _, changed := t.changedMsgs[seq]; recs != nil && !changed {
			m, found, err = recs.lookupHead(seq)
		} else {
			m, found, err = t.getMsg(w, seq)
		}
	}
	if err != nil {
		return 0, msg{}, err
	}
	if !found || m.state != stInFlight || m.nonce != nonce || !m.leaseExp.After(t.now) {
		return 0, msg{}, store.ErrLeaseExpired
	}
	return seq, m, nil
}

// ackIterMin is the number of leases from which an ack reads the records
// through one iterator: a SeekGE from the previous position costs less
// than a point read, which builds a new iterator every time.
const ackIterMin = 8

// Ack deletes the messages of valid leases, lease by lease.
func (s *Store) Ack(ctx context.Context, p *store.AckParams) ([]error, error) {
	var res []error
	err := s.updateQueue(p.Now, p.Queue, func(t *txn, w *qwork) error {
		var err error
		res, err = t.ack(w, p.Leases, p.Results)
		return err
	})
	return res, err
}

// ack deletes the messages of valid leases (with results, as AckParams
// has them), answering one error per lease.
func (t *txn) ack(w *qwork, leases []string, results [][]byte) ([]error, error) {
	res := make([]error, len(leases))
	var recs *recReader
	if len(leases) >= ackIterMin {
		var err error
		if recs, err = t.records(w); err != nil {
			return nil, err
		}
		defer recs.close()
		t.changedMsgs = map[uint64]struct{}{}
		defer func() { t.changedMsgs = nil }() // recs ends here
	}
	for i, l := range leases {
		seq, m, err := t.heldVia(w, recs, l, true)
		if err != nil {
			if err != store.ErrLeaseExpired && err != store.ErrInvalidLease {
				return nil, err
			}
			res[i] = err
			continue
		}
		var result []byte
		if results != nil {
			result = results[i]
		}
		if err := t.finishTask(seq, &m, store.TaskSucceeded, result, ""); err != nil {
			return nil, err
		}
		if err := t.remove(w, seq, &m); err != nil {
			return nil, err
		}
		w.c.acked++
	}
	return res, nil
}

// Nack hands a message back for a retry, or dead-letters it.
func (s *Store) Nack(ctx context.Context, p *store.NackParams) (store.NackResult, error) {
	var res store.NackResult
	err := s.updateQueue(p.Now, p.Queue, func(t *txn, w *qwork) error {
		seq, m, err := t.held(w, p.Lease)
		if err != nil {
			return err
		}
		switch {
		case p.Terminate:
			res = store.NackResult{DeadLettered: true}
			return t.deadLetter(w, seq, &m, p.Error, store.DeadTerminated)
		case p.Release:
			res, err = t.giveBack(w, seq, &m, p.Delay)
		default:
			res, err = t.fail(w, seq, &m, p.Retry, p.Delay, p.Error, t.now)
		}
		return err
	})
	return res, err
}

// giveBack hands an in-flight message back unprocessed: the attempt its
// lease counted is given back, and it is ready again after delay (nil: at
// once). Its ready key sorts by send order, so it keeps its place.
func (t *txn) giveBack(w *qwork, seq uint64, m *msg, delay *time.Duration) (store.NackResult, error) {
	if ended, err := t.endCancelRequested(w, seq, m); err != nil || ended {
		return store.NackResult{Cancelled: ended}, err
	}
	m.attempt = max(m.attempt-1, 0)
	t.unindex(w, seq, m)
	m.due = t.now
	if delay != nil {
		m.due = t.now.Add(*delay)
	}
	t.place(w, seq, m)
	err := t.taskChanged(seq, m, func(r *taskRecord) { r.State, r.Attempt = store.TaskQueued, m.attempt })
	return store.NackResult{RetryAt: m.due}, err
}

// endCancelRequested ends m's task cancelled, and removes m, if a cancel of
// the task was requested: a task given back is not run again then.
func (t *txn) endCancelRequested(w *qwork, seq uint64, m *msg) (bool, error) {
	cancelled, err := t.cancelRequested(seq, m)
	if err != nil || !cancelled {
		return false, err
	}
	if err := t.finishTask(seq, m, store.TaskCancelled, nil, "cancelled"); err != nil {
		return true, err
	}
	return true, t.remove(w, seq, m)
}

// fail applies the retry policy to an in-flight message that failed at
// time at (now for a nack; the lease's end for an expiry noticed later).
func (t *txn) fail(w *qwork, seq uint64, m *msg, retry store.RetryFunc, explicit *time.Duration, reason string, at time.Time) (store.NackResult, error) {
	if ended, err := t.endCancelRequested(w, seq, m); err != nil || ended {
		return store.NackResult{Cancelled: ended}, err
	}
	delay, dead := retry(w.rec.Config, m.attempt, explicit)
	m.lastError = reason
	if dead {
		return store.NackResult{DeadLettered: true}, t.deadLetter(w, seq, m, reason, store.DeadMaxAttempts)
	}
	t.unindex(w, seq, m)
	m.due = at.Add(delay)
	t.place(w, seq, m)
	err := t.taskChanged(seq, m, func(r *taskRecord) { r.State, r.Error = store.TaskQueued, reason })
	return store.NackResult{RetryAt: m.due}, err
}

// Extend moves a lease's expiry to Now+Visibility.
func (s *Store) Extend(ctx context.Context, p *store.ExtendParams) (time.Time, error) {
	var exp time.Time
	err := s.updateKeep(p.Now, errCancelled, func(t *txn) error {
		w, ok := t.queue(p.Queue)
		if !ok {
			return store.ErrQueueNotFound
		}
		seq, m, err := t.held(w, p.Lease)
		if err != nil {
			return err
		}
		if err := t.endIfCancelled(w, seq, &m); err != nil {
			return err
		}
		exp = t.extend(w, seq, &m, p.Visibility)
		return nil
	})
	return exp, err
}
