package courier

// decodeSendBatch is the fast path for the answer of a batch send,
// {"messages":[{"id":"…"},…]}, as decodeReceive is for a receive's (see
// receive_json.go): encoding/json spent a twentieth of a batched round
// trip's CPU on these answers. It reads only the server's plain form, and
// declines anything else, leaving it to encoding/json; FuzzDecodeSendBatch
// checks it never decides differently. When it declines, res is unchanged.
func decodeSendBatch(data []byte, res *SendBatchResult) bool {
	r := jsonText{b: data}
	var sent []SendResult
	ok := r.object(func(name []byte) (int, bool) {
		if string(name) != `"messages"` {
			return 0, false
		}
		sent = []SendResult{} // [] is an empty list, as encoding/json makes it
		return 1, r.array(func() bool {
			var s SendResult
			ok := r.object(func(name []byte) (int, bool) {
				if string(name) != `"id"` {
					return 0, false
				}
				var ok bool
				s.ID, ok = r.str()
				return 1, ok
			})
			sent = append(sent, s)
			return ok
		})
	})
	if !ok || sent == nil || !r.end() {
		return false
	}
	res.Messages = sent
	return true
}
