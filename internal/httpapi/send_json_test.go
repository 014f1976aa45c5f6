package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	courier "github.com/courierhq/courier"
)

// sampleSend is a batch send as the SDK writes it, with every field used.
func sampleSend(t testing.TB) []byte {
	t.Helper()
	b64 := "eHh4"
	at := time.Date(2026, 12, 4, 16, 0, 0, 123456789, time.FixedZone("", 3600))
	batch := courier.SendBatch{Messages: []courier.NewMessage{
		{Body: json.RawMessage(`{"order": 42, "items": [1, "two", {"x": null}]}`),
			Headers: map[string]string{"trace-id": "abc", "type": "email.send"}, Priority: -5, Group: "g",
			DedupKey: "d-1", Delay: "1m30s"},
		{BodyBase64: &b64, Headers: map[string]string{}, NotBefore: &at},
		{Body: json.RawMessage(`"naïve ✓"`), Headers: map[string]string{"é": "ü"}, Priority: 9},
		{Body: json.RawMessage(`-12.5e3`)},
		{Body: json.RawMessage(`true`)},
	}}
	b, err := json.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stdDecodeSend decodes data as decode does without the fast path.
func stdDecodeSend(data []byte) (sendRequest, error) { return stdDecode[sendRequest](data) }

// stdDecode decodes data into a T as decode does with encoding/json.
func stdDecode[T any](data []byte) (T, error) {
	var req T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) { // as decode checks
		return req, fmt.Errorf("data after the object")
	}
	return req, nil
}

// fastDecoded is a request type with a fast decoder.
type fastDecoded[T any] interface {
	*T
	fastDecoder
}

// checkLikeStdlib fails t if the fast decoder of a T accepts data and
// decides anything other than encoding/json would; it reports whether it
// accepted.
func checkLikeStdlib[T any, P fastDecoded[T]](t *testing.T, data []byte) bool {
	t.Helper()
	var fast, zero T
	if !P(&fast).decodeFast(data) {
		if !reflect.DeepEqual(fast, zero) {
			t.Fatalf("decodeFast(%q) declined but changed the request: %#v", data, fast)
		}
		return false
	}
	std, err := stdDecode[T](data)
	if err != nil {
		t.Fatalf("decodeFast accepted %q, which encoding/json refuses: %v", data, err)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("decodeFast(%q)\n = %#v\nencoding/json gives\n   %#v", data, fast, std)
	}
	return true
}

func checkSendLikeStdlib(t *testing.T, data []byte) bool {
	t.Helper()
	return checkLikeStdlib[sendRequest](t, data)
}

func TestDecodeSendFastTakesThePlainForm(t *testing.T) {
	t.Parallel()
	for _, data := range [][]byte{
		sampleSend(t),
		[]byte(`{"messages":[{"body":` + deep(1000) + `}]}`),
		[]byte(`{"messages":[]}`),
		[]byte(" {\n \"messages\" : [ { \"body\" : 1 } ] } \n"),
		[]byte(`{"body":{"a":[1,2]},"headers":{"k":"v"},"delay":"1s","priority":5,"dedup_key":"d","group":"g"}`),
		[]byte(`{"body_base64":"AAE=","not_before":"2026-12-04T16:00:00Z"}`),
		[]byte(`{}`),
		[]byte(`{"body":"a\"]}"}`), // escapes inside a body are kept as they are
	} {
		if !checkSendLikeStdlib(t, data) {
			t.Errorf("decodeFast refused %q, which it should read", data)
		}
	}
}

func TestDecodeSendFastLeavesTheRestToEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		`{"group":"a\"b"}`,                  // an escape
		`{"group":"a","group":"b"}`,         // a repeated key
		`{"messages":[],"messages":[]}`,     // a repeated key
		`{"Body":1}`,                        // a key matched case-insensitively
		`{"body":1,"extra":1}`,              // an unknown key
		`{"messages":[{"messages":[]}]}`,    // not a field of a message
		`{"priority":1.0}`,                  // a fraction
		`{"priority":01}`,                   // a leading zero
		`{"priority":99999999999999999999}`, // too large for an int
		`{"body":null}`,                     // null
		`{"headers":null}`,                  // null
		`{"messages":null}`,                 // null
		`{"headers":{"a":"1","a":"2"}}`,     // a repeated header
		`{"headers":{"a":1}}`,               // a header that is not a string
		"{\"group\":\"\xff\"}",              // invalid UTF-8
		`{"not_before":"2026-13-01T00:00:00Z"}`,
		`{"messages":[]} x`,          // trailing data
		`{"body":[1,2}`,              // not JSON
		`{"messages":[{"body":1},]}`, // a trailing comma
		`[]`,
		``,
		`{}]`,                          // trailing data
		`{"body":` + deep(1001) + `}`,  // deeper than the fast path reads
		`{"body":` + deep(10000) + `}`, // beyond encoding/json's limit with the object around it
		`{"messages":[{"body":` + deep(9997) + `}]}`,
	} {
		var req sendRequest
		if req.decodeFast([]byte(data)) {
			t.Errorf("decodeFast accepted %q; it should leave it to encoding/json", data)
		}
	}
}

// deep is n nested arrays.
func deep(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// FuzzDecodeSendFast: whatever the text, decodeFast either declines or
// decides as encoding/json does.
func FuzzDecodeSendFast(f *testing.F) {
	f.Add(sampleSend(f))
	f.Add([]byte(`{"body":{"a":1},"headers":{"k":"v"},"delay":"1s","priority":-5,"dedup_key":"d","group":"g"}`))
	f.Add([]byte(`{"messages":[{"body":"a\"]}"},{"body":12}]}`))
	f.Add([]byte(`{"messages":[{"not_before":"2026-01-01T00:00:00+01:00"}]}`))
	f.Add([]byte(strings.Repeat(`{"messages":[`, 3)))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSendLikeStdlib(t, data)
	})
}

// BenchmarkDecodeSend decodes batches of 1,000 messages: the sample's
// mix, and 128-byte base64 bodies as courier bench sends.
func BenchmarkDecodeSend(b *testing.B) {
	var one courier.SendBatch
	if err := json.Unmarshal(sampleSend(b), &one); err != nil {
		b.Fatal(err)
	}
	var mixed, plain courier.SendBatch
	for range 200 {
		mixed.Messages = append(mixed.Messages, one.Messages...)
	}
	body := strings.Repeat("x", 171) // the base64 of 128 bytes
	for range 1000 {
		plain.Messages = append(plain.Messages, courier.NewMessage{BodyBase64: &body})
	}
	for _, batch := range []struct {
		name  string
		batch courier.SendBatch
	}{{"mixed", mixed}, {"base64", plain}} {
		data, err := json.Marshal(batch.batch)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(batch.name, func(b *testing.B) { benchDecodeSend(b, data) })
	}
}

func benchDecodeSend(b *testing.B, data []byte) {
	benchDecode(b, data, func() bool { var req sendRequest; return req.decodeFast(data) },
		func() error { _, err := stdDecodeSend(data); return err })
}

// benchDecode runs a fast decoder (false: it declined) and encoding/json's
// decode of the same data side by side.
func benchDecode(b *testing.B, data []byte, fast func() bool, std func() error) {
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			if !fast() {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			if err := std(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestJSONTextIsTheSDKs: jsontext_gen.go is ../../jsontext.go as go
// generate copies it; an edit to either without the other fails here.
func TestJSONTextIsTheSDKs(t *testing.T) {
	t.Parallel()
	sdk, err := os.ReadFile("../../jsontext.go")
	if err != nil {
		t.Fatal(err)
	}
	gen, err := os.ReadFile("jsontext_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	want := "// Code generated by go generate from ../../jsontext.go; DO NOT EDIT.\n\n" +
		strings.Replace(string(sdk), "package courier\n", "package httpapi\n", 1)
	if string(gen) != want {
		t.Error("jsontext_gen.go differs from ../../jsontext.go: run go generate ./internal/httpapi")
	}
}
