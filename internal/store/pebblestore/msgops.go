package pebblestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// errCorrupt marks a store whose records contradict each other.
var errCorrupt = errors.New("store is corrupt")

// orCorrupt returns err, or a corruption error saying what was found.
func orCorrupt(err error, what string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s", errCorrupt, what)
}

// The primitives below move one message between states inside a txn,
// keeping its record, its index key, the counters and the cursors in step.
// Every verb is built from them.

func (t *txn) getMsg(w *qwork, seq uint64) (msg, bool, error) {
	v, ok, err := t.get(t.recordKey(w, seq))
	if err != nil || !ok {
		return msg{}, false, err
	}
	m, err := decodeMsg(v)
	return m, err == nil, err
}

// recReader reads the records of one queue through a single iterator. Scans
// visit messages in (nearly) ascending seq order, and a forward SeekGE from
// the iterator's position costs far less than a fresh point read. It sees
// the txn's writes as of its creation: use it only for records the scan has
// not itself changed.
type recReader struct {
	it   *pebble.Iterator
	w    *qwork
	keys *keySlab
}

func (t *txn) records(w *qwork) (*recReader, error) {
	pre := qprefix(tagMsg, w.rec.ID)
	it, err := t.iter(pre, prefixEnd(pre))
	return &recReader{it: it, w: w, keys: &t.keys}, err
}

// seek positions the iterator at seq's record; false if there is none.
// From a record before it, it first steps to the next: a lease takes
// messages in seq order, so that is often the one, and a step is cheaper
// than a seek in every level (the seeks were 4% of a burn-down's CPU).
func (r *recReader) seek(seq uint64) bool {
	k := appendSeqKey(r.keys.key(), tagMsg, r.w.rec.ID, seq)
	if r.it.Valid() && bytes.Compare(r.it.Key(), k) < 0 {
		if !r.it.Next() {
			return false // nothing after a key below k: no record k
		}
		switch c := bytes.Compare(r.it.Key(), k); {
		case c == 0:
			return true
		case c > 0:
			return false // the next record after one below k is above it
		}
	}
	return r.it.SeekGE(k) && bytes.Equal(r.it.Key(), k)
}

func (r *recReader) get(seq uint64) (msg, error) {
	if !r.seek(seq) {
		return msg{}, orCorrupt(r.it.Error(), "index key without record")
	}
	return decodeMsg(r.it.Value())
}

// lookupHead is get for a record that may be absent, without its inline
// body (see decodeMsgHead): for ack, which deletes what it finds.
func (r *recReader) lookupHead(seq uint64) (msg, bool, error) {
	if !r.seek(seq) {
		return msg{}, false, r.it.Error()
	}
	m, err := decodeMsgHead(r.it.Value())
	return m, err == nil, err
}

func (r *recReader) close() error { return r.it.Close() }

// recordKey is the key of seq's record in w, from the txn's slab.
func (t *txn) recordKey(w *qwork, seq uint64) []byte {
	return appendSeqKey(t.keys.key(), tagMsg, w.rec.ID, seq)
}

func (t *txn) putMsg(w *qwork, seq uint64, m *msg) {
	sc := &t.s.scratch
	sc.rec = m.appendTo(sc.rec[:0])
	t.b.Set(t.recordKey(w, seq), sc.rec, nil)
	t.changedMsg(w, seq)
}

// changedMsg notes that the txn wrote the record of seq: the lease memo
// forgets it, and, when the txn keeps count (see Ack), a recReader made
// before holds the old record.
func (t *txn) changedMsg(w *qwork, seq uint64) {
	t.memoForget(w, seq)
	if t.changedMsgs != nil {
		t.changedMsgs[seq] = struct{}{}
	}
}

// count adds d to the counter of state st.
func (w *qwork) count(st msgState, d int64) {
	switch st {
	case stReady, stWaiting:
		w.c.ready += d
	case stDelayed:
		w.c.delayed += d
	case stInFlight:
		w.c.inFlight += d
	}
}

// indexKey is the index key of a message in its current state.
func indexKey(qid uint32, seq uint64, m *msg) []byte { return appendIndexKey(newKey(), qid, seq, m) }

func appendIndexKey(b []byte, qid uint32, seq uint64, m *msg) []byte {
	switch m.state {
	case stReady:
		return appendReadyKey(b, qid, m.priority, seq)
	case stDelayed:
		return appendTimeKey(b, tagDelayed, qid, m.due, seq)
	case stInFlight:
		return appendTimeKey(b, tagLease, qid, m.leaseExp, seq)
	default:
		return appendWaitingKey(b, qid, m.group, seq)
	}
}

// setState gives a message state st: index key, record and counters. The
// message's previous index key must already be gone (unindex): an index
// key is never written twice without a delete between (see unindex).
func (t *txn) setState(w *qwork, seq uint64, m *msg, st msgState) {
	t.index(w, seq, m, st)
	t.putMsg(w, seq, m)
}

// leased puts a message in flight with m's attempt, nonce and expiry: as
// setState, but the record gets a lease operand (see leaseOp), not a
// rewrite. The record must be the one stored (m read from it).
func (t *txn) leased(w *qwork, seq uint64, m *msg) {
	t.index(w, seq, m, stInFlight)
	sc := &t.s.scratch
	sc.rec = appendLeaseOp(sc.rec[:0], m)
	t.b.Merge(t.recordKey(w, seq), sc.rec, nil)
	t.changedMsg(w, seq)
}

// index gives a message state st, its index key and counters, but for its
// record.
func (t *txn) index(w *qwork, seq uint64, m *msg, st msgState) {
	m.state = st
	k := appendIndexKey(t.keys.key(), w.rec.ID, seq, m)
	t.b.Set(k, nil, nil)
	switch st {
	case stReady:
		lower(&w.cur.ready, k)
	case stDelayed:
		lower(&w.cur.delayed, k)
	case stInFlight:
		lower(&w.cur.lease, k)
	}
	w.count(st, 1)
	w.touched = true
}

