package courier

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleTasks are tasks in each state and with each optional field, as the
// server answers them.
func sampleTasks() []Task {
	at := time.Date(2026, 12, 6, 7, 0, 0, 123456789, time.UTC)
	done := at.Add(1500 * time.Millisecond)
	next := at.Add(time.Minute)
	return []Task{
		{ID: "1HVMNRYX79VE3", Queue: "q1", State: TaskQueued, CreatedAt: at, UpdatedAt: at, ResultTTL: "24h0m0s"},
		{ID: "1HVMNRYX79VE4", Queue: "q1", State: TaskRunning, Attempt: 2, Progress: 0.375,
			ProgressMessage: "resizing ✓ naïve", CreatedAt: at, UpdatedAt: done, CancelRequested: true,
			ReplyTo: "replies", ResultTTL: "1h0m0s"},
		{ID: "1HVMNRYX79VE5", Queue: "q1", State: TaskSucceeded, Attempt: 1, Progress: 1,
			Result: json.RawMessage(`{"size":[1,2.5e-3,"x"],"ok":true,"n":null}`), CreatedAt: at, UpdatedAt: done,
			FinishedAt: &done, ResultTTL: "24h0m0s"},
		{ID: "1HVMNRYX79VE6", Queue: "é", State: TaskFailed, Attempt: 3, Progress: 1e-7, Error: "boom",
			CreatedAt: at, UpdatedAt: done, FinishedAt: &done, ResultTTL: "10m0s",
			Webhook: &TaskWebhook{URL: "https://example.com/hook", Pending: true, NextAttemptAt: &next,
				Attempts: []WebhookAttempt{{At: at, Status: 503, Error: "unavailable"}, {At: done}}}},
		{ID: "1HVMNRYX79VE7", Queue: "q1", State: TaskCancelled, Progress: -2, CreatedAt: at, UpdatedAt: at,
			FinishedAt: &at, Result: json.RawMessage(`"cancelled early"`), ResultTTL: "0s",
			Webhook: &TaskWebhook{URL: "https://example.com/hook", Attempts: []WebhookAttempt{}, Delivered: true}},
	}
}

