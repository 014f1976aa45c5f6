package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
)

// post sends a JSON body to the server and returns the status and answer.
func post(t *testing.T, s *server.Server, path string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

type hook struct {
	sig  string
	body []byte
}

// TestWebhookEndToEnd submits a task with a webhook over HTTP, completes it
// with a worker's ack, and sees the signed webhook arrive at a receiver on
// loopback, which the allow-list lets through.
func TestWebhookEndToEnd(t *testing.T) {
	t.Parallel()
	got := make(chan hook, 1)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- hook{r.Header.Get("Courier-Signature"), b}
	}))
	defer rc.Close()
	s, c := start(t, server.Config{WebhookAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	ctx := t.Context()

	status, ans := post(t, s, "/v1/queues/jobs/tasks", map[string]any{
		"body": map[string]int{"n": 1}, "notify": map[string]string{"url": rc.URL + "/hook", "secret": "k"}})
	if status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", status, ans)
	}
	var task courier.Task
	if err := json.Unmarshal(ans, &task); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Receive(ctx, "jobs", courier.ReceiveRequest{Max: 1})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %d messages, %v", len(msgs), err)
	}
	if status, ans := post(t, s, "/v1/queues/jobs/ack", map[string]any{"lease": msgs[0].Lease, "result": 42}); status/100 != 2 {
		t.Fatalf("ack: %d %s", status, ans)
	}
	var h hook
	select {
	case h = <-got:
	case <-time.After(10 * time.Second): // the dispatcher looks every second
		t.Fatal("no webhook within 10s")
	}
	if err := courier.VerifyWebhook("k", h.sig, h.body, time.Now(), 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var p courier.Task
	if err := json.Unmarshal(h.body, &p); err != nil || p.ID != task.ID || p.State != courier.TaskSucceeded || string(p.Result) != "42" {
		t.Fatalf("webhook body %s (%v), want task %s succeeded with 42", h.body, err, task.ID)
	}
}

// TestWebhookDeniedAtSubmit: without an allow-list, a notify URL at a
// loopback literal, in any notation, is refused with 400 at submit.
func TestWebhookDeniedAtSubmit(t *testing.T) {
	t.Parallel()
	s, _ := start(t, server.Config{})
	for _, u := range []string{"http://127.0.0.1:9/", "http://127.1/", "http://2130706433/", "http://[::1]/",
		"http://169.254.169.254/", "http://localhost/"} {
		status, ans := post(t, s, "/v1/queues/jobs/tasks", map[string]any{
			"body": 1, "notify": map[string]string{"url": u}})
		if status != http.StatusBadRequest || !bytes.Contains(ans, []byte("notify.url")) {
			t.Errorf("submit with notify %s: %d %s, want 400 about notify.url", u, status, ans)
		}
	}
}
