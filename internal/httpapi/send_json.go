package httpapi

// A fast path for decoding a send's request. A batch send carries up to
// 1,000 messages, and encoding/json spent about 1.7µs on each (it scans the
// whole text to find its end, scans it again to decode it, through
// reflection): a tenth of the CPU of an end-to-end batched round trip,
// client and server together.
//
// decodeFast reads the request in one pass, but only in plain form: the
// known keys spelled exactly, strings without escapes, integers, a header
// object of strings, any JSON value but null as body. Anything else — an
// escape, a null, an unknown, repeated or differently cased key, a number
// with a fraction — and it gives up, and decode uses encoding/json, which
// also words every error. So it never decides differently from
// encoding/json; FuzzDecodeSend checks exactly that.
//
// The reader below is the SDK's (receive_json.go) again: the SDK imports
// only the standard library, so it cannot share a package with the server.

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	courier "github.com/courierhq/courier"
)

// decodeFast decodes data into req, and reports whether it could; when it
// could not, req is unchanged.
func (req *sendRequest) decodeFast(data []byte) bool {
	r := jsonReader{b: data}
	var out sendRequest
	seen := 0
	if !r.byte('{') {
		return false
	}
	for !r.peek('}') {
		if seen != 0 && !r.byte(',') {
			return false
		}
		name, ok := r.strSpan()
		if !ok || !r.byte(':') {
			return false
		}
		f := 0
		if string(name) == `"messages"` {
			f, ok = fMessages, r.messages(&out.Messages)
		} else {
			f, ok = r.field(name, &out.NewMessage)
		}
		if !ok || seen&f != 0 {
			return false
		}
		seen |= f
	}
	if !r.byte('}') || !r.end() {
		return false
	}
	*req = out
	return true
}

// The fields of a message, for telling a repeated key.
const (
	fBody = 1 << iota
	fBodyBase64
	fHeaders
	fDelay
	fNotBefore
	fPriority
	fDedupKey
	fGroup
	fMessages
)

// messages reads an array of message objects; [] makes an empty list, as
// encoding/json does.
func (r *jsonReader) messages(out *[]courier.NewMessage) bool {
	if !r.byte('[') {
		return false
	}
	msgs := []courier.NewMessage{}
	for !r.peek(']') {
		if len(msgs) > 0 && !r.byte(',') {
			return false
		}
		var m courier.NewMessage
		if !r.message(&m) {
			return false
		}
		msgs = append(msgs, m)
	}
	*out = msgs
	return r.byte(']')
}

// message reads one message object into m.
func (r *jsonReader) message(m *courier.NewMessage) bool {
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
		f, ok := r.field(name, m)
		if !ok || seen&f != 0 {
			return false
		}
		seen |= f
	}
	return r.byte('}')
}

// field reads the value of the message field name (quoted) into m, and
// says which field it was; false for a key that is not a field.
func (r *jsonReader) field(name []byte, m *courier.NewMessage) (int, bool) {
	var ok bool
	switch string(name[1 : len(name)-1]) { // compared without a copy
	case "body":
		m.Body, ok = r.value()
		return fBody, ok
	case "body_base64":
		var s string
		if s, ok = r.str(); ok {
			m.BodyBase64 = &s
		}
		return fBodyBase64, ok
	case "headers":
		m.Headers, ok = r.headers()
		return fHeaders, ok
	case "delay":
		m.Delay, ok = r.str()
		return fDelay, ok
	case "not_before":
		var t time.Time
		if ok = r.time(&t); ok {
			m.NotBefore = &t
		}
		return fNotBefore, ok
	case "priority":
		m.Priority, ok = r.int()
		return fPriority, ok
	case "dedup_key":
		m.DedupKey, ok = r.str()
		return fDedupKey, ok
	case "group":
		m.Group, ok = r.str()
		return fGroup, ok
	}
	return 0, false
}

// jsonReader is JSON text being read from its start; every method skips
// the whitespace before what it reads, and reports false when what it
// finds is not what it can read.
type jsonReader struct {
	b []byte
	i int
}

func (r *jsonReader) skipSpace() {
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
func (r *jsonReader) peek(c byte) bool {
	r.skipSpace()
	return r.i < len(r.b) && r.b[r.i] == c
}

// byte reads the byte c.
func (r *jsonReader) byte(c byte) bool {
	if !r.peek(c) {
		return false
	}
	r.i++
	return true
}

// end reports whether only whitespace is left.
func (r *jsonReader) end() bool {
	r.skipSpace()
	return r.i == len(r.b)
}

// str reads a string that needs no unescaping: no backslash, no control
// character, valid UTF-8 (encoding/json would change invalid bytes).
func (r *jsonReader) str() (string, bool) {
	span, ok := r.strSpan()
	if !ok {
		return "", false
	}
	return string(span[1 : len(span)-1]), true
}

// strSpan reads a plain string (see str), returned with its quotes.
func (r *jsonReader) strSpan() ([]byte, bool) {
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
func (r *jsonReader) int() (int, bool) {
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
func (r *jsonReader) time(t *time.Time) bool {
	span, ok := r.strSpan()
	return ok && t.UnmarshalJSON(span) == nil
}

// headers reads an object of plain strings.
func (r *jsonReader) headers() (map[string]string, bool) {
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

// value reads any JSON value but null (encoding/json would keep the text
// "null") and returns a copy of its text: it finds the value's end by its
// brackets and strings, then checks the span with json.Valid.
func (r *jsonReader) value() (json.RawMessage, bool) {
	r.skipSpace()
	start, depth := r.i, 0
	for r.i < len(r.b) {
		switch c := r.b[r.i]; c {
		case '"':
			if !r.skipString() {
				return nil, false
			}
			if depth == 0 {
				return r.span(start)
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
func (r *jsonReader) skipString() bool {
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
func (r *jsonReader) span(start int) (json.RawMessage, bool) {
	v := r.b[start:r.i]
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t' || v[len(v)-1] == '\n' || v[len(v)-1] == '\r') {
		v = v[:len(v)-1]
	}
	if len(v) == 0 || string(v) == "null" || !json.Valid(v) {
		return nil, false
	}
	return append(json.RawMessage(nil), v...), true
}
