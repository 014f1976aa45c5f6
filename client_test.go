package courier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptrace"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/server"
)

// setup starts a real server on a fresh data directory and returns a client
// of it. Both are stopped when the test ends.
func setup(t *testing.T, cfg server.Config) *courier.Client {
	t.Helper()
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	s, err := server.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("stop server: %v", err)
		}
	})
	c := courier.NewClient(s.URL())
	t.Cleanup(c.CloseIdleConnections) // runs before Stop
	return c
}

func ptr[T any](v T) *T { return &v }

func TestQueueLifecycle(t *testing.T) {
	t.Parallel()
	c, ctx := setup(t, server.Config{}), t.Context()

	q, err := c.PutQueue(ctx, "orders", courier.QueueSettings{
		VisibilityTimeout: ptr("45s"),
		MaxAttempts:       ptr(3),
		Backoff:           &courier.BackoffSettings{Initial: ptr("2s"), Max: ptr("1m"), Multiplier: ptr(3.0), Jitter: ptr(0.5)},
		DeadLetterQueue:   ptr("orders.failed"),
		Retention:         ptr("24h"),
		MaxMessageBytes:   ptr(2048),
		DedupWindow:       ptr("1m"),
	})
	if err != nil {
		t.Fatalf("PutQueue: %v", err)
	}
	want := courier.Queue{Name: "orders", VisibilityTimeout: "45s", MaxAttempts: 3,
		Backoff:         courier.Backoff{Initial: "2s", Max: "1m0s", Multiplier: 3, Jitter: 0.5},
		DeadLetterQueue: "orders.failed", Retention: "24h0m0s", MaxMessageBytes: 2048, DedupWindow: "1m0s"}
	if got := settingsOf(q); got != want {
		t.Errorf("PutQueue answered\n%+v, want\n%+v", got, want)
	}
	if q.CreatedAt.IsZero() {
		t.Error("PutQueue answered no created_at")
	}

	got, err := c.GetQueue(ctx, "orders")
	if err != nil || settingsOf(got) != want {
		t.Errorf("GetQueue = %+v, %v; want %+v", got, err, want)
	}
	qs, err := c.ListQueues(ctx)
	if err != nil || !slices.ContainsFunc(qs, func(q courier.Queue) bool { return q.Name == "orders" }) {
		t.Errorf("ListQueues = %+v, %v; want orders among them", qs, err)
	}

	if q, err := c.PauseQueue(ctx, "orders"); err != nil || !q.Paused {
		t.Errorf("PauseQueue = paused %v, %v; want paused", q.Paused, err)
	}
	if q, err := c.GetQueue(ctx, "orders"); err != nil || !q.Paused {
		t.Errorf("GetQueue after pause = paused %v, %v", q.Paused, err)
	}
	if q, err := c.ResumeQueue(ctx, "orders"); err != nil || q.Paused {
		t.Errorf("ResumeQueue = paused %v, %v; want not paused", q.Paused, err)
	}

	for range 2 {
		if _, err := c.Send(ctx, "orders", courier.NewMessage{Body: json.RawMessage(`1`)}); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if n, err := c.PurgeQueue(ctx, "orders"); err != nil || n != 2 {
		t.Errorf("PurgeQueue = %d, %v; want 2", n, err)
	}

	if err := c.DeleteQueue(ctx, "orders"); err != nil {
		t.Fatalf("DeleteQueue: %v", err)
	}
	if _, err := c.GetQueue(ctx, "orders"); !errors.Is(err, courier.ErrQueueNotFound) {
		t.Errorf("GetQueue after delete: %v, want ErrQueueNotFound", err)
	}
}

// settingsOf is q without the fields that change by themselves.
func settingsOf(q courier.Queue) courier.Queue {
	q.CreatedAt, q.Stats, q.Paused = time.Time{}, courier.QueueStats{}, false
	return q
}

func TestSendReceiveAck(t *testing.T) {
	t.Parallel()
	c, ctx := setup(t, server.Config{}), t.Context()

	id1, err := c.Send(ctx, "jobs", courier.NewMessage{Body: json.RawMessage(`{"n": 1}`),
		Headers: map[string]string{"trace-id": "abc"}, Priority: 5, Group: "g1"})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	body2, err := courier.JSONBody(map[string]int{"n": 2})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := c.SendBatch(ctx, "jobs", []courier.NewMessage{
		{Body: body2},
		{BodyBase64: courier.BinaryBody([]byte{0, 1, 2, 0xff})},
	})
	if err != nil || len(ids) != 2 || ids[0] == ids[1] || slices.Contains(ids, id1) {
		t.Fatalf("SendBatch = %v, %v; want two new ids", ids, err)
	}

	msgs, err := c.Receive(ctx, "jobs", courier.ReceiveRequest{Max: 10})
	if err != nil || len(msgs) != 3 {
		t.Fatalf("Receive = %d messages, %v; want 3", len(msgs), err)
	}
	if msgs[0].ID != id1 {
		t.Errorf("first message %s, want %s: priority 5 goes first", msgs[0].ID, id1)
	}
	byID := map[string]courier.Message{}
	for _, m := range msgs {
		byID[m.ID] = m
		if m.Attempt != 1 || m.Lease == "" || !m.LeaseExpiresAt.After(m.SentAt) {
			t.Errorf("message %s: attempt %d, lease %q, expires %v after sent %v", m.ID, m.Attempt, m.Lease, m.LeaseExpiresAt, m.SentAt)
		}
	}
	m1 := byID[id1]
	if !jsonEqual(m1.Body, `{"n":1}`) || m1.Headers["trace-id"] != "abc" || m1.Priority != 5 || m1.Group != "g1" {
		t.Errorf("message 1 came back as %+v", m1)
	}
	if m := byID[ids[0]]; !jsonEqual(m.Body, `{"n":2}`) {
		t.Errorf("message 2 body %s", m.Body)
	}
	if b, err := byID[ids[1]].BodyBytes(); err != nil || !bytes.Equal(b, []byte{0, 1, 2, 0xff}) {
		t.Errorf("binary body came back as %v, %v", b, err)
	}

	if err := c.Ack(ctx, "jobs", m1.Lease); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	// The batch includes the lease just acked: applied are the others.
	res, err := c.AckBatch(ctx, "jobs", []string{byID[ids[0]].Lease, m1.Lease, byID[ids[1]].Lease})
	if err != nil || res.Acked != 2 || len(res.Failed) != 1 || res.Failed[0].Lease != m1.Lease || res.Failed[0].Code == "" {
		t.Errorf("AckBatch = %+v, %v; want 2 acked and the stale lease failed with a code", res, err)
	}
	q, err := c.GetQueue(ctx, "jobs")
	if err != nil || q.Stats.AckedTotal != 3 || q.Stats.InFlight != 0 || q.Stats.Ready != 0 {
		t.Errorf("stats after acks = %+v, %v", q.Stats, err)
	}
}

func jsonEqual(raw json.RawMessage, want string) bool {
	var a, b any
	return json.Unmarshal(raw, &a) == nil && json.Unmarshal([]byte(want), &b) == nil &&
		slices.Equal(mustJSON(a), mustJSON(b))
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v) // maps marshal with sorted keys: a canonical form
	return b
}

