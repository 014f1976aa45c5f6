package pebblestore

// The lease memo: what an ack needs to know of a message it deletes, kept
// in memory from the lease that handed it out, so that the ack need not
// read the record back. That read was a quarter of a receive's CPU in the
// store: the record is in the memtable with the lease's operand on top,
// and reading it means merging the two. With the memo, a batched round
// trip (w1) takes 4-8% less CPU per message (docs/benchmarks-journal.md).
//
// Only plain messages are memoed: body inline, no group, not
// dead-lettered; a task's message may be one (the memo says so). For them
// the ack's removal touches only keys that follow from the seq, the
// lease's expiry and the queue: the record and the in-flight index entry,
// and a task's record, which finishTask reads by the seq. Every other
// message is read as before.
//
// The memo is a cache of the record, never the truth: an entry holds the
// nonce and expiry the record holds, or is absent. A txn's memo changes
// are a list applied in order when the txn applies (none if it fails): a
// lease adds the seq's entry; a write or deletion of a record
// (changedMsg, the one place every record write passes) drops it, when the
// memo has it or the txn itself may have added it; and the txn's own later
// acks skip the memo for every seq it drops (memoDropped). A deleted queue
// takes its memo with it. Only the ack reads the memo (heldVia with a memo
// allowed): nack, extend and the task verbs read the record, which they
// rewrite.

// leaseMemoMax bounds the entries of all queues' memos together (some tens
// of bytes each); beyond it leases are not memoed and their acks read.
const leaseMemoMax = 1 << 20

// memoEntry is what the memo keeps of an in-flight message.
type memoEntry struct {
	nonce    uint64
	leaseExp uint64 // unix nanoseconds, as the record has it
	task     bool   // the message is a task's
}

// memoScanMax is the number of a txn's memo changes up to which
// memoDropped looks through them one by one; beyond, through a map.
const memoScanMax = 32

// memoOp is a change of a queue's memo that a txn makes when it applies.
type memoOp struct {
	q   *queue
	seq uint64
	e   memoEntry
	del bool
}

// memoLease notes, for when the txn applies, that seq's lease (m, as just
// leased) can be acked from the memo, if m is a plain message.
func (t *txn) memoLease(w *qwork, seq uint64, m *msg) {
	if !m.inline || m.group != "" || m.deadFrom != 0 {
		return
	}
	t.memo = append(t.memo, memoOp{q: w.q, seq: seq, e: memoEntry{m.nonce, unixNano(m.leaseExp), m.task}})
	t.memoAdds++
}

// memoForget notes, for when the txn applies, that seq's record changed.
// No verb changes a message after leasing it in the same txn; if one did,
// the drop after the txn's own add still keeps the memo true.
func (t *txn) memoForget(w *qwork, seq uint64) {
	if _, ok := w.q.memo[seq]; ok || t.memoAdds > 0 {
		t.memo = append(t.memo, memoOp{q: w.q, seq: seq, del: true})
	}
}

// memoed returns, for an ack, the message of seq in flight under nonce as
// the memo has it; false when the memo does not know it (or this txn
// changed its record).
func (t *txn) memoed(w *qwork, seq, nonce uint64) (msg, bool) {
	e, ok := w.q.memo[seq]
	if !ok || e.nonce != nonce || t.memoDropped(seq) {
		return msg{}, false
	}
	return msg{state: stInFlight, nonce: nonce, leaseExp: fromNano(e.leaseExp), inline: true, task: e.task}, true
}

// memoDropped reports whether this txn has changed the record of seq, a
// seq in a memo. The queue is not compared: a seq that moved between
// queues (dead-lettered, redriven) can at worst skip the memo needlessly.
func (t *txn) memoDropped(seq uint64) bool {
	if len(t.memo) <= memoScanMax {
		for i := range t.memo {
			if t.memo[i].del && t.memo[i].seq == seq {
				return true
			}
		}
		return false
	}
	if t.memoDel == nil {
		t.memoDel = make(map[uint64]struct{}, len(t.memo))
	}
	for ; t.memoDelN < len(t.memo); t.memoDelN++ {
		if op := t.memo[t.memoDelN]; op.del {
			t.memoDel[op.seq] = struct{}{}
		}
	}
	_, ok := t.memoDel[seq]
	return ok
}

// applyMemo makes the txn's memo changes the queues'. Requires mu, after
// the batch applied and before the txn's deleted queues are dropped (they
// take the entries it adds with them).
func (t *txn) applyMemo() {
	s := t.s
	for _, op := range t.memo {
		switch _, had := op.q.memo[op.seq]; {
		case op.del && had:
			delete(op.q.memo, op.seq)
			s.memoN--
		case !op.del && !had && s.memoN < leaseMemoMax:
			if op.q.memo == nil {
				op.q.memo = map[uint64]memoEntry{}
			}
			op.q.memo[op.seq] = op.e
			s.memoN++
		case !op.del && had: // not made by today's verbs: a lease drops first
			op.q.memo[op.seq] = op.e
		}
	}
}
