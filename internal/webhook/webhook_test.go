package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/webhook"
)

const secret = "topsecret-value"

func ok(code int) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(code) }
}

// await waits for c, failing the test after a generous real-time bound
// (a hung test is worse than a failed one; nothing here sleeps).
func await[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestDelivered(t *testing.T) {
	t.Parallel()
	d, src, clk := setup(t, loopback, webhook.Options{})
	rc := newReceiver(t, ok(http.StatusNoContent))
	src.add("t1", rc.URL+"/hook?token=abc", secret)

	if n := d.RunOnce(t.Context()); n != 1 {
		t.Fatalf("RunOnce made %d attempts, want 1", n)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	h, body := reqs[0].header, reqs[0].body
	if got := h.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := h.Get("Courier-Task-Id"); got != "t1" {
		t.Errorf("Courier-Task-Id = %q, want t1", got)
	}
	sig := h.Get("Courier-Signature")
	if !strings.HasPrefix(sig, "t="+strconv.FormatInt(t0.Unix(), 10)+",v1=") {
		t.Errorf("Courier-Signature = %q, want t=%d,v1=…", sig, t0.Unix())
	}
	if err := courier.VerifyWebhook(secret, sig, body, clk.Now(), 0); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if strings.Contains(string(body), secret) || strings.Contains(string(body), "notify") {
		t.Errorf("body leaks the notify settings: %s", body)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, body)
	}
	for k, want := range map[string]any{"id": "t1", "queue": "jobs", "state": "succeeded", "attempt": 1.0,
		"progress": 1.0, "result": map[string]any{"answer": 42.0}, "finished_at": "2026-01-01T00:00:00Z"} {
		if got, _ := json.Marshal(p[k]); string(got) != string(must(json.Marshal(want))) {
			t.Errorf("payload %s = %s, want %v", k, got, want)
		}
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if _, ok := p[k]; !ok {
			t.Errorf("payload has no %s: %s", k, body)
		}
	}

	tk := src.task(t, "t1")
	if !tk.Webhook.Delivered || tk.Webhook.Pending || len(tk.Webhook.Attempts) != 1 {
		t.Fatalf("webhook status %+v, want delivered after 1 attempt", tk.Webhook)
	}
	if a := tk.Webhook.Attempts[0]; a.Status != 204 || a.Error != "" || !a.At.Equal(t0) {
		t.Errorf("attempt %+v, want 204 at %v", a, t0)
	}
	clk.Advance(time.Hour)
	if n := d.RunOnce(t.Context()); n != 0 || len(rc.requests()) != 1 {
		t.Fatalf("after delivery: RunOnce made %d attempts, receiver has %d requests; want 0 and 1", n, len(rc.requests()))
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestNoSecretNoSignature(t *testing.T) {
	t.Parallel()
	d, src, _ := setup(t, loopback, webhook.Options{})
	rc := newReceiver(t, ok(200))
	src.add("t1", rc.URL, "")
	d.RunOnce(t.Context())
	reqs := rc.requests()
	if len(reqs) != 1 || reqs[0].header.Get("Courier-Signature") != "" {
		t.Fatalf("got %d requests (signature %q), want 1 without signature", len(reqs), reqs[0].header.Get("Courier-Signature"))
	}
}

func TestRetriedAfterFailure(t *testing.T) {
	t.Parallel()
	d, src, clk := setup(t, loopback, webhook.Options{})
	var calls atomic.Int32
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		if calls.Add(1) == 1 {
			http.Error(w, strings.Repeat("x", 1<<20), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	src.add("t1", rc.URL, secret)

	d.RunOnce(t.Context())
	tk := src.task(t, "t1")
	if tk.Webhook.Delivered || !tk.Webhook.Pending || len(tk.Webhook.Attempts) != 1 {
		t.Fatalf("after a 500: %+v, want pending after 1 attempt", tk.Webhook)
	}
	if a := tk.Webhook.Attempts[0]; a.Status != 500 || a.Error != "HTTP 500" {
		t.Errorf("attempt %+v, want status 500, error HTTP 500", a)
	}
	if next := tk.Webhook.NextAttemptAt.Sub(t0); next <= 800*time.Millisecond || next > time.Second {
		t.Errorf("next attempt after %v, want (0.8s, 1s]", next)
	}
	if n := d.RunOnce(t.Context()); n != 0 {
		t.Fatalf("RunOnce before the backoff made %d attempts, want 0", n)
	}
	clk.Advance(time.Second)
	if n := d.RunOnce(t.Context()); n != 1 {
		t.Fatalf("RunOnce after the backoff made %d attempts, want 1", n)
	}
	tk = src.task(t, "t1")
	if !tk.Webhook.Delivered || tk.Webhook.Pending || len(tk.Webhook.Attempts) != 2 || tk.Webhook.Attempts[1].Status != 200 {
		t.Fatalf("after a 200: %+v, want delivered after 2 attempts", tk.Webhook)
	}
	if calls.Load() != 2 {
		t.Fatalf("receiver called %d times, want 2", calls.Load())
	}
}

func TestBackoffGrowsThenGivesUp(t *testing.T) {
	t.Parallel()
	d, src, clk := setup(t, loopback, webhook.Options{MaxAge: time.Hour})
	rc := newReceiver(t, ok(http.StatusServiceUnavailable))
	src.add("t1", rc.URL, secret)
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("still retrying after 100 attempts")
		}
		if n := d.RunOnce(t.Context()); n != 1 {
			t.Fatalf("attempt %d: RunOnce made %d attempts, want 1", i+1, n)
		}
		h := src.task(t, "t1").Webhook
		if !h.Pending {
			if h.Delivered || !h.NextAttemptAt.IsZero() {
				t.Fatalf("ended with %+v, want undelivered, nothing next", h)
			}
			if i < 8 {
				t.Fatalf("gave up after %d attempts, want retries for the hour", i+1)
			}
			// The next attempt would have come past the hour.
			if last := h.Attempts[len(h.Attempts)-1].At; last.After(t0.Add(time.Hour)) || last.Add(10*time.Minute).Before(t0.Add(time.Hour-2*time.Minute)) {
				t.Fatalf("last attempt at %v, want within 10m (less jitter) of the hour", last.Sub(t0))
			}
			return
		}
		want := min(time.Second<<i, 10*time.Minute)
		if got := h.NextAttemptAt.Sub(clk.Now()); got <= want*8/10 || got > want {
			t.Fatalf("attempt %d: next after %v, want (%v, %v]", i+1, got, want*8/10, want)
		}
		clk.Set(h.NextAttemptAt)
	}
}

func TestRefusedAtDial(t *testing.T) {
	t.Parallel()
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			d, src, _ := setup(t, nil, webhook.Options{}) // no allow-list
			rc := newReceiver(t, ok(200))
			u := strings.Replace(rc.URL, "127.0.0.1", host, 1) + "/hook?token=abc"
			src.add("t1", u, secret)
			if n := d.RunOnce(t.Context()); n != 1 {
				t.Fatalf("RunOnce made %d attempts, want 1", n)
			}
			if n := len(rc.requests()); n != 0 {
				t.Fatalf("receiver got %d requests, want none", n)
			}
			h := src.task(t, "t1").Webhook
			if h.Delivered || h.Pending || len(h.Attempts) != 1 {
				t.Fatalf("webhook %+v, want one refused attempt and no more", h)
			}
			a := h.Attempts[0]
			if a.Status != 0 || !strings.Contains(a.Error, "loopback") {
				t.Errorf("attempt %+v, want no status and a loopback refusal", a)
			}
			if strings.Contains(a.Error, secret) || strings.Contains(a.Error, "token") {
				t.Errorf("attempt error %q leaks the secret or the URL", a.Error)
			}
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	d, src, _ := setup(t, loopback, webhook.Options{})
	target := newReceiver(t, ok(200))
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	src.add("t1", rc.URL, secret)
	d.RunOnce(t.Context())
	if len(rc.requests()) != 1 || len(target.requests()) != 0 {
		t.Fatalf("requests: %d to the receiver, %d to the redirect target; want 1 and 0",
			len(rc.requests()), len(target.requests()))
	}
	h := src.task(t, "t1").Webhook
	if h.Delivered || !h.Pending || len(h.Attempts) != 1 {
		t.Fatalf("webhook %+v, want a failed attempt, retry pending", h)
	}
	if a := h.Attempts[0]; a.Status != 307 || !strings.Contains(a.Error, "redirect") {
		t.Errorf("attempt %+v, want 307 and a redirect error", a)
	}
}

func TestSlowReceiverTimesOut(t *testing.T) {
	t.Parallel()
	d, src, _ := setup(t, loopback, webhook.Options{Timeout: 50 * time.Millisecond})
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the receiver closes
	src.add("t1", rc.URL, secret)
	d.RunOnce(t.Context())
	h := src.task(t, "t1").Webhook
	if h.Delivered || !h.Pending || len(h.Attempts) != 1 {
		t.Fatalf("webhook %+v, want a failed attempt, retry pending", h)
	}
	if a := h.Attempts[0]; a.Status != 0 || a.Error != "timed out after 50ms" {
		t.Errorf("attempt %+v, want no status and a timeout", a)
	}
}

func TestStopDuringDelivery(t *testing.T) {
	t.Parallel()
	d, src, _ := setup(t, loopback, webhook.Options{})
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	src.add("t1", rc.URL, secret)
	d.Start()
	d.Start() // a second Start is a no-op
	await(t, arrived, "the delivery")

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("Stop during a delivery: %v", err)
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	h := src.task(t, "t1").Webhook
	if !h.Pending || len(h.Attempts) != 0 {
		t.Fatalf("webhook %+v, want the cut-short attempt unrecorded and delivery still pending", h)
	}
}

func TestStartDeliversAndWakes(t *testing.T) {
	t.Parallel()
	d, src, _ := setup(t, loopback, webhook.Options{})
	got := make(chan string, 10)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		got <- r.Header.Get("Courier-Task-Id")
	})
	src.add("t1", rc.URL, secret)
	d.Start()
	if id := await(t, got, "the first delivery"); id != "t1" {
		t.Fatalf("delivered %s, want t1", id)
	}
	// The fake clock never moves: only Wake gets the loop to look again.
	src.add("t2", rc.URL, secret)
	d.Wake()
	if id := await(t, got, "the woken delivery"); id != "t2" {
		t.Fatalf("delivered %s, want t2", id)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	d, src, _ := setup(t, loopback, webhook.Options{Concurrency: 2})
	var mu sync.Mutex // guards inflight, peak
	inflight, peak := 0, 0
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		mu.Lock()
		inflight++
		peak = max(peak, inflight)
		mu.Unlock()
		arrived <- struct{}{}
		<-release
		mu.Lock()
		inflight--
		mu.Unlock()
	})
	for _, id := range []string{"t1", "t2", "t3", "t4", "t5"} {
		src.add(id, rc.URL, secret)
	}
	done := make(chan int, 1)
	go func() { done <- d.RunOnce(context.Background()) }()
	await(t, arrived, "the first delivery")
	await(t, arrived, "the second delivery, alongside the first")
	close(release)
	if n := await(t, done, "RunOnce"); n != 2 {
		t.Fatalf("first RunOnce made %d attempts, want 2 (the limit)", n)
	}
	if n := d.RunOnce(t.Context()) + d.RunOnce(t.Context()); n != 3 {
		t.Fatalf("the next RunOnces made %d attempts, want 3", n)
	}
	if peak != 2 {
		t.Fatalf("peak deliveries in flight %d, want 2", peak)
	}
}

func TestInFlightNotDuplicated(t *testing.T) {
	t.Parallel()
	d, src, _ := setup(t, loopback, webhook.Options{})
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		arrived <- struct{}{}
		<-release
	})
	src.add("t1", rc.URL, secret)
	done := make(chan int, 1)
	go func() { done <- d.RunOnce(context.Background()) }()
	await(t, arrived, "the delivery")
	// Still due (not yet recorded), but in flight: not sent again.
	if n := d.RunOnce(t.Context()); n != 0 {
		t.Fatalf("RunOnce during the delivery made %d attempts, want 0", n)
	}
	close(release)
	if n := await(t, done, "RunOnce"); n != 1 {
		t.Fatalf("RunOnce made %d attempts, want 1", n)
	}
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("receiver got %d requests, want 1", n)
	}
}