// place makes a message ready, or delayed until m.due.
func (t *txn) place(w *qwork, seq uint64, m *msg) {
	st := stReady
	if m.due.After(t.now) {
		st = stDelayed
	}
	if st == stReady {
		t.wake = append(t.wake, w.q.name)
	}
	t.setState(w, seq, m, st)
}

// unindex removes a message's index key and counts it out of its state.
//
// The key goes by a single delete, not a delete: an index key is written
// once (index) and removed once (here) before it is written again, never
// merged, so Pebble may drop the pair wherever the two meet — in the
// memtable's flush when a message comes and goes within one, in the first
// compaction otherwise — where a delete's tombstone would be carried down
// every level to the bottom. Draining a backlog and every short-lived
// message wrote such tombstones. A break of the rule that Pebble sees (a
// single delete meeting two writes at once) is counted and logged as a bug
// (engineHealth.nondeterministic); the tests check the index itself after
// compacting everything (singledel_test.go), which catches what it misses.
func (t *txn) unindex(w *qwork, seq uint64, m *msg) {
	k := appendIndexKey(t.keys.key(), w.rec.ID, seq, m)
	t.b.SingleDelete(k, nil)
	w.cur.forget(m.state, k)
	w.count(m.state, -1)
	w.touched = true
}

// insert stores a new message in w (a send, a dead letter, a redrive): it
// becomes its group's head if the group has none, else waits behind it.
func (t *txn) insert(w *qwork, seq uint64, m *msg, body []byte) error {
	m.inline, m.body = len(body) <= inlineMax, nil
	if m.inline {
		m.body = body
	} else {
		t.b.Set(seqKey(tagBody, w.rec.ID, seq), body, nil)
	}
	lower(&w.cur.retain, t.recordKey(w, seq))
	if m.group != "" {
		hk := groupPrefix(tagHead, w.rec.ID, m.group)
		head, hasHead, err := t.head(hk)
		if err != nil {
			return err
		}
		if hasHead {
			if seq < head.seq && !head.unordered { // a redriven or dead-lettered old message
				t.b.Set(hk, head.with(head.seq, true), nil)
			}
			t.setState(w, seq, m, stWaiting)
			return nil
		}
		t.b.Set(hk, groupHead{}.with(seq, false), nil)
	}
	t.place(w, seq, m)
	return nil
}

// remove deletes a message from w entirely and lets its group move on.
func (t *txn) remove(w *qwork, seq uint64, m *msg) error {
	t.unindex(w, seq, m)
	t.b.Delete(t.recordKey(w, seq), nil)
	t.changedMsg(w, seq)
	if m.task {
		w.c.tasks--
	}
	if !m.inline {
		t.b.Delete(seqKey(tagBody, w.rec.ID, seq), nil)
	}
	if m.deadFrom != 0 {
		if src, ok := t.queueByID(m.deadFrom); ok && src.c.dead > 0 {
			src.c.dead--
			src.touched = true
		}
	}
	if m.group != "" && m.state != stWaiting {
		return t.release(w, m.group, seq)
	}
	return nil
}

// groupHead is the value under an 'H' key: the seq of the group's head, and
// whether a member older than the head waits (then a scan for the next
// member must start at the beginning of the group, not after the head).
type groupHead struct {
	seq       uint64
	unordered bool
}

func (groupHead) with(seq uint64, unordered bool) []byte {
	v := binary.BigEndian.AppendUint64(nil, seq)
	if unordered {
		v = append(v, 1)
	}
	return v
}

func (t *txn) head(hk []byte) (groupHead, bool, error) {
	v, ok, err := t.get(hk)
	if err != nil || !ok {
		return groupHead{}, false, err
	}
	if len(v) != 8 && len(v) != 9 {
		return groupHead{}, false, orCorrupt(nil, "group head")
	}
	return groupHead{seq: binary.BigEndian.Uint64(v), unordered: len(v) == 9}, true, nil
}

// release passes the head of a group from seq to the next waiting member.
// Members normally wait in send order after the head, so the scan starts at
// the head's seq: the tombstones of the group's earlier members, however
// many, are never walked.
func (t *txn) release(w *qwork, group string, seq uint64) error {
	hk := groupPrefix(tagHead, w.rec.ID, group)
	head, ok, err := t.head(hk)
	if err != nil || !ok || head.seq != seq {
		return err // not the head: nothing to pass on
	}
	p := groupPrefix(tagWaiting, w.rec.ID, group)
	lo := waitingKey(w.rec.ID, group, seq)
	if head.unordered {
		lo = p
	}
	it, err := t.iter(lo, prefixEnd(p))
	if err != nil {
		return err
	}
	defer it.Close()
	if !it.First() {
		t.b.Delete(hk, nil)
		return it.Error()
	}
	next, err := keySeq(it.Key())
	if err != nil {
		return err
	}
	nm, found, err := t.getMsg(w, next)
	if err != nil || !found {
		return orCorrupt(err, "waiting message without record")
	}
	t.unindex(w, next, &nm)
	t.b.Set(hk, head.with(next, head.unordered), nil) // cleared when the group empties
	t.place(w, next, &nm)
	return nil
}

// readBody returns a message's body.
func (t *txn) readBody(w *qwork, seq uint64, m *msg) ([]byte, error) {
	if m.inline {
		return m.body, nil
	}
	v, ok, err := t.get(seqKey(tagBody, w.rec.ID, seq))
	if err == nil && !ok {
		err = orCorrupt(nil, "message without body")
	}
	return v, err
}
