package courier

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// checkSendLikeStdlib fails t if decodeSendBatch accepts data and decides
// anything other than encoding/json would.
func checkSendLikeStdlib(t *testing.T, data []byte) bool {
	t.Helper()
	var fast SendBatchResult
	if !decodeSendBatch(data, &fast) {
		return false
	}
	var std SendBatchResult
	if err := json.Unmarshal(data, &std); err != nil {
		t.Fatalf("decodeSendBatch accepted %q, which encoding/json refuses: %v", data, err)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("decodeSendBatch(%q)\n = %#v\nencoding/json gives\n   %#v", data, fast, std)
	}
	return true
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
		var res SendBatchResult
		if decodeSendBatch([]byte(data), &res) {
			t.Errorf("decodeSendBatch accepted %q; it should leave it to encoding/json", data)
		}
		if res.Messages != nil {
			t.Errorf("decodeSendBatch(%q) changed res though it declined", data)
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
