package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	courier "github.com/courierhq/courier"
)

func TestQueueObject(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var q courier.Queue
	f.must("PUT", "/v1/queues/orders", `{"visibility_timeout":"45s","max_attempts":3,
		"backoff":{"initial":"2s","jitter":0},"dedup_window":"0s"}`, 200, &q)
	want := courier.Queue{Name: "orders", VisibilityTimeout: "45s", MaxAttempts: 3,
		Backoff:         courier.Backoff{Initial: "2s", Max: "10m0s", Multiplier: 2, Jitter: 0},
		DeadLetterQueue: "orders.dead", Retention: "336h0m0s", MaxMessageBytes: 1 << 20, DedupWindow: "0s",
		CreatedAt: t0, Stats: courier.QueueStats{OldestReadyAge: "0s"}}
	if q != want {
		t.Fatalf("queue object\n got %+v\nwant %+v", q, want)
	}

	f.must("POST", "/v1/queues/orders/messages", `{"body":1}`, 201, nil)
	f.clk.Advance(1500 * 1e6) // 1.5s
	q = f.queue("orders")
	if q.Stats.Ready != 1 || q.Stats.SentTotal != 1 || q.Stats.OldestReadyAge != "1.5s" {
		t.Fatalf("stats after one send and 1.5s: %+v", q.Stats)
	}
	// A partial update keeps what it does not name.
	f.must("PUT", "/v1/queues/orders", `{"max_attempts":0}`, 200, &q)
	if q.MaxAttempts != 0 || q.VisibilityTimeout != "45s" || q.Backoff.Initial != "2s" {
		t.Fatalf("after partial update: %+v", q)
	}
	f.must("PUT", "/v1/queues/orders", "", 200, &q) // empty body: change nothing
	if q.VisibilityTimeout != "45s" {
		t.Fatalf("empty PUT changed settings: %+v", q)
	}
}

