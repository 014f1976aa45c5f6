package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/courierhq/courier"
)

// TestSendBodyRule checks how send chooses between a JSON and a bytes body.
func TestSendBodyRule(t *testing.T) {
	t.Parallel()
	url := setup(t)
	cases := []struct {
		name       string
		args       []string
		stdin      string
		json       string // the body expected as JSON, or
		bytes      []byte // the body expected as bytes
		wantHeader map[string]string
	}{
		{name: "json object", args: []string{`{"n": 1}`}, json: `{"n":1}`},
		{name: "json number", args: []string{"42"}, json: `42`},
		{name: "text", args: []string{"hello"}, bytes: []byte("hello")},
		{name: "string flag", args: []string{"--string", "hello"}, json: `"hello"`},
		{name: "base64 flag", args: []string{"--base64", `{"n":1}`}, bytes: []byte(`{"n":1}`)},
		{name: "stdin json", args: []string{"-"}, stdin: "{\"a\": [1, 2]}\n", json: `{"a":[1,2]}`},
		{name: "stdin bytes", args: []string{"-"}, stdin: "\x00\x01\xff", bytes: []byte("\x00\x01\xff")},
		{name: "stdin without dash", stdin: "true", json: `true`},
		{name: "headers", args: []string{"--header", "a=1", "--header", "b=x=y", "7"}, json: `7`,
			wantHeader: map[string]string{"a": "1", "b": "x=y"}},
	}
	for i, tc := range cases {
		queue := "body" + string(rune('a'+i))
		args := append([]string{"send", queue}, tc.args...)
		r := courierCmd(t.Context(), t, url, strings.NewReader(tc.stdin), args...)
		if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || len(r.stdout) < 2 {
			t.Errorf("%s: send = %+v, want exit 0 and an id", tc.name, r)
			continue
		}
		m := recvOne(t, url, queue)
		if id := strings.TrimSpace(r.stdout); m.ID != id {
			t.Errorf("%s: send printed %s, received %s", tc.name, id, m.ID)
		}
		switch {
		case tc.bytes != nil:
			got, err := base64.StdEncoding.DecodeString(deref(m.BodyBase64))
			if m.Body != nil || err != nil || !bytes.Equal(got, tc.bytes) {
				t.Errorf("%s: received body %s / base64 %v, want bytes %q", tc.name, m.Body, deref(m.BodyBase64), tc.bytes)
			}
		case m.BodyBase64 != nil || compact(t, m.Body) != tc.json:
			t.Errorf("%s: received body %s / base64 %v, want JSON %s", tc.name, m.Body, deref(m.BodyBase64), tc.json)
		}
		for k, v := range tc.wantHeader {
			if m.Headers[k] != v {
				t.Errorf("%s: header %s = %q, want %q", tc.name, k, m.Headers[k], v)
			}
		}
	}
}

func TestSendOptions(t *testing.T) {
	t.Parallel()
	url := setup(t)
	var first courier.SendResult
	decode(t, ok(t, url, "send", "opts", "--json", "--dedup-key", "k1", "--group", "g", "--priority", "9", `"x"`), &first)
	second := strings.TrimSpace(ok(t, url, "send", "opts", "--dedup-key", "k1", `"x"`))
	if first.ID == "" || second != first.ID {
		t.Errorf("sends with one dedup key printed %q and %q, want one id", first.ID, second)
	}
	ok(t, url, "send", "opts", "--delay", "1h", `"later"`)
	var q courier.Queue
	decode(t, ok(t, url, "queue", "get", "opts", "--json"), &q)
	if q.Stats.Ready != 1 || q.Stats.Delayed != 1 {
		t.Errorf("after a plain and a delayed send, stats = %+v", q.Stats)
	}
	m := recvOne(t, url, "opts")
	if m.ID != first.ID || m.Group != "g" || m.Priority != 9 {
		t.Errorf("received %+v", m)
	}
}

func recvOne(t *testing.T, url, queue string) courier.Message {
	t.Helper()
	var rr courier.ReceiveResult
	decode(t, ok(t, url, "recv", queue, "--json"), &rr)
	if len(rr.Messages) != 1 {
		t.Fatalf("recv %s = %d messages, want 1", queue, len(rr.Messages))
	}
	return rr.Messages[0]
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Errorf("body %q is not JSON: %v", raw, err)
	}
	return b.String()
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
