package pebblestore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// taskRecord is the value under a task's 'T' key.
type taskRecord struct {
	Queue           string              `json:"queue"`
	State           store.TaskState     `json:"state"`
	Attempt         int                 `json:"attempt"`
	Progress        float64             `json:"progress"`
	ProgressMessage string              `json:"progress_message,omitempty"`
	Result          []byte              `json:"result,omitempty"` // bytes, not RawMessage: kept exactly as given
	Error           string              `json:"error,omitempty"`
	CreatedAt       time.Time           `json:"created_at"`
	UpdatedAt       time.Time           `json:"updated_at"`
	FinishedAt      time.Time           `json:"finished_at"`
	ExpiresAt       time.Time           `json:"expires_at"`
	Version         uint64              `json:"version"`
	CancelRequested bool                `json:"cancel_requested,omitempty"`
	Request         store.NewTask       `json:"request"`
	Webhook         store.WebhookStatus `json:"webhook"`
}

func (r *taskRecord) task(seq uint64) store.Task {
	return store.Task{ID: formatID(seq), Queue: r.Queue, State: r.State, Attempt: r.Attempt,
		Progress: r.Progress, ProgressMessage: r.ProgressMessage, Result: r.Result, Error: r.Error,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, FinishedAt: r.FinishedAt, ExpiresAt: r.ExpiresAt,
		Version: r.Version, CancelRequested: r.CancelRequested, Request: r.Request, Webhook: r.Webhook}
}

// Task records are binary, like message records: a task's record is read
// under the commit lock when it is leased, and read and rewritten when it
// ends, so its encoding is on the hot path of every task (JSON cost a fifth of the
// CPU of a batched task benchmark). Records written as JSON by earlier
// builds (they start with '{') are still read.
const taskRecordVersion = 1

var errBadTaskRecord = errors.New("malformed task record")

// taskStates numbers the states in the encoding; the index is the code.
var taskStates = [...]store.TaskState{store.TaskQueued, store.TaskRunning, store.TaskSucceeded,
	store.TaskFailed, store.TaskCancelled}

func knownState(s store.TaskState) bool {
	for _, v := range taskStates {
		if v == s {
			return true
		}
	}
	return false
}

func stateCode(s store.TaskState) byte {
	for i, v := range taskStates {
		if v == s {
			return byte(i)
		}
	}
	panic(fmt.Sprintf("pebblestore: unknown task state %q", s))
}

func (r *taskRecord) encode() []byte {
	b := make([]byte, 0, 96+len(r.Result)+len(r.Request.NotifyURL))
	b = append(b, taskRecordVersion, stateCode(r.State))
	b = appendString(b, r.Queue)
	b = binary.AppendUvarint(b, uint64(r.Attempt))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(r.Progress))
	b = appendString(b, r.ProgressMessage)
	b = appendString(b, string(r.Result))
	b = appendString(b, r.Error)
	for _, t := range []time.Time{r.CreatedAt, r.UpdatedAt, r.FinishedAt, r.ExpiresAt} {
		b = binary.AppendUvarint(b, unixNano(t))
	}
	b = binary.AppendUvarint(b, r.Version)
	b = append(b, boolByte(r.CancelRequested))
	b = appendString(b, r.Request.NotifyURL)
	b = appendString(b, r.Request.NotifySecret)
	b = appendString(b, r.Request.ReplyTo)
	b = binary.AppendVarint(b, int64(r.Request.ResultTTL))
	w := &r.Webhook
	b = append(b, boolByte(w.Pending), boolByte(w.Delivered))
	b = binary.AppendUvarint(b, unixNano(w.NextAttemptAt))
	b = binary.AppendUvarint(b, uint64(len(w.Attempts)))
	for _, a := range w.Attempts {
		b = binary.AppendUvarint(b, unixNano(a.At))
		b = binary.AppendUvarint(b, uint64(a.Status))
		b = appendString(b, a.Error)
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// decodeTaskRecord parses a record; it never panics on malformed input.
func decodeTaskRecord(b []byte) (taskRecord, error) {
	var r taskRecord
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &r); err != nil || !knownState(r.State) || r.Attempt < 0 {
			return taskRecord{}, errBadTaskRecord
		}
		return r, nil
	}
	d := decoder{b: b}
	if d.byte() != taskRecordVersion {
		return r, errBadTaskRecord
	}
	if c := d.byte(); int(c) < len(taskStates) {
		r.State = taskStates[c]
	} else {
		d.fail()
	}
	r.Queue = d.string()
	r.Attempt = int(d.uvarint())
	r.Progress = math.Float64frombits(d.uint64())
	r.ProgressMessage = d.string()
	if res := d.string(); res != "" {
		r.Result = []byte(res)
	}
	r.Error = d.string()
	r.CreatedAt, r.UpdatedAt, r.FinishedAt, r.ExpiresAt = d.time(), d.time(), d.time(), d.time()
	r.Version = d.uvarint()
	r.CancelRequested = d.bool()
	r.Request.NotifyURL, r.Request.NotifySecret, r.Request.ReplyTo = d.string(), d.string(), d.string()
	r.Request.ResultTTL = time.Duration(d.varint())
	w := &r.Webhook
	w.Pending, w.Delivered = d.bool(), d.bool()
	w.NextAttemptAt = d.time()
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each attempt takes at least 3 bytes
		d.fail()
	}
	if n > 0 && d.err == nil {
		w.Attempts = make([]store.WebhookAttempt, 0, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		at, status := d.time(), d.uvarint()
		if status > math.MaxInt32 {
			d.fail()
		}
		w.Attempts = append(w.Attempts, store.WebhookAttempt{At: at, Status: int(status), Error: d.string()})
	}
	for len(d.b) > 0 && d.err == nil {
		d.applyTaskLeaseOp(&r)
	}
	if d.err != nil || r.Attempt < 0 {
		return taskRecord{}, errBadTaskRecord
	}
	return r, nil
}

// A lease does not rewrite a task's record either (see leaseOp for the
// message's): it merges a task lease operand into the record's key, and a
// reader applies the operands that follow the record, oldest first. The
// record was read, decoded, changed, encoded and written whole at every
// lease, with the task's request in it: skipping that made a burn-down of
// tasks 16-28% faster (docs/benchmarks-journal.md). Every other change of a task
// writes the whole record, which drops its operands. A record written as
// JSON by an earlier build is rewritten whole instead, in binary.
//
// An operand is taskLeaseOp, the attempt (uvarint) and the time (uvarint
// ns): the task is running that attempt since then, its progress starts
// afresh, and its version is one more.
const taskLeaseOp = 0xA2

// appendTaskLeaseOp appends the operand of a lease of attempt at t to b.
func appendTaskLeaseOp(b []byte, attempt int, t time.Time) []byte {
	b = append(b, taskLeaseOp)
	b = binary.AppendUvarint(b, uint64(attempt))
	return binary.AppendUvarint(b, unixNano(t))
}

// applyTaskLeaseOp reads a task lease operand and applies it to r.
func (d *decoder) applyTaskLeaseOp(r *taskRecord) {
	if d.byte() != taskLeaseOp {
		d.fail()
		return
	}
	r.running(int(d.uvarint()))
	r.UpdatedAt = d.time()
	r.Version++
}

// running is what a lease does to a task: running attempt, its progress
// afresh. (Its version and time are the writer's: putTask's, or the
// operand's.)
func (r *taskRecord) running(attempt int) {
	r.State, r.Attempt = store.TaskRunning, attempt
	r.Progress, r.ProgressMessage = 0, ""
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}