// TestBodyRoundTrip: a JSON body comes back as the exact bytes sent (spacing,
// number spelling, characters encoding/json would escape), null included; a
// binary body comes back as the same base64.
func TestBodyRoundTrip(t *testing.T) {
	t.Parallel()
	f := setup(t)
	bodies := []string{`{ "b" : [1, 2.50, 1e3, "<&>\u00e9"] }`, `null`, `"text"`, `[]`}
	for _, b := range bodies {
		f.must("POST", "/v1/queues/q/messages", `{"body": `+b+`}`, 201, nil)
	}
	bin := []byte{0, 1, 2, 0xff, '"', '\\'}
	f.must("POST", "/v1/queues/q/messages", `{"body_base64":"`+base64.StdEncoding.EncodeToString(bin)+`"}`, 201, nil)

	w := f.do("POST", "/v1/queues/q/receive", `{"max":10}`)
	if w.Code != 200 {
		t.Fatalf("receive: %d %s", w.Code, w.Body)
	}
	raw := w.Body.String()
	for _, b := range bodies {
		if !strings.Contains(raw, `"body":`+b+`}`) {
			t.Errorf("answer lacks the body %s as sent:\n%s", b, raw)
		}
	}
	var res courier.ReceiveResult
	f.must("POST", "/v1/queues/q/receive", "", 200, &res)
	if len(res.Messages) != 0 {
		t.Fatalf("queue should be empty, got %d", len(res.Messages))
	}
	// Decode the first answer and check the binary one.
	if err := decodeStrict(w.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 5 {
		t.Fatalf("got %d messages, want 5", len(res.Messages))
	}
	m := res.Messages[4]
	got, err := base64.StdEncoding.DecodeString(*m.BodyBase64)
	if err != nil || !bytes.Equal(got, bin) || m.Body != nil {
		t.Fatalf("binary body: %q %v (body %s)", got, err, m.Body)
	}
	if m.Headers == nil || m.Attempt != 1 || m.Lease == "" || !m.LeaseExpiresAt.After(m.SentAt) {
		t.Fatalf("message fields: %+v", m)
	}
}

func TestReceiveEmptyIsArray(t *testing.T) {
	t.Parallel()
	f := setup(t)
	w := f.do("POST", "/v1/queues/q/receive", "")
	if w.Code != 200 || w.Body.String() != "{\"messages\":[]}\n" {
		t.Fatalf("empty receive: %d %q", w.Code, w.Body)
	}
	w = f.do("GET", "/v1/queues", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"queues":[{`) {
		t.Fatalf("list after auto-create: %d %s", w.Code, w.Body)
	}
}

func TestLeaseOps(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.must("POST", "/v1/queues/q/messages", `{"messages":[{"body":1},{"body":2},{"body":3}]}`, 201, nil)
	var res courier.ReceiveResult
	f.must("POST", "/v1/queues/q/receive", `{"max":3,"visibility":"10s"}`, 200, &res)
	if len(res.Messages) != 3 {
		t.Fatalf("received %d", len(res.Messages))
	}
	l0, l1, l2 := res.Messages[0].Lease, res.Messages[1].Lease, res.Messages[2].Lease

	var ext courier.ExtendResult
	f.must("POST", "/v1/queues/q/extend", `{"lease":"`+l0+`","visibility":"1m"}`, 200, &ext)
	if want := t0.Add(60e9); !ext.LeaseExpiresAt.Equal(want) {
		t.Fatalf("extend: expires %v, want %v", ext.LeaseExpiresAt, want)
	}
	var nr courier.NackResult
	f.must("POST", "/v1/queues/q/nack", `{"lease":"`+l1+`","delay":"5s","error":"busy"}`, 200, &nr)
	if nr.DeadLettered || nr.RetryAt == nil || !nr.RetryAt.Equal(t0.Add(5e9)) {
		t.Fatalf("nack: %+v", nr)
	}
	var ar courier.AckResult
	f.must("POST", "/v1/queues/q/ack", `{"lease":"`+l0+`"}`, 200, &ar)
	if ar.Acked != 1 || ar.Failed != nil {
		t.Fatalf("single ack: %+v", ar)
	}
	// A batch with one valid and two stale leases applies the valid one.
	f.must("POST", "/v1/queues/q/ack", `{"leases":["`+l2+`","`+l0+`","`+l1+`"]}`, 200, &ar)
	if ar.Acked != 1 || len(ar.Failed) != 2 || ar.Failed[0].Lease != l0 || ar.Failed[0].Code != courier.CodeLeaseExpired {
		t.Fatalf("batch ack: %+v", ar)
	}
	q := f.queue("q")
	if q.Stats.AckedTotal != 2 || q.Stats.Delayed != 1 || q.Stats.InFlight != 0 {
		t.Fatalf("stats: %+v", q.Stats)
	}
}

// leftCtx is a request context whose client has left (Err says so) but
// whose Done never closes: the long-poll's wait then ends only by the
// send that hands it messages, as when that send wins the race with the
// client's leaving.
type leftCtx struct {
	context.Context
	left atomic.Bool
}

func (c *leftCtx) Done() <-chan struct{} { return nil }

func (c *leftCtx) Err() error {
	if c.left.Load() {
		return context.Canceled
	}
	return nil
}

// abortedServe serves the request, and reports whether the handler
// aborted its answer (http.ErrAbortHandler).
func abortedServe(f *fixture, ctx context.Context, path, body string) (w *httptest.ResponseRecorder, aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // a sentinel value, compared as net/http does
				panic(v)
			}
			aborted = true
		}
	}()
	return f.doCtx(ctx, "POST", path, body), false
}

// TestReceiveClientLeft: messages a long-poll's wait brought to a client
// that left before the answer are released at once, their attempt not
// counted, and the answer is aborted. What its first lease found is still
// answered (a client that half-closes its connection reads as gone at
// once), as is everything when the server is stopping instead.
func TestReceiveClientLeft(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := &leftCtx{Context: context.Background()}
	added := f.clk.TimerAdded() // the receive is waiting
	done := make(chan bool, 1)
	go func() {
		_, aborted := abortedServe(f, ctx, recvURL, `{"max":2,"wait":"30s"}`)
		done <- aborted
	}()
	<-added
	ctx.left.Store(true)
	f.must("POST", "/v1/queues/q/messages", `{"messages":[{"body":1},{"body":2}]}`, 201, nil)
	if !<-done {
		t.Error("the answer to a client that left was not aborted")
	}
	if q := f.queue("q"); q.Stats.Ready != 2 || q.Stats.InFlight != 0 {
		t.Fatalf("after a long-poll whose client left: %+v; want both ready again", q.Stats)
	}

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	stopping, stop := context.WithCancelCause(context.Background())
	stop(ErrServerStopping)
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"first lease, client gone", gone}, {"server stopping", stopping}} {
		var res courier.ReceiveResult
		w, aborted := abortedServe(f, c.ctx, recvURL, `{"max":1,"wait":"30s"}`)
		if aborted || w.Code != 200 || decodeStrict(w.Body.Bytes(), &res) != nil ||
			len(res.Messages) != 1 || res.Messages[0].Attempt != 1 {
			t.Fatalf("%s: aborted %v, %d %s; want one message, attempt 1", c.name, aborted, w.Code, w.Body)
		}
	}
}

// TestReceiveCancelled: a long-poll whose context ends (the client left, or
// the server is stopping) answers an empty list, never an empty 200 body.
func TestReceiveCancelled(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	added := f.clk.TimerAdded() // before the receive, so its timer cannot slip by
	go func() {
		<-added // the receive is waiting
		cancel()
	}()
	w := f.doCtx(ctx, "POST", recvURL, `{"wait":"30s"}`)
	if w.Code != 200 || w.Body.String() != "{\"messages\":[]}\n" {
		t.Fatalf("cancelled long-poll: %d %q", w.Code, w.Body)
	}
}
