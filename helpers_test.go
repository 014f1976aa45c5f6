package courier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
)

// setupURL starts a real server like setup, and returns its URL too.
func setupURL(t *testing.T) (*courier.Client, string) {
	t.Helper()
	s, err := server.Start(t.Context(), server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("stop server: %v", err)
		}
	})
	c := courier.NewClient(s.URL())
	t.Cleanup(c.CloseIdleConnections)
	return c, s.URL()
}

// watchedClient is a client of url whose requests are reported to onReq
// (method and path) before they are sent.
func watchedClient(t *testing.T, url string, onReq func(r *http.Request)) *courier.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		onReq(r)
		return tr.RoundTrip(r)
	})}
	return courier.NewClient(url, courier.WithHTTPClient(hc))
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func sendN(t *testing.T, c *courier.Client, queue string, n int, headers map[string]string) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		id, err := c.Send(t.Context(), queue, courier.NewMessage{Body: json.RawMessage(fmt.Sprint(i)), Headers: headers})
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		ids[i] = id
	}
	return ids
}

func stats(t *testing.T, c *courier.Client, queue string) courier.QueueStats {
	t.Helper()
	q, err := c.GetQueue(t.Context(), queue)
	if err != nil {
		t.Fatalf("GetQueue %s: %v", queue, err)
	}
	return q.Stats
}

// nackLog records the nacks a fake server, or a client's transport, sees.
type nackLog struct {
	mu   sync.Mutex
	reqs []courier.NackRequest
}

// add decodes a nack's body and records it.
func (l *nackLog) add(t *testing.T, body []byte) courier.NackRequest {
	var req courier.NackRequest
	if err := json.Unmarshal(body, &req); err != nil {
		t.Errorf("a nack: %s: %v", body, err)
	}
	l.mu.Lock()
	l.reqs = append(l.reqs, req)
	l.mu.Unlock()
	return req
}

func (l *nackLog) all() []courier.NackRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

// releaseUnknown is how a server from before "release" refuses a nack
// with it.
const releaseUnknown = `{"error":{"code":"invalid_argument","message":"request body: json: unknown field \"release\""}}`
