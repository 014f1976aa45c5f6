package pebblestore

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/courierhq/courier/internal/store"
)

// A task is a message with a record under a 'T' key, keyed by the message's
// seq, so its id is the message's id. The message carries flagTask, and
// every change of the message that matters to the requester (leased, failed
// and retried, acked, dead-lettered, dropped) updates the record in the same
// batch. A finished task keeps its record for its ResultTTL ('E' index) and,
// if it has a webhook, is listed for delivery ('N' index).

// getTask reads a task record: the txn's own writes first, then the task
// cache (taskcache.go), then the batch.
func (t *txn) getTask(seq uint64) (*taskRecord, bool, error) {
	v, ok, _, err := t.taskBytes(seq)
	if err != nil || !ok {
		return nil, false, err
	}
	r, err := decodeTask(seq, v)
	return r, err == nil, err
}

// decodeTask decodes seq's stored record v; a record that does not decode
// makes the store corrupt.
func decodeTask(seq uint64, v []byte) (*taskRecord, error) {
	r, err := decodeTaskRecord(v)
	if err != nil {
		return nil, fmt.Errorf("%w: task record %s: %v", errCorrupt, formatID(seq), err)
	}
	return &r, nil
}

// taskBytes is getTask's read, before decoding: the stored value, operands
// included; fresh says it came from Pebble, not from the txn or the cache.
func (t *txn) taskBytes(seq uint64) (v []byte, ok, fresh bool, err error) {
	v, ok = t.taskWrites[seq]
	if !ok {
		v, ok = t.s.tasks.get(seq)
	}
	if !ok {
		if v, ok, err = t.get(taskKey(seq)); err != nil {
			return nil, false, false, err
		}
		if ok {
			t.taskReads = append(t.taskReads, cachedRead{seq, v})
		}
		fresh = true
	}
	return v, ok && v != nil, fresh, nil
}

// putTask writes a changed task record: a new version, and its watchers woken.
func (t *txn) putTask(seq uint64, r *taskRecord) {
	r.Version++
	r.UpdatedAt = t.now
	v := r.encode()
	t.b.Set(taskKey(seq), v, nil)
	t.writeTask(seq, v)
	t.wakeTasks = append(t.wakeTasks, seq)
}

// deleteTask removes a task record.
func (t *txn) deleteTask(seq uint64) {
	t.b.Delete(taskKey(seq), nil)
	t.writeTask(seq, nil)
}

// writeTask notes a record written (nil: deleted) for the txn's own reads
// and, once applied, the task cache.
func (t *txn) writeTask(seq uint64, v []byte) {
	if t.taskWrites == nil {
		t.taskWrites = map[uint64][]byte{}
	}
	t.taskWrites[seq] = v
}

// cachedRead is a record the txn read from Pebble, cached once it applies.
type cachedRead struct {
	seq uint64
	v   []byte
}

// cacheTasks moves the txn's task writes, and the records it read from
// Pebble, into the task cache. Requires mu; called once the batch applied.
// The writes go in seq order: the cache takes a new record only at or near
// its end (taskcache.go). The reads, of records that missed it, go first
// and in the order read: a read of a newer seq can keep far older ones
// out, which costs hits, never correctness.
func (t *txn) cacheTasks() {
	for _, r := range t.taskReads {
		if _, written := t.taskWrites[r.seq]; !written {
			t.s.tasks.set(r.seq, r.v)
		}
	}
	seqs := make([]uint64, 0, len(t.taskWrites))
	for seq := range t.taskWrites {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		t.s.tasks.set(seq, t.taskWrites[seq])
	}
}

// taskLeased marks the task of message m (if m is a task's, and its task
// has not ended) running m's attempt, with an operand (taskLeaseOp) rather
// than a rewrite of its record. A record from the txn or the cache was
// written or read whole by this store, and is not decoded again; one read
// from Pebble is, so that a corrupt record fails the lease as a rewrite
// did. A JSON record of an earlier build is rewritten instead.
func (t *txn) taskLeased(seq uint64, m *msg) error {
	if !m.task {
		return nil
	}
	v, ok, fresh, err := t.taskBytes(seq)
	if err != nil || !ok {
		return err
	}
	if fresh || len(v) < 2 || v[0] != taskRecordVersion || int(v[1]) >= len(taskStates) {
		r, err := decodeTask(seq, v) // read once: not through taskChanged, which reads again
		if err == nil {
			t.changeTask(seq, r, func(r *taskRecord) { r.running(m.attempt) })
		}
		return err
	}
	if taskStates[v[1]].Finished() {
		return nil // as taskChanged: an ended task is not changed (its record has no operand)
	}
	op := appendTaskLeaseOp(nil, m.attempt, t.now)
	t.b.Merge(taskKey(seq), op, nil)
	t.writeTask(seq, append(v[:len(v):len(v)], op...))
	t.wakeTasks = append(t.wakeTasks, seq)
	return nil
}

