package httpapi

import (
	"bytes"
	"encoding/json"
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

func checkSubmitLikeStdlib(t *testing.T, data []byte) bool {
	t.Helper()
	return checkLikeStdlib[submitRequest](t, data)
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
