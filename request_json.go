package courier

import "strconv"

// Requests the Worker sends by the thousand are written without
// encoding/json when every string in them is plain: encoding a receive
// that carries a hundred acks was 2.5% of a burn-down's CPU (w2). The
// bytes are encoding/json's (Client.call adds the newline its Encoder
// writes); anything else (a result to carry, a string to escape) goes to
// encoding/json.

// jsonAppender is a request that can append its own JSON object; false if
// it cannot, and encoding/json should.
type jsonAppender interface {
	appendJSON(b []byte) ([]byte, bool)
}

func (r ReceiveRequest) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, '{')
	n := len(b)
	if r.Max != 0 {
		b = strconv.AppendInt(append(b, `"max":`...), int64(r.Max), 10)
	}
	ok := true
	b, ok = appendPlainField(b, n, "wait", r.Wait, ok)
	b, ok = appendPlainField(b, n, "visibility", r.Visibility, ok)
	if r.Ack != nil && ok {
		if len(b) > n {
			b = append(b, ',')
		}
		b, ok = r.Ack.appendJSON(append(b, `"ack":`...))
	}
	return append(b, '}'), ok
}

func (a AckRequest) appendJSON(b []byte) ([]byte, bool) {
	if len(a.Result) > 0 || len(a.Results) > 0 {
		return b, false // encoding/json checks and compacts raw results
	}
	b = append(b, '{')
	n := len(b)
	b, ok := appendPlainField(b, n, "lease", a.Lease, true)
	if len(a.Leases) > 0 && ok {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(b, `"leases":[`...)
		for i, l := range a.Leases {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendPlain(b, l); !ok {
				break
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), ok
}

// appendPlainField appends `"name":"v"` unless v is empty (omitempty), with
// a comma if the object begun at n has a field already; ok is carried over
// (false: the caller gives up on the whole).
func appendPlainField(b []byte, n int, name, v string, ok bool) ([]byte, bool) {
	if !ok || v == "" {
		return b, ok
	}
	if len(b) > n {
		b = append(b, ',')
	}
	b = append(append(append(b, '"'), name...), `":`...)
	return appendPlain(b, v)
}

// appendPlain appends s as a JSON string if it is plain: printable ASCII
// without a quote or backslash, which encoding/json writes as it is.
func appendPlain(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return b, false
		}
	}
	return append(append(append(b, '"'), s...), '"'), true
}