func TestSendDedupKey(t *testing.T) {
	t.Parallel()
	c, ctx := setup(t, server.Config{}), t.Context()
	m := courier.NewMessage{Body: json.RawMessage(`"x"`), DedupKey: "order-42"}
	a, err1 := c.Send(ctx, "dedup", m)
	b, err2 := c.Send(ctx, "dedup", m)
	if err1 != nil || err2 != nil || a != b {
		t.Errorf("two sends with one dedup key = %q (%v), %q (%v); want one id", a, err1, b, err2)
	}
}

// wroteRequest returns a context that reports, on the returned channel, when
// a request made with it has been sent in full.
func wroteRequest(ctx context.Context) (context.Context, <-chan struct{}) {
	wrote := make(chan struct{}, 1)
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
		select {
		case wrote <- struct{}{}:
		default:
		}
	}}
	return httptrace.WithClientTrace(ctx, trace), wrote
}

func TestReceiveLongPollWakesOnSend(t *testing.T) {
	t.Parallel()
	c, ctx := setup(t, server.Config{}), t.Context()
	pollCtx, wrote := wroteRequest(ctx)
	type answer struct {
		msgs []courier.Message
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		msgs, err := c.Receive(pollCtx, "wake", courier.ReceiveRequest{Wait: "60s"})
		done <- answer{msgs, err}
	}()
	<-wrote
	id, err := c.Send(ctx, "wake", courier.NewMessage{Body: json.RawMessage(`true`)})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	a := <-done
	if a.err != nil || len(a.msgs) != 1 || a.msgs[0].ID != id {
		t.Errorf("long-poll Receive = %+v, %v; want the message sent", a.msgs, a.err)
	}
}

func TestReceiveLongPollEndsWithContext(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pollCtx, wrote := wroteRequest(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.Receive(pollCtx, "idle", courier.ReceiveRequest{Wait: "60s"})
		done <- err
	}()
	<-wrote
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Receive = %v, want context.Canceled", err)
	}
}

