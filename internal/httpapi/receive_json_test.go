package httpapi

import (
	"encoding/json"
	"fmt"
	"testing"

	courier "github.com/courierhq/courier"
)

// sampleReceive is a receive carrying acks, as the SDK's Worker writes it.
func sampleReceive(t testing.TB, leases int) []byte {
	t.Helper()
	req := courier.ReceiveRequest{Max: 50, Wait: "0s", Visibility: "30s", Ack: &courier.AckRequest{}}
	for i := range leases {
		req.Ack.Leases = append(req.Ack.Leases, fmt.Sprintf("%016x.%016x", 1_700_000_000_000_000_000+i, 0xfeedface+i))
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkReceiveLikeStdlib(t *testing.T, data []byte) bool {
	t.Helper()
	return checkLikeStdlib[receiveRequest](t, data)
}

func TestDecodeReceiveFastTakesThePlainForm(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		string(sampleReceive(t, 50)),
		`{"max":10,"wait":"20s"}`,
		`{"ack":{"leases":[]}}`,
		`{"ack":{"lease":"a"}}`,
		`{"ack":{}}`,
		`{ "max" : -0 , "visibility" : "1m" }`,
		`{}`,
	} {
		if !checkReceiveLikeStdlib(t, []byte(data)) {
			t.Errorf("decodeFast refused %q, which it should read", data)
		}
	}
	var req receiveRequest
	if !req.decodeFast(sampleReceive(t, 3)) || req.Max != 50 || len(req.Ack.Leases) != 3 || req.Wait != "0s" {
		t.Errorf("decoded %+v (ack %+v)", req.ReceiveRequest, req.Ack)
	}
}

func TestDecodeReceiveFastLeavesTheRestToEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		`{"ack":{"leases":["a"],"results":[1]}}`,  // results
		`{"ack":{"leases":["a"],"result":{}}}`,    // a result
		`{"ack":{"leases":["a\"b"]}}`,             // an escape
		`{"ack":{"leases":["a"],"leases":["b"]}}`, // a repeated key in ack
		`{"max":1,"max":2}`,                       // a repeated key
		`{"MAX":1}`,                               // a key matched case-insensitively
		`{"ack":null}`,                            // null
		`{"ack":{"leases":null}}`,                 // null
		`{"ack":{"leases":[null]}}`,               // null
		`{"max":1.0}`,                             // a fraction
		`{"max":"1"}`,                             // not a number
		`{"wait":5}`,                              // not a string
		`{"messages":[]}`,                         // not a field of a receive
		`{"ack":{"leases":["a",]}}`,               // a trailing comma
		`{"max":1} x`,                             // trailing data
	} {
		var req receiveRequest
		if req.decodeFast([]byte(data)) {
			t.Errorf("decodeFast accepted %q; it should leave it to encoding/json", data)
		}
	}
}

// FuzzDecodeReceiveFast: whatever the text, decodeFast either declines or
// decides as encoding/json does.
func FuzzDecodeReceiveFast(f *testing.F) {
	f.Add(sampleReceive(f, 3))
	f.Add([]byte(`{"max":7,"wait":"1s","visibility":"2m","ack":{"leases":["x","y"]}}`))
	f.Add([]byte(`{"ack":{"leases":["a\"]}"],"results":[null,{"a":[1]}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkReceiveLikeStdlib(t, data)
	})
}

func TestDecodeAckFast(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		`{"lease":"0000000000000001.00000000feedface"}`,
		`{"leases":["a","b"]}`,
		`{"leases":[]}`,
		`{"lease":"a","leases":["b"]}`, // both: ackLeases refuses it, as it would after encoding/json
		` { "lease" : "" } `,
		`{}`,
	} {
		if !checkLikeStdlib[ackRequest](t, []byte(data)) {
			t.Errorf("decodeFast refused %q, which it should read", data)
		}
	}
	for _, data := range []string{
		`{"lease":"a","result":{"ok":true}}`, // a result
		`{"leases":["a"],"results":[1]}`,     // results
		`{"lease":"a\"b"}`,                   // an escape
		`{"lease":"a","lease":"b"}`,          // a repeated key
		`{"LEASE":"a"}`,                      // a key matched case-insensitively
		`{"lease":null}`,                     // null
		`{"leases":["a",]}`,                  // a trailing comma
		`{"lease":1}`,                        // not a string
		`{"max":1}`,                          // not a field of an ack
		`{"lease":"a"} {}`,                   // trailing data
		`["a"]`,                              // not an object
	} {
		var req ackRequest
		if req.decodeFast([]byte(data)) {
			t.Errorf("decodeFast accepted %q; it should leave it to encoding/json", data)
		}
	}
}

// FuzzDecodeAckFast: whatever the text, an ack's decodeFast either declines
// or decides as encoding/json does.
func FuzzDecodeAckFast(f *testing.F) {
	f.Add([]byte(`{"lease":"0000000000000001.00000000feedface"}`))
	f.Add([]byte(`{"leases":["x","y"],"results":[null,{"a":[1]}]}`))
	f.Add([]byte(`{"lease":"a\u0041","result":"r"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkLikeStdlib[ackRequest](t, data)
	})
}

// BenchmarkDecodeReceive decodes a receive carrying 50 acks, as the SDK's
// Worker sends it at concurrency 100.
func BenchmarkDecodeReceive(b *testing.B) {
	data := sampleReceive(b, 50)
	benchDecode(b, data, func() bool { var req receiveRequest; return req.decodeFast(data) },
		func() error { var req receiveRequest; return json.Unmarshal(data, &req) })
}
