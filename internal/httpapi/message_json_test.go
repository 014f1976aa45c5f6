package httpapi

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/store"
)

// encodeMessageStd is what encodeMessage replaces: the message marshalled
// by encoding/json as courier.Message, a JSON body spliced in last.
func encodeMessageStd(m *store.Message) ([]byte, error) {
	wm := courier.Message{
		ID: m.ID, Headers: m.Headers, Priority: m.Priority, Group: m.Group, Attempt: m.Attempt,
		SentAt: m.SentAt.UTC(), Lease: m.Lease, LeaseExpiresAt: m.LeaseExpiresAt.UTC(),
	}
	if wm.Headers == nil {
		wm.Headers = map[string]string{}
	}
	raw := m.Kind == store.BodyJSON && json.Valid(m.Body)
	if !raw {
		s := base64.StdEncoding.EncodeToString(m.Body)
		wm.BodyBase64 = &s
	}
	b, err := marshal(wm)
	if err != nil || !raw {
		return b, err
	}
	return append(append(b[:len(b)-1], `,"body":`...), append(m.Body, '}')...), nil
}

func encodeMessageHand(m *store.Message) ([]byte, error) {
	var buf bytes.Buffer
	w := bufio.NewWriterSize(&buf, 64) // small: the message outgrows the buffer
	err := encodeMessage(w, m)
	w.Flush()
	return buf.Bytes(), err
}

func checkEncodeMessage(t *testing.T, m *store.Message) {
	t.Helper()
	want, werr := encodeMessageStd(m)
	got, gerr := encodeMessageHand(m)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("encodeMessage(%+v) error %v; encoding/json's %v", m, gerr, werr)
	}
	if werr == nil && !bytes.Equal(got, want) {
		t.Fatalf("encodeMessage(%+v)\n = %s\nencoding/json writes\n   %s", m, got, want)
	}
}

func TestEncodeMessageMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 4, 16, 0, 0, 123456789, time.FixedZone("x", 3600))
	for _, m := range []store.Message{
		{ID: "1HTSM8PJYJ194", Body: []byte(`{"a": [1, "<&>"]}`), Kind: store.BodyJSON, SentAt: at, Lease: "L", LeaseExpiresAt: at},
		{ID: "b", Body: []byte{0, 1, 0xff}, Kind: store.BodyBinary, Headers: map[string]string{"z": "1", "a": "é\n\"\\<>&\u2028", "\x01": "\xff"},
			Priority: -100, Group: "g\t", Attempt: 7, SentAt: at, Lease: "GOs0", LeaseExpiresAt: at.Add(time.Hour)},
		{ID: "c", Body: []byte(`not json`), Kind: store.BodyJSON},
		{ID: "d", Body: []byte(`null`), Kind: store.BodyJSON, Headers: map[string]string{}},
		{ID: "e", SentAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, // refused by both
	} {
		checkEncodeMessage(t, &m)
	}
}

func FuzzEncodeMessage(f *testing.F) {
	f.Add("id", []byte(`{"x":1}`), true, "k", "v", 3, "g", 1, int64(1767225600123456789), "lease")
	f.Add("\u2028", []byte{0xff, 0}, false, "<", "\x00", -5, "\xff", 0, int64(-62135596800000000000/1e9), "")
	f.Fuzz(func(t *testing.T, id string, body []byte, json bool, hk, hv string, prio int, group string, attempt int, unixNano int64, lease string) {
		kind := store.BodyBinary
		if json {
			kind = store.BodyJSON
		}
		at := time.Unix(0, unixNano)
		checkEncodeMessage(t, &store.Message{ID: id, Body: body, Kind: kind, Headers: map[string]string{hk: hv, "k2": hk},
			Priority: prio, Group: group, Attempt: attempt, SentAt: at, Lease: lease, LeaseExpiresAt: at.Add(time.Second)})
	})
}
