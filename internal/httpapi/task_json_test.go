package httpapi

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	courier "github.com/courierhq/courier"
)

// checkEncodeTask fails t unless appendTask writes what encoding/json
// writes for tk, or both refuse it.
func checkEncodeTask(t *testing.T, tk *courier.Task) {
	t.Helper()
	want, werr := marshal(tk)
	got, gerr := appendTask(nil, tk)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("task %+v: appendTask error %v, encoding/json error %v", tk, gerr, werr)
	}
	if werr == nil && string(got) != string(want) {
		t.Fatalf("task %+v:\nappendTask   %s\nencoding/json %s", tk, got, want)
	}
}

func TestEncodeTaskMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 5, 14, 0, 0, 123456789, time.UTC)
	later := at.Add(time.Minute)
	tasks := []courier.Task{
		{ID: "1HVHYKAVDMFPC", Queue: "q", State: courier.TaskQueued, CreatedAt: at, UpdatedAt: at, ResultTTL: "24h0m0s"},
		{ID: "x", Queue: "q\u2028<&>", State: courier.TaskSucceeded, Attempt: 3, Progress: 1, ProgressMessage: "done \"now\"",
			Result: json.RawMessage(` { "a" : [1, 2, "<x>"] } `), CreatedAt: at, UpdatedAt: later, FinishedAt: &later,
			CancelRequested: true, ReplyTo: "replies", ResultTTL: "1h0m0s",
			Webhook: &courier.TaskWebhook{URL: "https://h.example/?a=1&b=<2>", Pending: true, NextAttemptAt: &later,
				Attempts: []courier.WebhookAttempt{{At: at, Status: 503, Error: "busy"}}}},
		{ID: "e", State: courier.TaskFailed, Error: "\xff bad utf-8 \x00", Result: json.RawMessage(`null`), CreatedAt: at, UpdatedAt: at},
		{ID: "p", State: courier.TaskRunning, Progress: 0.4, CreatedAt: at, UpdatedAt: at},
		{ID: "q", Progress: 1e-7, CreatedAt: at, UpdatedAt: at},
		{ID: "r", Progress: math.Copysign(0, -1), CreatedAt: at, UpdatedAt: at},
		{ID: "y", CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), UpdatedAt: at}, // both refuse
		{ID: "z", Result: json.RawMessage(`{bad`), CreatedAt: at, UpdatedAt: at},          // both refuse
	}
	for i := range tasks {
		checkEncodeTask(t, &tasks[i])
	}
	got, err := appendTaskList(nil, tasks[:3])
	want, _ := marshal(courier.TaskList{Tasks: tasks[:3]})
	if err != nil || string(got) != string(want) {
		t.Errorf("appendTaskList = %s, %v\nencoding/json gives %s", got, err, want)
	}
}

// FuzzEncodeTask: appendTask writes what encoding/json writes, or both
// refuse.
func FuzzEncodeTask(f *testing.F) {
	f.Add("id", "q", "running", 2, 0.5, "msg", []byte(`{"x": 1}`), "err", int64(1767225600123456789), true, "r", "1h0m0s", false)
	f.Add("\u2028", "<", "", -1, 1.0, "", []byte(`  `), "\xff", int64(-62135596800000000000/1e9), false, "", "", true)
	f.Fuzz(func(t *testing.T, id, queue, state string, attempt int, progress float64, pmsg string, result []byte,
		errText string, unixNano int64, cancel bool, replyTo, ttl string, webhook bool) {
		at := time.Unix(0, unixNano).UTC()
		tk := courier.Task{ID: id, Queue: queue, State: courier.TaskState(state), Attempt: attempt, Progress: progress,
			ProgressMessage: pmsg, Result: result, Error: errText, CreatedAt: at, UpdatedAt: at.Add(time.Second),
			CancelRequested: cancel, ReplyTo: replyTo, ResultTTL: ttl}
		if len(result)%2 == 0 {
			tk.FinishedAt = &at
		}
		if webhook {
			tk.Webhook = &courier.TaskWebhook{URL: queue, Attempts: []courier.WebhookAttempt{{At: at, Status: attempt, Error: pmsg}}}
		}
		checkEncodeTask(t, &tk)
	})
}
