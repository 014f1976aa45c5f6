package courier

import "encoding/json"

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

// decodeReceive decodes data, a receive's answer, into res, and reports
// whether it could; when it could not, res is unchanged. The first message
// makes room for room of them.
func decodeReceive(data []byte, res *ReceiveResult, room int) bool {
	r := jsonText{b: data}
	var msgs []Message
	var ack *AckResult
	ok := r.object(func(name []byte) (int, bool) {
		switch string(name) {
		case `"messages"`:
			msgs = []Message{} // [] is an empty list, as encoding/json makes it
			return 1, r.array(func() bool {
				if cap(msgs) == 0 {
					msgs = make([]Message, 0, max(room, 1))
				}
				var m Message
				ok := r.message(&m)
				msgs = append(msgs, m)
				return ok
			})
		case `"ack"`:
			// A few counts and failures: encoding/json reads them as it
			// would in the whole answer.
			v, ok := r.value()
			return 2, ok && json.Unmarshal(v, &ack) == nil
		}
		return 0, false
	})
	if !ok || msgs == nil || !r.end() {
		return false // also without "messages": encoding/json would leave it nil
	}
	res.Messages, res.Ack = msgs, ack
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
	return r.object(func(name []byte) (int, bool) {
		var (
			f  int
			ok bool
		)
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
		return f, ok
	})
}
