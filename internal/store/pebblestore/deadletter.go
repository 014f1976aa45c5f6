package pebblestore

import (
	"context"
	"maps"
	"strconv"

	"github.com/courierhq/courier/internal/store"
)

// deadLetter moves a message from w to w's dead-letter queue (created with
// defaults if missing), or drops it when w has none. Requires the message
// still to be indexed in w.
func (t *txn) deadLetter(w *qwork, seq uint64, m *msg, reason, why string) error {
	body, err := t.readBody(w, seq, m)
	if err != nil {
		return err
	}
	// A task ends failed here; its dead letter is a plain message.
	if err := t.finishTask(seq, m, store.TaskFailed, nil, reason); err != nil {
		return err
	}
	if err := t.remove(w, seq, m); err != nil {
		return err
	}
	name := w.rec.Config.DeadLetterQueue
	if name == "" {
		return nil
	}
	dlq, ok := t.queue(name)
	if !ok {
		dlq = t.createQueue(name, store.DefaultConfig(name))
	}
	h := maps.Clone(m.headers)
	if h == nil {
		h = map[string]string{}
	}
	h[store.HeaderSourceQueue] = w.q.name
	h[store.HeaderAttempts] = strconv.Itoa(m.attempt)
	h[store.HeaderError] = reason
	h[store.HeaderDeadReason] = why
	dm := &msg{kind: m.kind, priority: m.priority, sentAt: m.sentAt, deadFrom: w.rec.ID,
		group: m.group, lastError: reason, headers: h}
	if err := t.insert(dlq, seq, dm, body); err != nil {
		return err
	}
	w.c.dead++
	w.touched = true
	return nil
}

// Redrive moves messages dead-lettered from a queue back into it.
func (s *Store) Redrive(ctx context.Context, p *store.RedriveParams) (int, error) {
	moved := 0
	err := s.updateQueue(p.Now, p.Queue, func(t *txn, w *qwork) error {
		moved = 0
		if w.c.dead == 0 || w.rec.Config.DeadLetterQueue == "" {
			return nil
		}
		dlq, ok := t.queue(w.rec.Config.DeadLetterQueue)
		if !ok {
			return nil
		}
		pre := qprefix(tagMsg, dlq.rec.ID)
		it, err := t.iter(pre, prefixEnd(pre))
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok && moved < p.Max; ok = it.Next() {
			seq, err := keySeq(it.Key())
			if err != nil {
				return err
			}
			// Through the batch, not the snapshot: moving a group's head
			// out of the DLQ changed the next member's state.
			m, found, err := t.getMsg(dlq, seq)
			if err != nil {
				return err
			}
			if !found || m.deadFrom != w.rec.ID || m.state == stInFlight {
				continue
			}
			if err := t.redriveOne(w, dlq, seq, &m); err != nil {
				return err
			}
			moved++
		}
		return it.Error()
	})
	return moved, err
}

// redriveOne moves one dead letter from dlq back to w, as if newly sent.
func (t *txn) redriveOne(w, dlq *qwork, seq uint64, m *msg) error {
	body, err := t.readBody(dlq, seq, m)
	if err != nil {
		return err
	}
	if err := t.remove(dlq, seq, m); err != nil { // also lowers w's dead counter
		return err
	}
	h := maps.Clone(m.headers)
	for _, k := range []string{store.HeaderSourceQueue, store.HeaderAttempts, store.HeaderError, store.HeaderDeadReason} {
		delete(h, k)
	}
	if len(h) == 0 {
		h = nil
	}
	rm := &msg{kind: m.kind, priority: m.priority, sentAt: m.sentAt, group: m.group, headers: h}
	return t.insert(w, seq, rm, body)
}

// PurgeQueue drops every ready, delayed and waiting message of a queue.
func (s *Store) PurgeQueue(ctx context.Context, p *store.PurgeQueueParams) (int, error) {
	n := 0
	err := s.updateQueue(p.Now, p.Name, func(t *txn, w *qwork) error {
		n = 0
		// Waiting members first, so dropping a head releases nothing.
		for _, d := range []struct {
			tag byte
			cur *[]byte
		}{{tagWaiting, nil}, {tagReady, &w.cur.ready}, {tagDelayed, &w.cur.delayed}} {
			c, err := t.dropAll(w, d.tag, d.cur)
			if err != nil {
				return err
			}
			n += c
		}
		return nil
	})
	return n, err
}

// dropAll removes every message indexed under tag in w, scanning from the
// keyspace's cursor if it has one, and leaves the cursor at the end.
func (t *txn) dropAll(w *qwork, tag byte, cur *[]byte) (int, error) {
	pre := qprefix(tag, w.rec.ID)
	lo := pre
	if cur != nil && *cur != nil {
		lo = *cur
	}
	if cur != nil {
		*cur = prefixEnd(pre) // nothing live remains; inserts lower it again
	}
	it, err := t.iter(lo, prefixEnd(pre))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		seq, err := keySeq(it.Key())
		if err != nil {
			return n, err
		}
		m, found, err := t.getMsg(w, seq)
		if err != nil || !found {
			return n, orCorrupt(err, "index key without record")
		}
		if err := t.finishTask(seq, &m, store.TaskCancelled, nil, "purged"); err != nil {
			return n, err
		}
		if err := t.remove(w, seq, &m); err != nil {
			return n, err
		}
		n++
	}
	return n, it.Error()
}
