package httpapi

import "testing"

// TestInvalidUTF8Refused: JSON text must be UTF-8. A body with other bytes
// is refused whole, rather than stored and later returned as invalid JSON
// (raw bodies) or quietly altered (headers, decoded as U+FFFD).
func TestInvalidUTF8Refused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for name, body := range map[string]string{
		"in a JSON body":     "{\"body\":\"\xff\xfe\"}",
		"in a header value":  "{\"body\":1,\"headers\":{\"k\":\"\xff\"}}",
		"in a header name":   "{\"body\":1,\"headers\":{\"\xc3\":\"v\"}}",
		"in a batch message": "{\"messages\":[{\"body\":1},{\"body\":\"\xed\xa0\x80\"}]}",
	} {
		w := f.do("POST", "/v1/queues/q/messages", body)
		if w.Code != 400 || errorOf(t, w).Code != "invalid_argument" {
			t.Errorf("%s: %d %s; want 400 invalid_argument", name, w.Code, w.Body)
		}
	}
	if names := f.queueNames(); len(names) != 0 {
		t.Errorf("refused sends created queues %v", names)
	}
}
