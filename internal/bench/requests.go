package bench

import (
	"net/http"
	"strings"
	"sync/atomic"
)

// requestCounter counts a run's requests by what they do, for
// extra.requests: the round trips a workload cost, which the per-second
// figures hide (a receive that carries acks is one request for two
// verbs; a Worker under a light load sends fewer acks of their own).
type requestCounter struct {
	next http.RoundTripper
	n    [len(requestKinds)]atomic.Int64
}

// maxIdleConns is the SDK client's own number of idle connections kept.
const maxIdleConns = 256

// requestKinds name what a request does: the last element of its path on
// a POST to a queue (send is "messages"), or "task" for a read of a task
// (a get, or an Await's wait), and "other" for the rest (queue create,
// stats, health).
var requestKinds = [...]string{"messages", "receive", "ack", "nack", "extend", "tasks", "task", "other"}

// kindOf is the index in requestKinds of what r does.
func kindOf(r *http.Request) int {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/v1/queues/"):
		verb := p[strings.LastIndexByte(p, '/')+1:]
		for i, k := range requestKinds[:6] {
			if verb == k {
				return i
			}
		}
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/v1/tasks/"):
		return 6
	}
	return len(requestKinds) - 1
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n[kindOf(r)].Add(1)
	return c.next.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport under the counter.
func (c *requestCounter) CloseIdleConnections() {
	if ci, ok := c.next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// note puts the counts in extra.requests, by kind ("messages" is the
// sends), leaving out kinds the run did not use.
func (c *requestCounter) note(extra map[string]any) {
	counts := map[string]int64{}
	for i, k := range requestKinds {
		if v := c.n[i].Load(); v > 0 {
			counts[k] = v
		}
	}
	extra["requests"] = counts
}
