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
			ok := r.sendResult(&s)
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

// decodeSend is the same fast path for the answer of a single send,
// {"id":"…"}: the one answer of every send of one message, where
// encoding/json's decoder was 1.5% of the CPU of a round trip of one
// request per message. FuzzDecodeSend checks it as FuzzDecodeSendBatch
// does decodeSendBatch.
func decodeSend(data []byte, res *SendResult) bool {
	r := jsonText{b: data}
	var s SendResult
	if !r.sendResult(&s) || !r.end() {
		return false
	}
	*res = s
	return true
}

// sendResult reads {"id":"…"}, the server's form of a SendResult.
func (r *jsonText) sendResult(s *SendResult) bool {
	return r.object(func(name []byte) (int, bool) {
		if string(name) != `"id"` {
			return 0, false
		}
		var ok bool
		s.ID, ok = r.str()
		return 1, ok
	})
}