func marshalled(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkTasksLikeStdlib fails t if either task decoder accepts data and
// decides anything other than encoding/json would; it reports whether each
// accepted it.
func checkTasksLikeStdlib(t *testing.T, data []byte) (list, one bool) {
	t.Helper()
	std, list := decidesLikeStdlib(t, "decodeTaskList", data, decodeTaskList)
	_, one = decidesLikeStdlib(t, "decodeTaskAnswer", data, decodeTaskAnswer)
	// Into a list with room, as SubmitBatch decodes: the same result.
	roomy := TaskList{Tasks: make([]Task, 0, 2)}
	if decodeTaskList(data, &roomy) != list || (list && !reflect.DeepEqual(roomy, std)) {
		t.Fatalf("decodeTaskList(%q) into a list with room\n = %#v\nwithout room it gives\n   %#v", data, roomy, std)
	}
	return list, one
}

func TestDecodeTaskTakesTheServersForm(t *testing.T) {
	t.Parallel()
	tasks := sampleTasks()
	for _, data := range [][]byte{
		append(marshalled(t, TaskList{Tasks: tasks}), '\n'),
		marshalled(t, TaskList{Tasks: []Task{}}),
		[]byte(" {\n \"tasks\" : [ ] } "),
	} {
		if list, _ := checkTasksLikeStdlib(t, data); !list {
			t.Errorf("decodeTaskList refused %q, which it should read", data)
		}
	}
	for _, task := range tasks {
		data := marshalled(t, task)
		if _, one := checkTasksLikeStdlib(t, data); !one {
			t.Errorf("decodeTaskAnswer refused %s, which it should read", data)
		}
	}
	// What the decoders read is the tasks themselves, not only what
	// encoding/json makes of the text.
	var got TaskList
	if !decodeTaskList(marshalled(t, TaskList{Tasks: tasks}), &got) {
		t.Fatal("decodeTaskList refused the sample")
	}
	if len(got.Tasks) != len(tasks) || got.Tasks[1].Progress != 0.375 || !got.Tasks[1].CancelRequested ||
		!got.Tasks[2].FinishedAt.Equal(*tasks[2].FinishedAt) || got.Tasks[3].Webhook.Attempts[0].Status != 503 {
		t.Fatalf("decodeTaskList gave %+v", got.Tasks)
	}
}

func TestDecodeTaskDeclines(t *testing.T) {
	t.Parallel()
	one := string(marshalled(t, sampleTasks()[0]))
	for _, data := range []string{
		`{"id":"a\"b"}`,              // an escape
		`{"id":"a","id":"b"}`,        // a repeated key
		`{"ID":"a"}`,                 // a key matched case-insensitively
		`{"id":"a","x":1}`,           // an unknown key
		`{"finished_at":null}`,       // a null
		`{"result":null}`,            // encoding/json keeps it as "null"
		`{"progress":01}`,            // a leading zero
		`{"progress":1.}`,            // no fraction digits
		`{"progress":.5}`,            // no integer digits
		`{"progress":1e}`,            // no exponent digits
		`{"progress":1e999}`,         // out of range
		`{"progress":"1"}`,           // a string
		`{"attempt":1.5}`,            // a fraction into an int
		`{"cancel_requested":tru}`,   // not a literal
		`{"cancel_requested":truex}`, // not a literal either
		`{"cancel_requested":1}`,     // a number as a bool
		`{"created_at":"yesterday"}`, // not a time
		`{"webhook":{"url":5}}`,      // a webhook encoding/json refuses
		one + ` x`,                   // trailing text
		`{"tasks":[` + one + `,]}`,   // a trailing comma
		`{"tasks":null}`,             // a null list
		`{"tasks":[],"tasks":[]}`,    // a repeated key
		``,
	} {
		if list, single := checkTasksLikeStdlib(t, []byte(data)); list || single {
			t.Errorf("a task decoder accepted %q; it should leave it to encoding/json", data)
		}
	}
	if _, single := checkTasksLikeStdlib(t, []byte(`{}`)); !single {
		t.Error("decodeTaskAnswer refused {}, an empty task as encoding/json reads it")
	}
	if list, _ := checkTasksLikeStdlib(t, []byte(`{}`)); list {
		t.Error("decodeTaskList accepted {}, whose list encoding/json leaves nil")
	}
}

// FuzzDecodeTaskList: whatever the text, each task decoder either declines
// or decides as encoding/json does.
func FuzzDecodeTaskList(f *testing.F) {
	tasks := sampleTasks()
	for _, v := range []any{TaskList{Tasks: tasks}, tasks[1], tasks[3]} {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"progress":-0.0e+00,"cancel_requested":false}`))
	f.Add([]byte(`{"tasks":[{"id":"` + strings.Repeat("x", 40) + `"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkTasksLikeStdlib(t, data)
	})
}

// BenchmarkDecodeTaskList decodes a batch submit's answer of 100 tasks as
// the SDK does (decodeAnswer), and with encoding/json alone.
func BenchmarkDecodeTaskList(b *testing.B) {
	at := time.Date(2026, 12, 6, 7, 0, 0, 123456789, time.UTC)
	tasks := make([]Task, 100)
	for i := range tasks {
		tasks[i] = Task{ID: fmt.Sprintf("1HVMNRYX79V%02d", i), Queue: "bench", State: TaskQueued,
			CreatedAt: at, UpdatedAt: at, ResultTTL: "24h0m0s"}
	}
	data, err := json.Marshal(TaskList{Tasks: tasks})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decodeAnswer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := TaskList{Tasks: make([]Task, 0, 100)} // as SubmitBatch makes it
			if err := decodeAnswer(bytes.NewReader(data), &out); err != nil || len(out.Tasks) != 100 {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out TaskList
			if err := json.NewDecoder(bytes.NewReader(data)).Decode(&out); err != nil || len(out.Tasks) != 100 {
				b.Fatal(err)
			}
		}
	})
}