func TestNackExtendRedrive(t *testing.T) {
	t.Parallel()
	c, ctx := setup(t, server.Config{}), t.Context()
	if _, err := c.PutQueue(ctx, "work", courier.QueueSettings{MaxAttempts: ptr(2)}); err != nil {
		t.Fatal(err)
	}
	id, err := c.Send(ctx, "work", courier.NewMessage{Body: json.RawMessage(`"job"`)})
	if err != nil {
		t.Fatal(err)
	}
	m := receiveOne(t, c, "work")
	until, err := c.Extend(ctx, "work", courier.ExtendRequest{Lease: m.Lease, Visibility: "10m"})
	if err != nil || !until.After(m.LeaseExpiresAt) {
		t.Errorf("Extend = %v, %v; want later than %v", until, err, m.LeaseExpiresAt)
	}
	res, err := c.Nack(ctx, "work", courier.NackRequest{Lease: m.Lease, Delay: "0s", Error: "flaky"})
	if err != nil || res.DeadLettered {
		t.Fatalf("first Nack = %+v, %v; want retried", res, err)
	}
	m = receiveOne(t, c, "work")
	if m.ID != id || m.Attempt != 2 {
		t.Errorf("redelivered %s attempt %d, want %s attempt 2", m.ID, m.Attempt, id)
	}
	if res, err := c.Nack(ctx, "work", courier.NackRequest{Lease: m.Lease}); err != nil || !res.DeadLettered {
		t.Fatalf("last Nack = %+v, %v; want dead-lettered", res, err)
	}
	if n, err := c.Redrive(ctx, "work", 10); err != nil || n != 1 {
		t.Fatalf("Redrive = %d, %v; want 1", n, err)
	}
	if m := receiveOne(t, c, "work"); m.ID != id {
		t.Errorf("after redrive received %s, want %s", m.ID, id)
	}
}

func receiveOne(t *testing.T, c *courier.Client, queue string) courier.Message {
	t.Helper()
	msgs, err := c.Receive(t.Context(), queue, courier.ReceiveRequest{})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive from %s = %d messages, %v; want 1", queue, len(msgs), err)
	}
	return msgs[0]
}

func TestLeaseExpired(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	c, ctx := setup(t, server.Config{Clock: clk}), t.Context()
	if _, err := c.Send(ctx, "slow", courier.NewMessage{Body: json.RawMessage(`1`)}); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Receive(ctx, "slow", courier.ReceiveRequest{Visibility: "1s"})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive = %v, %v", msgs, err)
	}
	clk.Advance(2 * time.Second)

	err = c.Ack(ctx, "slow", msgs[0].Lease)
	for _, target := range []error{courier.ErrLeaseExpired, courier.ErrConflict} {
		if !errors.Is(err, target) {
			t.Errorf("Ack of an expired lease: %v; want errors.Is %v", err, target)
		}
	}
	if errors.Is(err, courier.ErrNotFound) || errors.Is(err, courier.ErrInvalidArgument) {
		t.Errorf("Ack of an expired lease: %v matches an unrelated sentinel", err)
	}
	var apiErr *courier.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != courier.CodeLeaseExpired || apiErr.Message == "" {
		t.Errorf("Ack of an expired lease: %#v, want a 409 lease_expired *Error with a message", err)
	}
	if _, err := c.Extend(ctx, "slow", courier.ExtendRequest{Lease: msgs[0].Lease}); !errors.Is(err, courier.ErrLeaseExpired) {
		t.Errorf("Extend of an expired lease: %v, want ErrLeaseExpired", err)
	}
	if _, err := c.Nack(ctx, "slow", courier.NackRequest{Lease: msgs[0].Lease}); !errors.Is(err, courier.ErrLeaseExpired) {
		t.Errorf("Nack of an expired lease: %v, want ErrLeaseExpired", err)
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	c, ctx := setup(t, server.Config{}), t.Context()
	var apiErr *courier.Error

	_, err := c.GetQueue(ctx, "missing")
	if !errors.Is(err, courier.ErrQueueNotFound) || !errors.Is(err, courier.ErrNotFound) ||
		!errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Errorf("GetQueue of a missing queue: %v, want a 404 ErrQueueNotFound", err)
	}

	_, err = c.PutQueue(ctx, "bad", courier.QueueSettings{MaxAttempts: ptr(-1)})
	if !errors.Is(err, courier.ErrInvalidArgument) || !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Errorf("PutQueue with max_attempts -1: %v, want a 400 ErrInvalidArgument", err)
	}

	if _, err := c.PutQueue(ctx, "small", courier.QueueSettings{MaxMessageBytes: ptr(16)}); err != nil {
		t.Fatal(err)
	}
	big, _ := courier.JSONBody(string(make([]byte, 100)))
	_, err = c.Send(ctx, "small", courier.NewMessage{Body: big})
	if !errors.Is(err, courier.ErrTooLarge) || !errors.As(err, &apiErr) || apiErr.Status != 413 {
		t.Errorf("Send over max_message_bytes: %v, want a 413 ErrTooLarge", err)
	}

	// Refused by the SDK itself, without a request.
	_, err = c.GetQueue(ctx, "")
	if !errors.Is(err, courier.ErrInvalidArgument) || !errors.As(err, &apiErr) || apiErr.Status != 0 {
		t.Errorf("GetQueue(\"\"): %v, want an ErrInvalidArgument with status 0", err)
	}
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := courier.NewClient("http://" + addr)
	defer c.CloseIdleConnections()

	_, err = c.ListQueues(t.Context())
	var apiErr *courier.Error
	var urlErr *url.Error
	if err == nil || errors.As(err, &apiErr) || !errors.As(err, &urlErr) {
		t.Errorf("ListQueues of an unreachable server: %#v, want a *url.Error", err)
	}
}
