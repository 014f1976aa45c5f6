package courier

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestReceiveAnswersNilWhenNothingCame: a receive that fails, or whose
// answer has no "messages", returns nil messages, as encoding/json makes
// them: the room made for a receive's messages is made only when some come.
func TestReceiveAnswersNilWhenNothingCame(t *testing.T) {
	t.Parallel()
	answer := map[string]func(http.ResponseWriter){
		"/v1/queues/down/receive": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":{"code":"unavailable","message":"down"}}`))
		},
		"/v1/queues/odd/receive": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte("{}\n"))
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answer[r.URL.Path](w) }))
	defer srv.Close()
	c := NewClient(srv.URL)
	defer c.CloseIdleConnections()
	ctx := context.Background()
	for _, queue := range []string{"down", "", "odd"} {
		res, err := c.ReceiveAcking(ctx, queue, ReceiveRequest{Max: 10})
		if (err == nil) != (queue == "odd") {
			t.Errorf("queue %q: %v", queue, err)
		}
		if res.Messages != nil || res.Ack != nil {
			t.Errorf("queue %q: %#v, want nothing", queue, res)
		}
	}
}

// FuzzDecodeAnswer: decodeAnswer, fast paths and all, decides as the
// json.Decoder it stands for, on a receive's answer (with room for three
// messages) and on a batch send's.
func FuzzDecodeAnswer(f *testing.F) {
	f.Add(sampleAnswer(f))
	f.Add([]byte(`{"messages":[{"id":"a","group":"g","headers":{"k":"v"},"body":{"x":1}}],"messages":[{"id":"b"}]}`))
	f.Add([]byte(`{"messages":[{"id":"a","body":"xx"},{"id":"b","body":[1]}],"messages":[{"id":"c","body":2},{"id":"d"}]}`))
	f.Add([]byte(`{"messages":[{"id":"a","priority":1}],"messages":[{"id":"b","priority":"x"}]}`))
	f.Add([]byte(`{"messages":[{"id":"1HTSM8PJYJ194"},{"id":"x"}]} trailing`))
	f.Add([]byte(`{}`))
	tasks := sampleTasks()
	for _, v := range []any{TaskList{Tasks: tasks}, tasks[3]} {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"tasks":[{"id":"a","error":"x"}],"tasks":[{"id":"b"}]}`))
	f.Add([]byte(`{"tasks":[{"id":"a","webhook":{"url":"u"},"Webhook":{"pending":true}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, std ReceiveResult
		checkDecodeAnswer(t, data, &receiveInto{&got, 3}, &got, &std)
		var sent, stdSent SendBatchResult
		checkDecodeAnswer(t, data, &sent, &sent, &stdSent)
		// Into lists with room, as SubmitBatch decodes.
		list, stdList := TaskList{Tasks: make([]Task, 0, 2)}, TaskList{Tasks: make([]Task, 0, 2)}
		checkDecodeAnswer(t, data, &list, &list, &stdList)
		var task, stdTask Task
		checkDecodeAnswer(t, data, &task, &task, &stdTask)
	})
}

// TestDecodeAnswerBeyondFastPath: an answer larger than the fast paths
// read whole (maxFastAnswer; here smaller limits) is decoded by
// encoding/json as it comes, to the end of its value: a server that sends
// more is not read further.
func TestDecodeAnswerBeyondFastPath(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	list := TaskList{Tasks: []Task{{ID: "1HVMNRYX79VE5", Queue: "q", State: TaskSucceeded,
		Result: json.RawMessage(`"` + strings.Repeat("r", 2000) + `"`), CreatedAt: at, UpdatedAt: at,
		FinishedAt: &at, ResultTTL: "1h0m0s"}}}
	data, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{len(data) - 1, len(data), 1 << 20} {
		var got TaskList
		body := io.MultiReader(bytes.NewReader(data), endless{}) // read whole, it would never end
		if err := decodeAnswerUpTo(body, &got, limit); err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		if !reflect.DeepEqual(got, list) {
			t.Fatalf("limit %d: decoded %#v", limit, got)
		}
	}
}

// endless is a body that never ends: whitespace, forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// checkDecodeAnswer decodes data with decodeAnswer into out, whose result
// is got, and with a json.Decoder into std, and fails t if they differ.
func checkDecodeAnswer[T any](t *testing.T, data []byte, out any, got, std *T) {
	t.Helper()
	ferr := decodeAnswer(bytes.NewReader(data), out)
	serr := json.NewDecoder(bytes.NewReader(data)).Decode(std)
	if (ferr == nil) != (serr == nil) {
		t.Fatalf("%q: decodeAnswer: %v; encoding/json: %v", data, ferr, serr)
	}
	if ferr == nil && !reflect.DeepEqual(got, std) {
		t.Fatalf("%q:\n decodeAnswer  = %#v\n encoding/json = %#v", data, got, std)
	}
}
