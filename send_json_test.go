package courier

import (
	"strings"
	"testing"
)

// likeStdlib fails t if fast (a fast-path decoder named name) accepts data
// and decides anything other than encoding/json would; it reports whether
// fast accepted data.
func likeStdlib[T any](t *testing.T, name string, data []byte, fast func([]byte, *T) bool) bool {
	t.Helper()
	_, ok := decidesLikeStdlib(t, name, data, fast)
	return ok
}

func checkSendLikeStdlib(t *testing.T, data []byte) bool {
	t.Helper()
	return likeStdlib(t, "decodeSendBatch", data, decodeSendBatch)
}

func TestDecodeSendBatch(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		`{"messages":[{"id":"1HTSM8PJYJ194"},{"id":"1HTSM8PJYJ195"}]}` + "\n",
		`{"messages":[]}`,
		" { \"messages\" : [ { \"id\" : \"a\" } ] } ",
	} {
		if !checkSendLikeStdlib(t, []byte(data)) {
			t.Errorf("decodeSendBatch refused %q, which it should read", data)
		}
	}
	for _, data := range []string{
		`{"messages":[{"id":"a\"b"}]}`,       // an escape
		`{"messages":[{"id":"a","id":"b"}]}`, // a repeated key
		`{"messages":[{"ID":"a"}]}`,          // a key matched case-insensitively
		`{"messages":[{"id":"a","x":1}]}`,    // an unknown key
		`{"messages":[{"id":null}]}`,
		`{"messages":[{"id":1}]}`,
		`{"messages":null}`,
		`{"messages":[],"messages":[]}`,
		`{"messages":[]} x`,
		`{}`,
		``,
		`{"messages":[` + strings.Repeat(`{"id":"a"},`, 3) + `]}`, // a trailing comma
	} {
		if checkSendLikeStdlib(t, []byte(data)) {
			t.Errorf("decodeSendBatch accepted %q; it should leave it to encoding/json", data)
		}
	}
}

// FuzzDecodeSendBatch: whatever the text, decodeSendBatch either declines
// or decides as encoding/json does.
func FuzzDecodeSendBatch(f *testing.F) {
	f.Add([]byte(`{"messages":[{"id":"1HTSM8PJYJ194"},{"id":"x"}]}`))
	f.Add([]byte(`{"messages":[{"id":"\u0041"}]}`))
	f.Add([]byte(`{"messages":[{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSendLikeStdlib(t, data)
	})
}

func TestDecodeSend(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		`{"id":"1HTSM8PJYJ194"}` + "\n",
		" { \"id\" : \"a\" } ",
		`{}`,
	} {
		if !likeStdlib(t, "decodeSend", []byte(data), decodeSend) {
			t.Errorf("decodeSend refused %q, which it should read", data)
		}
	}
	got, _ := decidesLikeStdlib(t, "decodeSend", []byte(`{"id":"1HTSM8PJYJ194"}`), decodeSend)
	if got.ID != "1HTSM8PJYJ194" {
		t.Errorf("decodeSend read id %q, want 1HTSM8PJYJ194", got.ID)
	}
	for _, data := range []string{
		`{"id":"a\"b"}`,       // an escape
		`{"id":"a","id":"b"}`, // a repeated key
		`{"ID":"a"}`,          // a key matched case-insensitively
		`{"id":"a","x":1}`,    // an unknown key
		`{"id":null}`,
		`{"id":1}`,
		`{"id":"a"} x`,
		`{"messages":[]}`,
		`[]`,
		``,
	} {
		if likeStdlib(t, "decodeSend", []byte(data), decodeSend) {
			t.Errorf("decodeSend accepted %q; it should leave it to encoding/json", data)
		}
	}
}

// FuzzDecodeSend: whatever the text, decodeSend either declines or decides
// as encoding/json does.
func FuzzDecodeSend(f *testing.F) {
	f.Add([]byte(`{"id":"1HTSM8PJYJ194"}`))
	f.Add([]byte(`{"id":"\u0041"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		likeStdlib(t, "decodeSend", data, decodeSend)
	})
}
