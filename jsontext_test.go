package courier

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// TestStrSpanEveryByte: with any one byte at any place of a long plain
// string, strSpan decides as a byte-by-byte reading would: plainASCII's
// eight-byte test misses no quote, backslash, control or non-ASCII byte.
func TestStrSpanEveryByte(t *testing.T) {
	t.Parallel()
	// reference is strSpan's rule, a byte at a time: the span to the first
	// quote, refused at a backslash or control byte, or if not UTF-8.
	reference := func(b []byte) ([]byte, bool) {
		for i := 1; i < len(b); i++ {
			switch c := b[i]; {
			case c == '"':
				return b[:i+1], utf8.Valid(b[:i+1])
			case c == '\\' || c < 0x20:
				return nil, false
			}
		}
		return nil, false
	}
	plain := []byte(`"` + "AbCd+/09xyz=-_.~AbCd+/09xyz=-_.~" + `"` + `,"x":"y"}`)
	for at := 1; at <= 33; at++ {
		for c := range 256 {
			b := bytes.Clone(plain)
			b[at] = byte(c)
			r := jsonText{b: b}
			got, ok := r.strSpan()
			want, wantOK := reference(b)
			if ok != wantOK || !bytes.Equal(got, want) || (ok && r.i != len(want)) {
				t.Fatalf("byte %#x at %d: strSpan = %q, %v (at %d); want %q, %v", c, at, got, ok, r.i, want, wantOK)
			}
		}
	}
}
