package httpapi

// The JSON of a received message, written by hand. A receive answers up to
// 1,000 messages, and encoding/json (reflection, an encoder per message)
// was a twentieth of the server's CPU in a batched round trip. The output
// is byte for byte what encoding/json writes for courier.Message (with
// SetEscapeHTML(false)), which TestEncodeMessageMatchesEncodingJSON and
// FuzzEncodeMessage check; a string that needs escaping, or a time
// encoding/json would refuse, goes through encoding/json itself.

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// encodeMessage writes m as a courier.Message. A JSON body is spliced in as
// is, last. json.Valid guards the answer: a body stored as JSON by some
// other path that is not JSON goes out as base64 rather than breaking the
// whole answer.
func encodeMessage(w *bufio.Writer, m *store.Message) error {
	raw := m.Kind == store.BodyJSON && json.Valid(m.Body)
	b := w.AvailableBuffer()
	b = append(b, `{"id":`...)
	b = appendString(b, m.ID)
	if !raw {
		b = append(b, `,"body_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, m.Body)
		b = append(b, '"')
	}
	b = append(b, `,"headers":`...)
	b = appendHeaders(b, m.Headers)
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(m.Priority), 10)
	b = append(b, `,"group":`...)
	b = appendString(b, m.Group)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(m.Attempt), 10)
	b = append(b, `,"sent_at":`...)
	b, err := appendTime(b, m.SentAt)
	if err != nil {
		return err
	}
	b = append(b, `,"lease":`...)
	b = appendString(b, m.Lease)
	b = append(b, `,"lease_expires_at":`...)
	if b, err = appendTime(b, m.LeaseExpiresAt); err != nil {
		return err
	}
	if raw {
		b = append(b, `,"body":`...)
		b = append(b, m.Body...)
	}
	b = append(b, '}')
	_, _ = w.Write(b) // write errors stick in w and show at Flush
	return nil
}

// appendString appends s as a JSON string. Printable ASCII other than
// quote and backslash is written as it is; anything else is left to
// encoding/json, whose escapes (control characters, invalid UTF-8,
// U+2028/9) are then exactly its own.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			q, _ := marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendHeaders appends h as a JSON object, keys sorted as encoding/json
// sorts them; nil is written {} (a message always shows its headers).
func appendHeaders(b []byte, h map[string]string) []byte {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, h[k])
	}
	return append(b, '}')
}

// appendTime appends t in UTC as time.Time.MarshalJSON does, with its
// refusal of years outside 0…9999.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return b, fmt.Errorf("encode message: time %v: year outside [0,9999]", t)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}
