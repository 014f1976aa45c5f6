package courier

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleAnswer is a receive's answer as the server writes it, with one
// message of each kind of body.
func sampleAnswer(t testing.TB) []byte {
	t.Helper()
	b64 := "eHh4"
	at := time.Date(2026, 12, 4, 16, 0, 0, 123456789, time.UTC)
	res := ReceiveResult{Messages: []Message{
		{ID: "1HTSM8PJYJ194", Body: json.RawMessage(`{"order": 42, "items": [1, "two", {"x": null}]}`),
			Headers: map[string]string{"trace-id": "abc", "type": "email.send"}, Priority: -5, Group: "g",
			Attempt: 1, SentAt: at, Lease: "GOs0RaXpBSSIIIOUOQC02Q", LeaseExpiresAt: at.Add(30 * time.Second)},
		{ID: "1HTSM8PJYJ195", BodyBase64: &b64, Headers: map[string]string{}, Attempt: 12, SentAt: at,
			Lease: "GOs0RaXpBSSIIIOUOQC02R", LeaseExpiresAt: at},
		{ID: "1HTSM8PJYJ196", Body: json.RawMessage(`"naïve ✓"`), Headers: map[string]string{"é": "ü"}, SentAt: at,
			Lease: "L", LeaseExpiresAt: at},
		{ID: "x", Body: json.RawMessage(`-12.5e3`), Headers: map[string]string{}, SentAt: at, Lease: "L", LeaseExpiresAt: at},
	}}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decidesLikeStdlib fails t if fast (a fast-path decoder named name)
// accepts data and decides anything other than encoding/json would, or
// declines and changes its result all the same. It reports whether fast
// accepted data, and what it decoded.
func decidesLikeStdlib[T any](t *testing.T, name string, data []byte, fast func([]byte, *T) bool) (T, bool) {
	t.Helper()
	var got, zero T
	if !fast(data, &got) {
		if !reflect.DeepEqual(got, zero) {
			t.Fatalf("%s(%q) declined but changed its result: %#v", name, data, got)
		}
		return got, false
	}
	var std T
	if err := json.Unmarshal(data, &std); err != nil {
		t.Fatalf("%s accepted %q, which encoding/json refuses: %v", name, data, err)
	}
	if !reflect.DeepEqual(got, std) {
		t.Fatalf("%s(%q)\n = %#v\nencoding/json gives\n   %#v", name, data, got, std)
	}
	return got, true
}

// checkLikeStdlib fails t if decodeReceive accepts data and decides
// anything other than encoding/json would, also into a slice with room.
func checkLikeStdlib(t *testing.T, data []byte) bool {
	t.Helper()
	noRoom := func(data []byte, res *ReceiveResult) bool { return decodeReceive(data, res, 0) }
	std, ok := decidesLikeStdlib(t, "decodeReceive", data, noRoom)
	if !ok {
		return false
	}
	// With room made for what a receive asked: the same result.
	var roomy ReceiveResult
	if !decodeReceive(data, &roomy, 2) || !reflect.DeepEqual(roomy, std) {
		t.Fatalf("decodeReceive(%q) into a slice with room\n = %#v\nencoding/json gives\n   %#v", data, roomy, std)
	}
	return true
}

func TestDecodeReceiveTakesTheServersForm(t *testing.T) {
	t.Parallel()
	for _, data := range [][]byte{
		sampleAnswer(t),
		[]byte(`{"messages":[]}`),
		[]byte(" {\n \"messages\" : [ ] } \n"),
		[]byte(`{"messages":[],"ack":{"acked":2,"failed":[{"lease":"x","code":"lease_expired","message":"gone"}]}}`),
		[]byte(`{"ack":{"acked":1},"messages":[{"id":"a"}]}`),
	} {
		if !checkLikeStdlib(t, data) {
			t.Errorf("decodeReceive refused %q, which it should read", data)
		}
	}
}

func TestDecodeReceiveLeavesTheRestToEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		`{"messages":[{"id":"a\"b"}]}`,        // an escape
		`{"messages":[{"id":"a","id":"b"}]}`,  // a repeated key
		`{"messages":[{"ID":"a"}]}`,           // a key matched case-insensitively
		`{"messages":[{"id":"a","extra":1}]}`, // an unknown key
		`{"messages":[{"attempt":1.0}]}`,      // a fraction
		`{"messages":[{"attempt":01}]}`,       // a leading zero
		`{"messages":[{"body":null}]}`,        // null
		`{"messages":[{"headers":{"a":"1","a":"2"}}]}`,
		`{"messages":[{"id":"\xff"}]}`,             // invalid UTF-8
		`{"messages":[{"body":{"a":1}}],"more":1}`, // another top-level key
		`{"messages":[]} x`,                        // trailing data
		`{"messages":[{"body":[1,2}]}`,             // not JSON
		`{"messages":null}`,
		`{"messages":[],"ack":{},"ack":{}}`, // a repeated key
		`{"messages":[],"ack":5}`,           // not an ack's outcome
		`{"ack":{"acked":1}}`,               // no messages
		``,
		`{"messages":[{"body":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}]}`, // too deep for encoding/json
		`{"messages":[{"body":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}]}`, // deeper than the fast path reads
	} {
		var res ReceiveResult
		if decodeReceive([]byte(data), &res, 10) {
			t.Errorf("decodeReceive accepted %q; it should leave it to encoding/json", data)
		}
	}
}

// FuzzDecodeReceive: whatever the text, decodeReceive either declines or
// decides as encoding/json does.
func FuzzDecodeReceive(f *testing.F) {
	f.Add(sampleAnswer(f))
	f.Add([]byte(`{"messages":[{"id":"a","body":[1,{"b":"}"}],"headers":{"k":"v"},"attempt":-0}]}`))
	f.Add([]byte(`{"messages":[{"body":"a\"]}"},{"body":12}]}`))
	f.Add([]byte(`{"messages":[{"sent_at":"2026-01-01T00:00:00+01:00","lease_expires_at":"2026-13-01T00:00:00Z"}]}`))
	f.Add([]byte(strings.Repeat(`{"messages":[`, 3)))
	f.Add([]byte(`{"messages":[{"id":"a"}],"ack":{"acked":3,"failed":[{"lease":"l","code":"invalid_lease","message":"?"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkLikeStdlib(t, data)
	})
}

func BenchmarkDecodeReceive(b *testing.B) {
	var one ReceiveResult
	if err := json.Unmarshal(sampleAnswer(b), &one); err != nil {
		b.Fatal(err)
	}
	var many ReceiveResult
	for range 250 {
		many.Messages = append(many.Messages, one.Messages...)
	}
	data, err := json.Marshal(many)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			var res ReceiveResult
			if !decodeReceive(data, &res, 1000) {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			var res ReceiveResult
			if err := json.Unmarshal(data, &res); err != nil {
				b.Fatal(err)
			}
		}
	})
}
