package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// tickLimit bounds the work of one Tick transaction per queue and kind, so
// no batch grows without bound; Tick loops until a queue is done.
const tickLimit = 10000

// dueResult counts what due work did.
type dueResult struct {
	promoted, expired, dead, dropped, forgotten int
}

func (d dueResult) total() int { return d.promoted + d.expired + d.dead + d.dropped + d.forgotten }

// counts is d as Tick and Lease report it.
func (d dueResult) counts() store.TickResult {
	return store.TickResult{Promoted: d.promoted, Expired: d.expired, DeadLettered: d.dead, Dropped: d.dropped}
}

// due promotes delayed messages whose time has come and releases expired
// leases (retried at once or dead-lettered), at most limit of each.
func (t *txn) due(w *qwork, retry store.RetryFunc, limit int) (dueResult, error) {
	var r dueResult
	err := t.scanDue(w, tagDelayed, limit, func(seq uint64, m *msg) error {
		t.unindex(w, seq, m)
		t.place(w, seq, m)
		r.promoted++
		return nil
	})
	if err != nil {
		return r, err
	}
	// An expired lease is a failed attempt like a nack without a delay: the
	// policy decides (the broker's waits the queue's backoff, so a message
	// that kills its workers does not cycle hot).
	err = t.scanDue(w, tagLease, limit, func(seq uint64, m *msg) error {
		res, err := t.fail(w, seq, m, retry, nil, "lease expired", m.leaseExp)
		if res.DeadLettered {
			r.dead++
		} else {
			r.expired++
		}
		return err
	})
	return r, err
}

// scanDue visits the messages of a time-ordered keyspace due by t.now, from
// its cursor, and moves the cursor past them.
func (t *txn) scanDue(w *qwork, tag byte, limit int, fn func(seq uint64, m *msg) error) error {
	cur, _, count := w.timed(tag)
	if count == 0 {
		return nil // the counter says no key is live: none is due
	}
	hi := timeUpTo(tag, w.rec.ID, t.now)
	if *cur != nil && string(*cur) >= string(hi) {
		// No live key lies below the cursor, so none is due. The common
		// case: nextDue left the cursor on the first live key, which
		// every receive otherwise paid two iterators to learn again.
		return nil
	}
	lo := *cur
	if lo == nil {
		lo = qprefix(tag, w.rec.ID)
	}
	it, err := t.iter(lo, hi)
	if err != nil {
		return err
	}
	defer it.Close()
	recs, err := t.records(w)
	if err != nil {
		return err
	}
	defer recs.close()
	pos := *cur
	n := 0
	for ok := it.First(); ok && n < limit; ok = it.Next() {
		k := append([]byte(nil), it.Key()...)
		advance(cur, &pos, k)
		seq, err := keySeq(k)
		if err != nil {
			return err
		}
		m, err := recs.get(seq)
		if err != nil {
			return err
		}
		if err := fn(seq, &m); err != nil {
			return err
		}
		n++
	}
	return it.Error()
}

