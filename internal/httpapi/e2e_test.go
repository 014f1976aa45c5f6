package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/server"
)

// These tests run a real server (Pebble store, broker, maintenance, this
// package) on 127.0.0.1:0 and talk to it over TCP, as any client would.

type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func start(t *testing.T) *client {
	t.Helper()
	return startWith(t, nil)
}

// startWith starts a server on clk (nil: the wall clock).
func startWith(t *testing.T, clk clock.Clock) *client {
	t.Helper()
	return startConfig(t, server.Config{Clock: clk})
}

// startConfig starts a server of cfg on a free port of 127.0.0.1 and a
// fresh data directory.
func startConfig(t *testing.T, cfg server.Config) *client {
	t.Helper()
	cfg.Addr, cfg.DataDir, cfg.MinFreeBytes = "127.0.0.1:0", t.TempDir(), 1
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return &client{t: t, base: s.URL(), hc: hc}
}

// call sends body (a string is sent as is, anything else as JSON) and
// returns the status and the answer's bytes.
func (c *client) call(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// must calls and requires status want, decoding the answer into out.
func (c *client) must(method, path string, body any, want int, out any) []byte {
	c.t.Helper()
	status, data, err := c.call(context.Background(), method, path, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != want {
		c.t.Fatalf("%s %s %v: status %d, want %d: %s", method, path, body, status, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return data
}

func (c *client) receive(queue string, req courier.ReceiveRequest) []courier.Message {
	c.t.Helper()
	var res courier.ReceiveResult
	c.must("POST", "/v1/queues/"+queue+"/receive", req, 200, &res)
	return res.Messages
}

func (c *client) stats(queue string) courier.QueueStats {
	c.t.Helper()
	var q courier.Queue
	c.must("GET", "/v1/queues/"+queue, nil, 200, &q)
	return q.Stats
}

func ptr[T any](v T) *T { return &v }

func TestE2ELifecycle(t *testing.T) {
	t.Parallel()
	c := start(t)
	var q courier.Queue
	c.must("PUT", "/v1/queues/jobs", courier.QueueSettings{VisibilityTimeout: ptr("20s"), MaxAttempts: ptr(2),
		Backoff: &courier.BackoffSettings{Initial: ptr("1h"), Max: ptr("2h"), Multiplier: ptr(2.0)}}, 200, &q)
	if q.Name != "jobs" || q.VisibilityTimeout != "20s" || q.MaxAttempts != 2 || q.DeadLetterQueue != "jobs.dead" ||
		q.Backoff.Initial != "1h0m0s" || q.Paused {
		t.Fatalf("queue: %+v", q)
	}

	// Send: one JSON, one binary, a batch of three.
	var one courier.SendResult
	c.must("POST", "/v1/queues/jobs/messages", `{"body": {"n": 1},"headers":{"trace":"t1"},"priority":10}`, 201, &one)
	c.must("POST", "/v1/queues/jobs/messages", courier.NewMessage{BodyBase64: ptr(base64.StdEncoding.EncodeToString([]byte{0, 255}))}, 201, nil)
	var batch courier.SendBatchResult
	c.must("POST", "/v1/queues/jobs/messages", `{"messages":[{"body":2},{"body":3},{"body":4}]}`, 201, &batch)
	if one.ID == "" || len(batch.Messages) != 3 || batch.Messages[0].ID >= batch.Messages[2].ID {
		t.Fatalf("ids: %v %v", one, batch)
	}
	if s := c.stats("jobs"); s.Ready != 5 || s.SentTotal != 5 || s.InFlight != 0 {
		t.Fatalf("after sends: %+v", s)
	}

	// Receive with max: the priority-10 message comes first, as sent.
	msgs := c.receive("jobs", courier.ReceiveRequest{Max: 2})
	if len(msgs) != 2 || msgs[0].ID != one.ID || string(msgs[0].Body) != `{"n": 1}` || msgs[0].Headers["trace"] != "t1" ||
		msgs[0].Priority != 10 || msgs[0].Attempt != 1 || msgs[1].BodyBase64 == nil || *msgs[1].BodyBase64 != "AP8=" {
		t.Fatalf("received: %+v", msgs)
	}
	if s := c.stats("jobs"); s.Ready != 3 || s.InFlight != 2 {
		t.Fatalf("after receive: %+v", s)
	}
	// Ack one singly, then the second in a batch with the (now stale) first.
	c.must("POST", "/v1/queues/jobs/ack", courier.AckRequest{Lease: msgs[0].Lease}, 200, nil)
	c.must("POST", "/v1/queues/jobs/ack", courier.AckRequest{Lease: msgs[0].Lease}, 409, nil)
	var ar courier.AckResult
	c.must("POST", "/v1/queues/jobs/ack", courier.AckRequest{Leases: []string{msgs[1].Lease, msgs[0].Lease}}, 200, &ar)
	if ar.Acked != 1 || len(ar.Failed) != 1 || ar.Failed[0].Code != courier.CodeLeaseExpired {
		t.Fatalf("batch ack: %+v", ar)
	}

	// Extend, then nack with a delay and an error.
	m := c.receive("jobs", courier.ReceiveRequest{})[0]
	var ext courier.ExtendResult
	c.must("POST", "/v1/queues/jobs/extend", courier.ExtendRequest{Lease: m.Lease, Visibility: "10m"}, 200, &ext)
	if !ext.LeaseExpiresAt.After(m.LeaseExpiresAt) {
		t.Fatalf("extend: %v not after %v", ext.LeaseExpiresAt, m.LeaseExpiresAt)
	}
	var nr courier.NackResult
	c.must("POST", "/v1/queues/jobs/nack", courier.NackRequest{Lease: m.Lease, Delay: "1h", Error: "busy"}, 200, &nr)
	if nr.DeadLettered || nr.RetryAt == nil || nr.RetryAt.Sub(time.Now()) < 59*time.Minute {
		t.Fatalf("nack with delay: %+v", nr)
	}
	if s := c.stats("jobs"); s.Ready != 2 || s.Delayed != 1 || s.InFlight != 0 || s.AckedTotal != 2 {
		t.Fatalf("after nack: %+v", s)
	}
	testDeadLetterAndRedrive(t, c)
	testPauseResumePurgeDelete(t, c)
}

// testDeadLetterAndRedrive: at max_attempts (2) a nacked message moves to
// jobs.dead, with headers saying why, and redrive brings it back.
func testDeadLetterAndRedrive(t *testing.T, c *client) {
	m := c.receive("jobs", courier.ReceiveRequest{})[0]
	c.must("POST", "/v1/queues/jobs/nack", courier.NackRequest{Lease: m.Lease, Delay: "0s"}, 200, nil)
	m2 := c.receive("jobs", courier.ReceiveRequest{})[0]
	if m2.ID != m.ID || m2.Attempt != 2 {
		t.Fatalf("redelivery: %+v after %+v", m2, m)
	}
	var nr courier.NackResult
	c.must("POST", "/v1/queues/jobs/nack", courier.NackRequest{Lease: m2.Lease, Error: "poison"}, 200, &nr)
	if !nr.DeadLettered || nr.RetryAt != nil {
		t.Fatalf("second nack: %+v", nr)
	}
	if s := c.stats("jobs"); s.Dead != 1 || s.Ready != 1 {
		t.Fatalf("after dead-letter: %+v", s)
	}
	dead := c.receive("jobs.dead", courier.ReceiveRequest{Max: 10})
	if len(dead) != 1 || dead[0].ID != m.ID || dead[0].Headers["courier-source-queue"] != "jobs" ||
		dead[0].Headers["courier-error"] != "poison" {
		t.Fatalf("dead letters: %+v", dead)
	}
	c.must("POST", "/v1/queues/jobs.dead/nack", courier.NackRequest{Lease: dead[0].Lease, Delay: "0s"}, 200, nil)
	var rr courier.RedriveResult
	c.must("POST", "/v1/queues/jobs/redrive", courier.RedriveRequest{Max: 10}, 200, &rr)
	if rr.Moved != 1 {
		t.Fatalf("redrive: %+v", rr)
	}
	if s := c.stats("jobs"); s.Dead != 0 || s.Ready != 2 {
		t.Fatalf("after redrive: %+v", s)
	}
}

func testPauseResumePurgeDelete(t *testing.T, c *client) {
	var q courier.Queue
	c.must("POST", "/v1/queues/jobs/pause", nil, 200, &q)
	if !q.Paused {
		t.Fatalf("pause: %+v", q)
	}
	c.must("POST", "/v1/queues/jobs/messages", `{"body":"while paused"}`, 201, nil) // sends still work
	if got := c.receive("jobs", courier.ReceiveRequest{Max: 10}); len(got) != 0 {
		t.Fatalf("a paused queue handed out %d", len(got))
	}
	c.must("POST", "/v1/queues/jobs/resume", "{}", 200, &q)
	if q.Paused || q.Stats.Ready != 3 {
		t.Fatalf("resume: %+v", q)
	}
	var pr courier.PurgeResult
	c.must("POST", "/v1/queues/jobs/purge", nil, 200, &pr)
	if pr.Purged != 4 { // 3 ready and 1 delayed
		t.Fatalf("purge: %+v", pr)
	}
	var list courier.QueueList
	c.must("GET", "/v1/queues", nil, 200, &list)
	if len(list.Queues) != 2 || list.Queues[0].Name != "jobs" || list.Queues[1].Name != "jobs.dead" {
		t.Fatalf("list: %+v", list)
	}
	c.must("DELETE", "/v1/queues/jobs", nil, 204, nil)
	c.must("GET", "/v1/queues/jobs", nil, 404, nil)
}

type received struct {
	msgs    []courier.Message
	err     error
	elapsed time.Duration
}

// longPoll receives in a goroutine, reporting on the returned channel.
func (c *client) longPoll(ctx context.Context, queue, wait string) <-chan received {
	done := make(chan received, 1)
	go func() {
		t0 := time.Now()
		status, data, err := c.call(ctx, "POST", "/v1/queues/"+queue+"/receive", courier.ReceiveRequest{Wait: wait})
		r := received{err: err, elapsed: time.Since(t0)}
		if err == nil && status != 200 {
			r.err = errors.New(string(data))
		}
		if r.err == nil {
			var res courier.ReceiveResult
			r.err = json.Unmarshal(data, &res)
			r.msgs = res.Messages
		}
		done <- r
	}()
	return done
}

// waitPolling returns once a long-poll is blocked on the fake clock: the
// maintenance loop holds one timer, a waiting receive the second. (The
// fake clock never moves in these tests, so neither timer fires.)
func waitPolling(t *testing.T, fake *clock.Fake) {
	t.Helper()
	guard := time.After(30 * time.Second)
	for {
		added := fake.TimerAdded() // before counting, so no timer slips between
		if fake.Timers() >= 2 {
			return
		}
		select {
		case <-added:
		case <-guard:
			t.Fatalf("no long-poll is waiting (%d timers)", fake.Timers())
		}
	}
}

// TestE2ELongPollWokenBySend: a receive waiting 30s answers as soon as a
// message is sent. The clock is fake and never moves, so only the send's
// wake-up can end the wait.
func TestE2ELongPollWokenBySend(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
	c := startWith(t, fake)
	c.must("PUT", "/v1/queues/lp", nil, 200, nil)
	done := c.longPoll(context.Background(), "lp", "30s")
	waitPolling(t, fake)
	var sent courier.SendResult
	c.must("POST", "/v1/queues/lp/messages", `{"body":"wake"}`, 201, &sent)
	r := <-done
	if r.err != nil || len(r.msgs) != 1 || r.msgs[0].ID != sent.ID || string(r.msgs[0].Body) != `"wake"` {
		t.Fatalf("long-poll: %+v", r)
	}
	if r.elapsed > 15*time.Second {
		t.Fatalf("long-poll answered after %v, not at the send", r.elapsed)
	}
}

// TestE2ELongPollWallClock: the same over the wall clock, and a short wait
// that ends empty ends with an empty list.
func TestE2ELongPollWallClock(t *testing.T) {
	t.Parallel()
	c := start(t)
	r := <-c.longPoll(context.Background(), "wc", "10ms")
	if r.err != nil || r.msgs == nil || len(r.msgs) != 0 {
		t.Fatalf("empty long-poll: %+v", r)
	}
	done := c.longPoll(context.Background(), "wc", "30s")
	c.must("POST", "/v1/queues/wc/messages", `{"body":1}`, 201, nil)
	if r := <-done; r.err != nil || len(r.msgs) != 1 || r.elapsed > 15*time.Second {
		t.Fatalf("long-poll: %+v", r)
	}
}

// TestE2ELongPollCancelled: a client that gives up while its long-poll is
// waiting gets its cancellation at once, and the server goes on serving.
func TestE2ELongPollCancelled(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
	c := startWith(t, fake)
	ctx, cancel := context.WithCancel(context.Background())
	done := c.longPoll(ctx, "gone", "30s")
	waitPolling(t, fake)
	cancel()
	r := <-done
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled long-poll: %+v", r)
	}
	// The cleanup's Stop then shows that no handler is left running: it
	// waits for every one, and goleak checks what remains.
	c.must("GET", "/healthz", nil, 200, nil)
}

// TestE2EGroupsInOrder: messages of one group are handed out one at a time,
// in send order, while other groups proceed.
func TestE2EGroupsInOrder(t *testing.T) {
	t.Parallel()
	c := start(t)
	c.must("POST", "/v1/queues/g/messages", `{"messages":[
		{"body":"a1","group":"a"},{"body":"a2","group":"a"},{"body":"b1","group":"b"},{"body":"a3","group":"a"}]}`, 201, nil)
	var order []string
	for range 3 {
		msgs := c.receive("g", courier.ReceiveRequest{Max: 10})
		var leases []string
		for _, m := range msgs {
			order = append(order, string(m.Body))
			leases = append(leases, m.Lease)
		}
		if len(leases) > 0 {
			c.must("POST", "/v1/queues/g/ack", courier.AckRequest{Leases: leases}, 200, nil)
		}
	}
	if got := strings.Join(order, " "); got != `"a1" "b1" "a2" "a3"` {
		t.Fatalf("delivery order %s", got)
	}
}

// TestE2EDedup: a second send with the same dedup key answers the first id
// and stores nothing.
func TestE2EDedup(t *testing.T) {
	t.Parallel()
	c := start(t)
	var first, second courier.SendResult
	c.must("POST", "/v1/queues/d/messages", `{"body":1,"dedup_key":"order-42"}`, 201, &first)
	c.must("POST", "/v1/queues/d/messages", `{"body":2,"dedup_key":"order-42"}`, 201, &second)
	if first.ID == "" || second.ID != first.ID {
		t.Fatalf("dedup ids %q %q", first.ID, second.ID)
	}
	if s := c.stats("d"); s.SentTotal != 1 || s.Ready != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

// TestE2EErrorsOverTCP: the JSON error answers reach a real client.
func TestE2EErrorsOverTCP(t *testing.T) {
	t.Parallel()
	c := start(t)
	var eb courier.ErrorBody
	c.must("GET", "/v1/queues/nope", nil, 404, &eb)
	if eb.Error.Code != courier.CodeQueueNotFound || eb.Error.Message != `queue "nope" does not exist` {
		t.Fatalf("404: %+v", eb)
	}
	c.must("DELETE", "/v1/queues/nope/messages", nil, 405, &eb)
	c.must("GET", "/v2/anything", nil, 404, &eb)
	c.must("POST", "/v1/queues/x/messages", `{"body":1,"priority":101}`, 400, &eb)
	if eb.Error.Code != courier.CodeInvalidArgument || !strings.Contains(eb.Error.Message, "priority") {
		t.Fatalf("400: %+v", eb)
	}
	var h courier.Health
	c.must("GET", "/readyz", nil, 200, &h)
	var doc map[string]any
	c.must("GET", "/v1/openapi.json", nil, 200, &doc)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi: %v", doc["openapi"])
	}
}
