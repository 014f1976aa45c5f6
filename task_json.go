package courier

import (
	"encoding/json"
	"strconv"
	"time"
)

// Fast paths for decoding task objects: the answer of a batch submit (a
// TaskList of up to 1,000) and of GetTask, which Await polls. encoding/json
// spent about 4.4µs on each task of a batch submit's answer, a tenth of all
// the CPU of a task burn-down's enqueue, client and server together
// (docs/benchmarks-journal.md). As decodeReceive (receive_json.go), they read only
// the plain form the server writes, and decline anything else — an escape,
// a null, an unknown or repeated key — leaving it to encoding/json;
// FuzzDecodeTaskList checks they never decide differently. When they
// decline, the result is unchanged, but for the spare room of a list it
// had (SubmitBatch's), which encoding/json then fills afresh.

// decodeTaskList decodes data, a batch submit's answer, into res.
func decodeTaskList(data []byte, res *TaskList) bool {
	r := jsonText{b: data}
	var tasks []Task
	ok := r.object(func(name []byte) (int, bool) {
		if string(name) != `"tasks"` {
			return 0, false
		}
		// [] is an empty list, as encoding/json makes it; an empty list
		// with room (SubmitBatch's) is filled, as encoding/json fills it.
		tasks = res.Tasks[:0]
		if tasks == nil {
			tasks = []Task{}
		}
		var prev Task
		return 1, r.array(func() bool {
			var t Task
			ok := r.task(&t, &prev)
			tasks = append(tasks, t)
			prev = t
			return ok
		})
	})
	if !ok || tasks == nil || !r.end() {
		return false
	}
	res.Tasks = tasks
	return true
}

// decodeTaskAnswer decodes data, one task object, into res.
func decodeTaskAnswer(data []byte, res *Task) bool {
	r := jsonText{b: data}
	var t Task
	if !r.task(&t, &Task{}) || !r.end() {
		return false
	}
	*res = t
	return true
}

// The fields of a task, for telling a repeated key.
const (
	tID = 1 << iota
	tQueue
	tState
	tAttempt
	tProgress
	tProgressMessage
	tResult
	tError
	tCreatedAt
	tUpdatedAt
	tFinishedAt
	tCancelRequested
	tReplyTo
	tResultTTL
	tWebhook
)

// task reads one task object into t. Its queue, state and result TTL
// share the strings of prev's where they are the same, as in a batch
// submit's answer they mostly are.
func (r *jsonText) task(t *Task, prev *Task) bool {
	return r.object(func(name []byte) (int, bool) {
		var (
			f  int
			ok bool
		)
		switch string(name[1 : len(name)-1]) { // compared without a copy
		case "id":
			f = tID
			t.ID, ok = r.str()
		case "queue":
			f = tQueue
			t.Queue, ok = r.strAs(prev.Queue)
		case "state":
			f = tState
			var s string
			s, ok = r.strAs(string(prev.State))
			t.State = TaskState(s)
		case "attempt":
			f = tAttempt
			t.Attempt, ok = r.int()
		case "progress":
			f = tProgress
			t.Progress, ok = r.float()
		case "progress_message":
			f = tProgressMessage
			t.ProgressMessage, ok = r.str()
		case "result":
			f = tResult
			t.Result, ok = r.value()
		case "error":
			f = tError
			t.Error, ok = r.str()
		case "created_at":
			f = tCreatedAt
			ok = r.time(&t.CreatedAt)
		case "updated_at":
			f = tUpdatedAt
			ok = r.time(&t.UpdatedAt)
		case "finished_at":
			f = tFinishedAt
			var at time.Time
			if ok = r.time(&at); ok {
				t.FinishedAt = &at
			}
		case "cancel_requested":
			f = tCancelRequested
			t.CancelRequested, ok = r.bool()
		case "reply_to":
			f = tReplyTo
			t.ReplyTo, ok = r.str()
		case "result_ttl":
			f = tResultTTL
			t.ResultTTL, ok = r.strAs(prev.ResultTTL)
		case "webhook":
			// Rare, and small: encoding/json reads it as it would in
			// the whole task.
			f = tWebhook
			v, vok := r.value()
			ok = vok && json.Unmarshal(v, &t.Webhook) == nil
		}
		return f, ok
	})
}

// strAs reads a plain string (see str), and returns like itself when the
// two are the same, without a copy.
func (r *jsonText) strAs(like string) (string, bool) {
	span, ok := r.strSpan()
	switch {
	case !ok:
		return "", false
	case string(span[1:len(span)-1]) == like:
		return like, true
	}
	return string(span[1 : len(span)-1]), true
}

// bool reads true or false. What follows is the caller's to check, as
// with every reader here: "truex" fails at the x.
func (r *jsonText) bool() (bool, bool) {
	r.skipSpace()
	rest := r.b[r.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		r.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		r.i += 5
		return false, true
	}
	return false, false
}

// float reads a number as encoding/json reads one into a float64: checked
// against JSON's grammar, then parsed by strconv.ParseFloat.
func (r *jsonText) float() (float64, bool) {
	r.skipSpace()
	start := r.i
	digits := func() int {
		n := 0
		for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
			r.i++
			n++
		}
		return n
	}
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	intStart := r.i
	if n := digits(); n == 0 || (n > 1 && r.b[intStart] == '0') {
		return 0, false
	}
	if r.i < len(r.b) && r.b[r.i] == '.' {
		r.i++
		if digits() == 0 {
			return 0, false
		}
	}
	if r.i < len(r.b) && (r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		r.i++
		if r.i < len(r.b) && (r.b[r.i] == '+' || r.b[r.i] == '-') {
			r.i++
		}
		if digits() == 0 {
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(string(r.b[start:r.i]), 64)
	return v, err == nil
}