// nextDue is when w next changes by itself: the first delayed message's due
// time or the first lease's expiry, whichever is sooner; zero if neither.
// A keyspace its counter says is empty is not read at all.
func (t *txn) nextDue(w *qwork) (time.Time, error) {
	var next time.Time
	for _, tag := range []byte{tagDelayed, tagLease} {
		at, err := t.firstDue(w, tag)
		if err != nil {
			return time.Time{}, err
		}
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next, nil
}

// firstDue is the time of the first live key of w's time-ordered keyspace
// tag; zero if it has none. It moves the keyspace's cursor up to that key,
// and marks it live (cursors.liveLease): acked leases leave tombstones in
// the lease index that no expiry scan consumes, and without this every
// call would walk all of them again. While the marked key is live and the
// cursor on it, no iterator is needed; nor when the counter says none is.
func (t *txn) firstDue(w *qwork, tag byte) (time.Time, error) {
	cur, live, n := w.timed(tag)
	if n == 0 {
		// Nothing is live: the cursor skips the whole keyspace, or the
		// tombstones of leases taken and acked without a nextDue between
		// (a long-poll's handoff, then acks) would wait for the next
		// scan. An insert lowers it again.
		var b [8]byte
		if end := toPrefixEnd(appendQPrefix(b[:0], tag, w.rec.ID)); string(*cur) != string(end) {
			*cur = bytes.Clone(end)
		}
		return time.Time{}, nil
	}
	if *cur != nil && *live != nil && string(*live) == string(*cur) {
		return keyTime(*cur)
	}
	pre := qprefix(tag, w.rec.ID)
	lo := *cur
	if lo == nil {
		lo = pre
	}
	it, err := t.iter(lo, prefixEnd(pre))
	if err != nil {
		return time.Time{}, err
	}
	pos := *cur
	if !it.First() {
		advance(cur, &pos, prefixEnd(pre)) // nothing live: skip all of it next time
		return time.Time{}, it.Close()
	}
	k := append([]byte(nil), it.Key()...)
	advance(cur, &pos, k)
	*live = k
	at, err := keyTime(k)
	return at, errors.Join(err, it.Close())
}

// Tick does the time-driven work of every queue.
func (s *Store) Tick(ctx context.Context, p *store.TickParams) (store.TickResult, error) {
	s.mu.Lock()
	names := make([]string, 0, len(s.queues))
	for name := range s.queues {
		names = append(names, name)
	}
	s.mu.Unlock()
	slices.Sort(names)
	var res store.TickResult
	var errs []error // one failing queue must not stop the others' upkeep
	for _, name := range names {
		for {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			var r dueResult
			var next time.Time
			err := s.updateIfChanged(p.Now, func(t *txn) error {
				w, ok := t.queue(name)
				if !ok {
					return nil // deleted meanwhile
				}
				var err error
				if r, err = t.tickQueue(w, p.Retry); err != nil {
					return err
				}
				next, err = t.nextDue(w)
				return err
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("queue %q: %w", name, err))
				break
			}
			res.Add(r.counts())
			if !next.IsZero() && (res.NextDue.IsZero() || next.Before(res.NextDue)) {
				res.NextDue = next
			}
			if r.total() < tickLimit {
				break
			}
		}
	}
	for {
		n := 0
		err := s.updateIfChanged(p.Now, func(t *txn) (err error) {
			n, err = t.expireTasks(tickLimit)
			return err
		})
		if err != nil || n < tickLimit {
			return res, errors.Join(append(errs, err)...)
		}
	}
}

func (t *txn) tickQueue(w *qwork, retry store.RetryFunc) (dueResult, error) {
	r, err := t.due(w, retry, tickLimit)
	if err != nil {
		return r, err
	}
	if r.dropped, err = t.sweepRetention(w, tickLimit); err != nil {
		return r, err
	}
	r.forgotten, err = t.forgetDedup(w, tickLimit)
	return r, err
}

// sweepRetention drops ready, delayed and waiting messages sent longer than
// the queue's retention ago. In-flight ones are left to finish: if they come
// back, Lease drops them then. The cursor stops at the first message kept.
func (t *txn) sweepRetention(w *qwork, limit int) (int, error) {
	pre := qprefix(tagMsg, w.rec.ID)
	lo := w.cur.retain
	if lo == nil {
		lo = pre
	}
	it, err := t.iter(lo, prefixEnd(pre))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	pos, kept, n := w.cur.retain, false, 0
	for ok := it.First(); ok && n < limit; ok = it.Next() {
		k := append([]byte(nil), it.Key()...)
		seq, err := keySeq(k)
		if err != nil {
			return n, err
		}
		// Read through the batch, not the iterator's snapshot: dropping a
		// group's head earlier in this scan changed the next member's state.
		m, found, err := t.getMsg(w, seq)
		if err != nil {
			return n, err
		}
		if !found { // removed earlier in this scan
			continue
		}
		if !t.expired(w, &m) {
			if !kept {
				advance(&w.cur.retain, &pos, k)
			}
			break
		}
		if m.state == stInFlight {
			if !kept {
				advance(&w.cur.retain, &pos, k)
			}
			kept = true
			continue
		}
		if err := t.dropExpired(w, seq, &m); err != nil {
			return n, err
		}
		if !kept {
			advance(&w.cur.retain, &pos, k)
		}
		n++
	}
	return n, it.Error()
}

// forgetDedup deletes dedup entries whose window has ended.
func (t *txn) forgetDedup(w *qwork, limit int) (int, error) {
	lo := w.cur.dedup
	if lo == nil {
		lo = qprefix(tagDedupBy, w.rec.ID)
	}
	it, err := t.iter(lo, timeUpTo(tagDedupBy, w.rec.ID, t.now))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	pos, n := w.cur.dedup, 0
	for ok := it.First(); ok && n < limit; ok = it.Next() {
		k := append([]byte(nil), it.Key()...)
		advance(&w.cur.dedup, &pos, k)
		if len(k) < 13 {
			return n, errBadKey
		}
		exp, key := k[5:13], string(k[13:])
		v, found, err := t.get(dedupKey(w.rec.ID, key))
		if err != nil {
			return n, err
		}
		if found && len(v) == 16 && string(v[8:]) == string(exp) { // not renewed by a later send
			t.b.Delete(dedupKey(w.rec.ID, key), nil)
		}
		t.b.Delete(k, nil)
		n++
	}
	return n, it.Error()
}
