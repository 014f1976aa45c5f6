package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	courier "github.com/courierhq/courier"
)

// sampleSubmit is a batch submit as the SDK writes it, with every field of
// a task used.
func sampleSubmit(t testing.TB) []byte {
	t.Helper()
	b64 := "eHh4"
	batch := courier.SubmitBatch{Tasks: []courier.SubmitTask{
		{NewMessage: courier.NewMessage{Body: json.RawMessage(`{"resize": [640, 480]}`),
			Headers: map[string]string{"trace-id": "abc"}, Priority: 3, Group: "g", DedupKey: "d-1"},
			Notify:  &courier.TaskNotify{URL: "https://hooks.example/done", Secret: "s3cret"},
			ReplyTo: "replies", ResultTTL: "1h"},
		{NewMessage: courier.NewMessage{BodyBase64: &b64}, Notify: &courier.TaskNotify{URL: "https://x.example/"}},
		{NewMessage: courier.NewMessage{Body: json.RawMessage(`"naïve ✓"`), Delay: "5s"}},
	}}
	b, err := json.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkSubmitLikeStdlib fails t if decodeFast accepts data and decides
// anything other than encoding/json would; it reports whether it accepted.
func checkSubmitLikeStdlib(t *testing.T, data []byte) bool {
	t.Helper()
	var fast submitRequest
	if !fast.decodeFast(data) {
		if !reflect.DeepEqual(fast, submitRequest{}) {
			t.Fatalf("decodeFast(%q) declined but changed the request: %#v", data, fast)
		}
		return false
	}
	var std submitRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&std)
	if _, terr := dec.Token(); err == nil && !errors.Is(terr, io.EOF) { // as decode checks
		err = fmt.Errorf("data after the object")
	}
	if err != nil {
		t.Fatalf("decodeFast accepted %q, which encoding/json refuses: %v", data, err)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("decodeFast(%q)\n = %#v\nencoding/json gives\n   %#v", data, fast, std)
	}
	return true
}

func TestDecodeSubmitFastTakesThePlainForm(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		string(sampleSubmit(t)),
		`{"tasks":[]}`,
		`{"body":{"a":1},"notify":{"url":"https://h.example/"},"reply_to":"r","result_ttl":"2h","priority":1}`,
		`{"notify":{}}`,
		`{"body_base64":"AAE=","headers":{"k":"v"}}`,
		`{}`,
	} {
		if !checkSubmitLikeStdlib(t, []byte(data)) {
			t.Errorf("decodeFast refused %q, which it should read", data)
		}
	}
}

func TestDecodeSubmitFastLeavesTheRestToEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		`{"reply_to":"a\"b"}`,              // an escape
		`{"reply_to":"a","reply_to":"b"}`,  // a repeated key
		`{"tasks":[],"tasks":[]}`,          // a repeated key
		`{"notify":{"url":"a","url":"b"}}`, // a repeated key in notify
		`{"notify":{"URL":"a"}}`,           // a key matched case-insensitively
		`{"notify":{"url":"a","extra":1}}`, // an unknown key in notify
		`{"notify":null}`,                  // null
		`{"tasks":null}`,                   // null
		`{"tasks":[{"tasks":[]}]}`,         // not a field of a task
		`{"tasks":[{"messages":[]}]}`,      // not a field of a task
		`{"messages":[]}`,                  // a send's field, not a submit's
		`{"result_ttl":1}`,                 // not a string
		`{"tasks":[{"body":1},]}`,          // a trailing comma
		`{"tasks":[]} x`,                   // trailing data
	} {
		var req submitRequest
		if req.decodeFast([]byte(data)) {
			t.Errorf("decodeFast accepted %q; it should leave it to encoding/json", data)
		}
	}
}

// FuzzDecodeSubmitFast: whatever the text, decodeFast either declines or
// decides as encoding/json does.
func FuzzDecodeSubmitFast(f *testing.F) {
	f.Add(sampleSubmit(f))
	f.Add([]byte(`{"body":{"a":1},"notify":{"url":"u","secret":"s"},"reply_to":"r","result_ttl":"1s"}`))
	f.Add([]byte(`{"tasks":[{"body":"a\"]}"},{"body":12,"notify":{}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSubmitLikeStdlib(t, data)
	})
}

// BenchmarkDecodeSubmit decodes a batch of 1,000 tasks with 128-byte
// base64 bodies, as courier bench submits them.
func BenchmarkDecodeSubmit(b *testing.B) {
	body := string(bytes.Repeat([]byte("x"), 171))
	var batch courier.SubmitBatch
	for range 1000 {
		batch.Tasks = append(batch.Tasks, courier.SubmitTask{NewMessage: courier.NewMessage{BodyBase64: &body}})
	}
	data, err := json.Marshal(batch)
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, data, func() bool { var req submitRequest; return req.decodeFast(data) },
		func() error { var req submitRequest; return json.Unmarshal(data, &req) })
}
