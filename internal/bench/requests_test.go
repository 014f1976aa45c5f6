package bench

import (
	"net/http/httptest"
	"testing"
)

// TestKindOf: requests are counted by what they do.
func TestKindOf(t *testing.T) {
	for _, c := range []struct{ method, path, want string }{
		{"POST", "/v1/queues/q/messages", "messages"},
		{"POST", "/v1/queues/q/receive", "receive"},
		{"POST", "/v1/queues/a%2Fb/ack", "ack"},
		{"POST", "/v1/queues/q/nack", "nack"},
		{"POST", "/v1/queues/q/extend", "extend"},
		{"POST", "/v1/queues/q/tasks", "tasks"},
		{"GET", "/v1/tasks/0000000000000001", "task"},
		{"GET", "/v1/queues/q", "other"},
		{"PUT", "/v1/queues/q", "other"},
		{"POST", "/v1/queues/q/purge", "other"},
		{"GET", "/healthz", "other"},
	} {
		if got := requestKinds[kindOf(httptest.NewRequest(c.method, c.path, nil))]; got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, got, c.want)
		}
	}
}
