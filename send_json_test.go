package courier

import (
	"strings"
	"testing"
)

// checkSendLikeStdlib fails t if decodeSendBatch accepts data and decides
// anything other than encoding/json would.
func checkSendLikeStdlib(t *testing.T, data []byte) bool {
	t.Helper()
	_, ok := decidesLikeStdlib(t, "decodeSendBatch", data, decodeSendBatch)
	return ok
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
