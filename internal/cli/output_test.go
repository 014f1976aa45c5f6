package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/courierhq/courier"
)

func TestBodyPreview(t *testing.T) {
	t.Parallel()
	b64 := func(b string) courier.Message { return courier.Message{BodyBase64: courier.BinaryBody([]byte(b))} }
	bad := "%%%"
	cases := []struct {
		m    courier.Message
		want string
	}{
		{courier.Message{Body: json.RawMessage(`{"a":1}`)}, `{"a":1}`},
		{courier.Message{Body: json.RawMessage("{\n  \"a\": 1\n}")}, `{ "a": 1 }`},
		{b64("plain text\nline two"), "plain text line two"},
		{b64("\x00\x01\x02"), "(3 bytes)"},
		{b64("\xff\xfe"), "(2 bytes)"},
		{b64(""), "(empty)"},
		{courier.Message{BodyBase64: &bad}, "(undecodable body)"},
		{b64(strings.Repeat("é", 100)), strings.Repeat("é", bodyPreviewRunes-1) + "…"},
	}
	for _, tc := range cases {
		if got := bodyPreview(&tc.m); got != tc.want {
			t.Errorf("bodyPreview(%s / %v) = %q, want %q", tc.m.Body, deref(tc.m.BodyBase64), got, tc.want)
		}
	}
}
