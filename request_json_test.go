package courier

import (
	"bytes"
	"encoding/json"
	"testing"
)

// stdlibRequest is what Client.call wrote before request_json.go: an
// Encoder's output, HTML left as it is.
func stdlibRequest(t *testing.T, in any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(in); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkRequestJSON fails t if in's own JSON, when it writes one, differs
// from encoding/json's; it reports whether it wrote one.
func checkRequestJSON(t *testing.T, in jsonAppender) bool {
	t.Helper()
	got, ok := in.appendJSON(nil)
	if !ok {
		return false
	}
	got = append(got, '\n') // as Client.call sends it
	if want := stdlibRequest(t, in); !bytes.Equal(got, want) {
		t.Fatalf("%#v:\n own JSON %s\nencoding/json %s", in, got, want)
	}
	return true
}

func TestRequestJSON(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in    jsonAppender
		plain bool
	}{
		{ReceiveRequest{}, true},
		{ReceiveRequest{Max: 100, Wait: "20s", Visibility: "30s"}, true},
		{ReceiveRequest{Max: -3, Visibility: "1m"}, true},
		{ReceiveRequest{Max: 2, Wait: "10ms", Ack: &AckRequest{Leases: []string{"GOs0RaXpBSSIIIOUOQC02Q", "x-_~."}}}, true},
		{ReceiveRequest{Ack: &AckRequest{Leases: []string{}}}, true},
		{ReceiveRequest{Ack: &AckRequest{}}, true},
		{AckRequest{Lease: "L"}, true},
		{AckRequest{Lease: "L", Leases: []string{"a", "b"}}, true},
		{ReceiveRequest{Wait: `a"b`}, false},
		{ReceiveRequest{Visibility: "naïve"}, false},
		{ReceiveRequest{Ack: &AckRequest{Leases: []string{"a", "b\\c"}}}, false},
		{ReceiveRequest{Ack: &AckRequest{Leases: []string{"a"}, Results: []json.RawMessage{json.RawMessage(`{"x": 1}`)}}}, false},
		{AckRequest{Lease: "L", Result: json.RawMessage(`1`)}, false},
		{AckRequest{Lease: "tab\there"}, false},
	} {
		if got := checkRequestJSON(t, c.in); got != c.plain {
			t.Errorf("%#v: written by itself %v, want %v", c.in, got, c.plain)
		}
	}
}

func FuzzRequestJSON(f *testing.F) {
	f.Add(100, "20s", "30s", "GOs0RaXpBSSIIIOUOQC02Q", "b", true)
	f.Add(0, "", "", "", "", false)
	f.Add(-1, "a\"", "\u2028", "\\", "\x00", true)
	f.Fuzz(func(t *testing.T, max int, wait, vis, l1, l2 string, ack bool) {
		r := ReceiveRequest{Max: max, Wait: wait, Visibility: vis}
		if ack {
			r.Ack = &AckRequest{Lease: l2, Leases: []string{l1, l2}[:len(l1)%3%2+1]}
		}
		checkRequestJSON(t, r)
		checkRequestJSON(t, AckRequest{Lease: l1, Leases: []string{l2}})
	})
}