// newTask stores the record of a task sent as message seq of queue w.
func (t *txn) newTask(w *qwork, seq uint64, req *store.NewTask) {
	t.putTask(seq, &taskRecord{Queue: w.q.name, State: store.TaskQueued, CreatedAt: t.now, Request: *req})
}

// taskChanged applies fn to the task of message m, if m is a task's.
func (t *txn) taskChanged(seq uint64, m *msg, fn func(r *taskRecord)) error {
	if !m.task {
		return nil
	}
	r, ok, err := t.getTask(seq)
	if err == nil && ok {
		t.changeTask(seq, r, fn)
	}
	return err
}

// changeTask applies fn to task record r of seq and writes it, unless the
// task has ended.
func (t *txn) changeTask(seq uint64, r *taskRecord, fn func(r *taskRecord)) {
	if !r.State.Finished() {
		fn(r)
		t.putTask(seq, r)
	}
}

// finishTask ends the task of message m (if m is a task's and it has not
// ended): its final state, result or error, the end of its result TTL, its
// webhook due, and its outcome sent to its reply_to queue — all in this batch.
func (t *txn) finishTask(seq uint64, m *msg, state store.TaskState, result []byte, reason string) error {
	if !m.task {
		return nil
	}
	r, ok, err := t.getTask(seq)
	if err != nil || !ok || r.State.Finished() {
		return err
	}
	r.State, r.Error, r.CancelRequested = state, reason, false
	if state == store.TaskSucceeded {
		r.Result, r.Error = result, ""
	}
	r.FinishedAt, r.ExpiresAt = t.now, t.now.Add(r.Request.ResultTTL)
	k := globalTimeKey(tagTaskTTL, r.ExpiresAt, seq)
	t.b.Set(k, nil, nil)
	t.lowerGlobal(&t.taskCur, k)
	if r.Request.NotifyURL != "" {
		r.Webhook.Pending, r.Webhook.NextAttemptAt = true, t.now
		t.hookDue = true
		hk := globalTimeKey(tagHookDue, t.now, seq)
		t.b.Set(hk, nil, nil)
		t.lowerGlobal(&t.hookCur, hk)
	}
	t.putTask(seq, r)
	if r.Request.ReplyTo != "" {
		return t.reply(seq, r)
	}
	return nil
}

// taskOutcome is the body of the message a finished task sends to reply_to.
type taskOutcome struct {
	ID     string          `json:"id"`
	Queue  string          `json:"queue"`
	State  store.TaskState `json:"state"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// reply sends a finished task's outcome to its reply_to queue, created with
// defaults if missing, with the task's id in a correlation header.
func (t *txn) reply(seq uint64, r *taskRecord) error {
	name := r.Request.ReplyTo
	w, ok := t.queue(name)
	if !ok {
		w = t.createQueue(name, store.DefaultConfig(name))
	}
	id := formatID(seq)
	body, _ := json.Marshal(taskOutcome{ID: id, Queue: r.Queue, State: r.State, Result: r.Result, Error: r.Error})
	m := &msg{kind: store.BodyJSON, sentAt: t.now,
		headers: map[string]string{store.HeaderTaskID: id, store.HeaderTaskState: string(r.State)}}
	if err := t.insert(w, t.nextSeq(), m, body); err != nil {
		return err
	}
	w.c.sent++
	return nil
}

// lowerGlobal lowers a global cursor held by the txn (applied on success).
func (t *txn) lowerGlobal(cur *globalCursor, k []byte) {
	if !cur.set {
		*cur = globalCursor{key: t.s.globalCursor(k[0]), set: true}
	}
	lower(&cur.key, k)
}

// globalCursor is a txn's pending value of a store-wide cursor.
type globalCursor struct {
	key []byte
	set bool
}
