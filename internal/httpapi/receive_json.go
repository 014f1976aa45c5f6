package httpapi

// A fast path for decoding a receive's request, as send_json.go's for a
// send: the SDK's Worker sends its acks with each receive (up to 1,000
// leases), and encoding/json took 2% of a job burn-down's CPU decoding
// them. The same rules: only the plain form — max, wait, visibility, and
// an ack of a lease or leases without results — is read in one pass;
// anything else (results, an escape, a null, a repeated or unknown key)
// is declined and left to encoding/json. An ack's own request (a consumer
// that acks each message alone) is read the same way. FuzzDecodeReceiveFast
// and FuzzDecodeAckFast check that the two never decide differently.

import courier "github.com/courierhq/courier"

// receiveRequest is a receive's request body.
type receiveRequest struct {
	courier.ReceiveRequest
}

// The fields of a receive and of its ack, for telling a repeated key.
const (
	fMax = 1 << iota
	fWait
	fVisibility
	fAck
)

// decodeFast decodes data into req, and reports whether it could; when it
// could not, req is unchanged.
func (req *receiveRequest) decodeFast(data []byte) bool {
	return decodeWhole(data, req, func(r *jsonText, out *receiveRequest, name []byte) (int, bool) {
		var ok bool
		switch string(name[1 : len(name)-1]) { // compared without a copy
		case "max":
			out.Max, ok = r.int()
			return fMax, ok
		case "wait":
			out.Wait, ok = r.str()
			return fWait, ok
		case "visibility":
			out.Visibility, ok = r.str()
			return fVisibility, ok
		case "ack":
			out.Ack = &courier.AckRequest{}
			return fAck, r.object(func(name []byte) (int, bool) { return r.ackField(name, out.Ack) })
		}
		return 0, false
	})
}

// ackRequest is an ack's request body.
type ackRequest struct {
	courier.AckRequest
}

// The fields of an ack, for telling a repeated key.
const (
	fLease = 1 << iota
	fLeases
)

// decodeFast decodes data into req, and reports whether it could; when it
// could not, req is unchanged. Acks without results are read; with
// results, encoding/json reads them.
func (req *ackRequest) decodeFast(data []byte) bool {
	return decodeWhole(data, req, func(r *jsonText, out *ackRequest, name []byte) (int, bool) {
		return r.ackField(name, &out.AckRequest)
	})
}

// ackField reads the value of an ack's field name (quoted, as it came)
// into out: lease or leases; result and results are declined.
func (r *jsonText) ackField(name []byte, out *courier.AckRequest) (int, bool) {
	var ok bool
	switch string(name) {
	case `"lease"`:
		out.Lease, ok = r.str()
		return fLease, ok
	case `"leases"`:
		return fLeases, r.strings(&out.Leases)
	}
	return 0, false
}

// strings reads an array of strings; [] makes an empty list, as
// encoding/json does.
func (r *jsonText) strings(out *[]string) bool {
	list := []string{}
	ok := r.array(func() bool {
		s, ok := r.str()
		list = append(list, s)
		return ok
	})
	*out = list
	return ok
}
