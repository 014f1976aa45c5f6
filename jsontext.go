package courier

// jsonText: the reader under the fast decoders of JSON that courier reads
// by the thousand — a receive's answer here (receive_json.go), a send's
// request in the server (internal/httpapi/send_json.go). The server's copy
// is generated from this file (go generate ./internal/httpapi), because the
// SDK imports only the standard library and so cannot share a package with
// the server; a test there fails when the copy differs.

import (
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

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

// object reads an object, each key's value by field, which is given the
// key as read (quoted, no escapes) and says which bit the key is, for
// telling a repeated key (0: unknown), and whether it read the value.
func (r *jsonText) object(field func(name []byte) (bit int, ok bool)) bool {
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
		bit, ok := field(name)
		if !ok || bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	return r.byte('}')
}

// array reads an array, each element by elem.
func (r *jsonText) array(elem func() bool) bool {
	if !r.byte('[') {
		return false
	}
	for first := true; !r.peek(']'); first = false {
		if !first && !r.byte(',') {
			return false
		}
		if !elem() {
			return false
		}
	}
	return r.byte(']')
}

// end reports whether only whitespace is left.
func (r *jsonText) end() bool {
	r.skipSpace()
	return r.i == len(r.b)
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
	for r.i += 1 + plainASCII(r.b[r.i+1:]); r.i < len(r.b); r.i++ {
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

// plainASCII returns the length of b's head of printable ASCII other than
// '"' and '\\', to a multiple of 8 bytes: it tests 8 bytes at a time
// (base64 bodies, ids and leases are long runs of them; a body of 172
// characters took a third of the time), and leaves the rest to the
// caller's loop, byte by byte.
func plainASCII(b []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	n := 0
	for ; len(b)-n >= 8; n += 8 {
		w := binary.LittleEndian.Uint64(b[n:])
		q := w ^ ('"' * ones)
		e := w ^ ('\\' * ones)
		// A byte below 0x20, a quote or backslash (a zero lane of q or e),
		// or one with its high bit set sets the high bit of its lane (a
		// borrow may set later lanes' too: the loop only stops early).
		if ((w-0x20*ones)|(q-ones)|(e-ones)|w)&highs != 0 {
			break
		}
	}
	return n
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
//
// A value nested deeper than maxValueDepth is declined: encoding/json
// refuses a text nested beyond 10,000 levels, counting those around the
// value, which json.Valid on the value alone cannot see.
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
			if depth++; depth > maxValueDepth {
				return nil, false
			}
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

// maxValueDepth bounds the nesting of a value read by value: far below
// encoding/json's limit, whatever holds the value, and far above what
// messages carry.
const maxValueDepth = 1000

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
