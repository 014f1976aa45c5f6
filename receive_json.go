package courier

// A fast path for decoding the answer of a receive. A consumer decodes up to
// 1,000 messages per answer, and encoding/json spends about 3.5µs on each
// (it scans the whole text once to find its end, then again to decode it,
// through reflection): in an end-to-end benchmark that was a sixth of all
// the CPU, client and server together.
//
// decodeReceive reads the answer in one pass, but only in the plain form the
// server writes: the known fields, strings without escapes, integers, a
// header object of strings, any JSON value as body. Anything else — an
// escape, a null, an unknown or repeated key, a number with a fraction —
// and it gives up, and the caller decodes with encoding/json as before. So
// it never decides differently from encoding/json; FuzzDecodeReceive checks
// exactly that.

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// decodeReceive decodes data, a receive's answer, into res, and reports
// whether it could; when it could not, res is unchanged.
func decodeReceive(data []byte, res *ReceiveResult) bool {
	r := jsonText{b: data}
	if !r.byte('{') || !r.key("messages") || !r.byte('[') {
		return false
	}
	msgs := []Message{}
	if !r.peek(']') {
		for {
			var m Message
			if !r.message(&m) {
				return false
			}
			msgs = append(msgs, m)
			if r.peek(']') {
				break
			}
			if !r.byte(',') {
				return false
			}
		}
	}
	if !r.byte(']') || !r.byte('}') || !r.end() {
		return false
	}
	res.Messages = msgs
	return true
}

// The fields of a message, for telling a repeated key.
const (
	fID = 1 << iota
	fBody
	fBodyBase64
	fHeaders
	fPriority
	fGroup
	fAttempt
	fSentAt
	fLease
	fLeaseExpiresAt
)

// message reads one message object into m.
func (r *jsonText) message(m *Message) bool {
	if !r.byte('{') {
		return false
	}
	seen := 0
	for !r.peek('}') {
		if seen != 0 && !r.byte(',') {
			return false
		}
		name, ok := r.strSpan()
		if !ok || !r.byte(':') {
			return false
		}
		f := 0
		switch string(name[1 : len(name)-1]) { // compared without a copy
		case "id":
			f = fID
			m.ID, ok = r.str()
		case "body":
			f = fBody
			m.Body, ok = r.value()
		case "body_base64":
			f = fBodyBase64
			var s string
			if s, ok = r.str(); ok {
				m.BodyBase64 = &s
			}
		case "headers":
			f = fHeaders
			m.Headers, ok = r.headers()
		case "priority":
			f = fPriority
			m.Priority, ok = r.int()
		case "group":
			f = fGroup
			m.Group, ok = r.str()
		case "attempt":
			f = fAttempt
			m.Attempt, ok = r.int()
		case "sent_at":
			f = fSentAt
			ok = r.time(&m.SentAt)
		case "lease":
			f = fLease
			m.Lease, ok = r.str()
		case "lease_expires_at":
			f = fLeaseExpiresAt
			ok = r.time(&m.LeaseExpiresAt)
		}
		if !ok || f == 0 || seen&f != 0 {
			return false
		}
		seen |= f
	}
	return r.byte('}')
}

// jsonText is JSON text being read from its start; every method skips the
// whitespace before what it reads, and reports false when what it finds is
// not what it can read.
type jsonText struct {
	b []byte
	i int
}

func (r *jsonText) skipSpace() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek reports whether the next byte is c, without reading it.
func (r *jsonText) peek(c byte) bool {
	r.skipSpace()
	return r.i < len(r.b) && r.b[r.i] == c
}

// byte reads the byte c.
func (r *jsonText) byte(c byte) bool {
	if !r.peek(c) {
		return false
	}
	r.i++
	return true
}

// end reports whether only whitespace is left.
func (r *jsonText) end() bool {
	r.skipSpace()
	return r.i == len(r.b)
}

// key reads the object key name and its colon.
func (r *jsonText) key(name string) bool {
	s, ok := r.str()
	return ok && s == name && r.byte(':')
}

// str reads a string that needs no unescaping: no backslash, no control
// character, valid UTF-8 (encoding/json would change invalid bytes).
func (r *jsonText) str() (string, bool) {
	span, ok := r.strSpan()
	if !ok {
		return "", false
	}
	return string(span[1 : len(span)-1]), true
}

// strSpan reads a plain string (see str), returned with its quotes.
func (r *jsonText) strSpan() ([]byte, bool) {
	if !r.peek('"') {
		return nil, false
	}
	start := r.i
	ascii := true
	for r.i++; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			r.i++
			span := r.b[start:r.i]
			return span, ascii || utf8.Valid(span)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// maxIntDigits is the most digits that always fit an int.
const maxIntDigits = strconv.IntSize / 32 * 9

// int reads an integer without fraction or exponent, of at most
// maxIntDigits digits, as encoding/json would into an int.
func (r *jsonText) int() (int, bool) {
	r.skipSpace()
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	digits := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	n := r.i - digits
	if n == 0 || n > maxIntDigits || (n > 1 && r.b[digits] == '0') {
		return 0, false // none, too many for this fast path, or a leading zero
	}
	if r.i < len(r.b) {
		switch r.b[r.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	v := 0
	for _, c := range r.b[digits:r.i] {
		v = v*10 + int(c-'0') // at most maxIntDigits: no overflow
	}
	if start != digits {
		v = -v
	}
	return v, true
}

// time reads a string into t as encoding/json does: by t's UnmarshalJSON.
func (r *jsonText) time(t *time.Time) bool {
	span, ok := r.strSpan()
	return ok && t.UnmarshalJSON(span) == nil
}

// headers reads an object of plain strings.
func (r *jsonText) headers() (map[string]string, bool) {
	if !r.byte('{') {
		return nil, false
	}
	h := map[string]string{}
	for !r.peek('}') {
		if len(h) > 0 && !r.byte(',') {
			return nil, false
		}
		k, ok := r.str()
		if !ok || !r.byte(':') {
			return nil, false
		}
		v, ok := r.str()
		if _, dup := h[k]; !ok || dup {
			return nil, false
		}
		h[k] = v
	}
	return h, r.byte('}')
}

// value reads any JSON value but null (encoding/json gives a RawMessage
// "null" or nothing, depending on the field) and returns a copy of its
// text: it finds the value's end by its brackets and strings, then checks
// the whole span with json.Valid.
func (r *jsonText) value() (json.RawMessage, bool) {
	r.skipSpace()
	start, depth := r.i, 0
	for r.i < len(r.b) {
		switch c := r.b[r.i]; c {
		case '"':
			if !r.skipString() {
				return nil, false
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 { // the end of what holds this value
				return r.span(start)
			}
			depth--
		case ',':
			if depth == 0 {
				return r.span(start)
			}
		}
		r.i++
		if depth == 0 && (r.b[r.i-1] == '}' || r.b[r.i-1] == ']') {
			return r.span(start)
		}
	}
	return nil, false
}

// skipString moves past a string at r.i, escapes and all.
func (r *jsonText) skipString() bool {
	for r.i++; r.i < len(r.b); r.i++ {
		switch r.b[r.i] {
		case '\\':
			r.i++
		case '"':
			r.i++
			return true
		}
	}
	return false
}

// span returns a copy of b[start:r.i], trimmed, if it is one valid JSON
// value other than null.
func (r *jsonText) span(start int) (json.RawMessage, bool) {
	v := trimSpace(r.b[start:r.i])
	if len(v) == 0 || string(v) == "null" || !json.Valid(v) {
		return nil, false
	}
	return append(json.RawMessage(nil), v...), true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
