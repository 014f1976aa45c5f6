package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	courier "github.com/courierhq/courier"
)

// receiveAcking receives with req, which carries acks, and returns the
// whole answer.
func (c *client) receiveAcking(queue string, req courier.ReceiveRequest) courier.ReceiveResult {
	c.t.Helper()
	var res courier.ReceiveResult
	c.must("POST", "/v1/queues/"+queue+"/receive", req, 200, &res)
	if res.Ack == nil {
		c.t.Fatalf("receive carrying acks answered no \"ack\"")
	}
	return res
}

// TestE2EReceiveCarriesAcks: a receive acknowledges the leases it carries
// before it takes messages, and answers their outcome as a batch ack would.
func TestE2EReceiveCarriesAcks(t *testing.T) {
	t.Parallel()
	c := start(t)
	c.must("POST", "/v1/queues/q/messages", `{"messages":[{"body":1},{"body":2},{"body":3}]}`, 201, nil)
	first := c.receive("q", courier.ReceiveRequest{Max: 2})
	if len(first) != 2 {
		t.Fatalf("first receive: %d messages, want 2", len(first))
	}
	res := c.receiveAcking("q", courier.ReceiveRequest{Max: 10,
		Ack: &courier.AckRequest{Leases: []string{first[0].Lease, "bogus", first[1].Lease}}})
	if len(res.Messages) != 1 || string(res.Messages[0].Body) != "3" {
		t.Fatalf("receive with acks handed out %+v, want the third message", res.Messages)
	}
	if res.Ack.Acked != 2 || len(res.Ack.Failed) != 1 || res.Ack.Failed[0].Lease != "bogus" ||
		(res.Ack.Failed[0].Code != courier.CodeInvalidArgument && res.Ack.Failed[0].Code != courier.CodeLeaseExpired) {
		t.Fatalf("ack outcome %+v, want 2 acked and bogus failed", res.Ack)
	}
	if s := c.stats("q"); s.AckedTotal != 2 || s.InFlight != 1 {
		t.Fatalf("stats after the receive: %+v", s)
	}
	// A single stale lease is listed too: the receive itself succeeded.
	res = c.receiveAcking("q", courier.ReceiveRequest{Ack: &courier.AckRequest{Lease: first[0].Lease}})
	if res.Ack.Acked != 0 || len(res.Ack.Failed) != 1 || res.Ack.Failed[0].Code != courier.CodeLeaseExpired {
		t.Fatalf("stale single lease: %+v, want it listed as lease_expired", res.Ack)
	}
	// Without acks, the answer has no "ack".
	data := c.must("POST", "/v1/queues/q/receive", `{}`, 200, nil)
	if strings.Contains(string(data), `"ack"`) {
		t.Fatalf("receive without acks answered %s", data)
	}
}

// TestE2EReceiveBadAckChangesNothing: an ack the ack endpoint would refuse
// makes the whole receive a 400, with nothing acked and nothing leased.
func TestE2EReceiveBadAckChangesNothing(t *testing.T) {
	t.Parallel()
	c := start(t)
	c.must("POST", "/v1/queues/q/messages", `{"messages":[{"body":1},{"body":2}]}`, 201, nil)
	held := c.receive("q", courier.ReceiveRequest{})[0].Lease
	for _, body := range []string{
		`{"ack":{}}`,
		`{"ack":{"leases":[]}}`,
		`{"ack":{"lease":"` + held + `","leases":["` + held + `"]}}`,
		`{"ack":{"leases":["` + held + `"],"results":[1,2]}}`,
		`{"ack":{"leases":["` + held + `"],"result":1}}`,
		`{"ack":{"leases":["` + held + `"],"extra":1}}`,
		`{"ack":["` + held + `"]}`,
		`{"max":0.5,"ack":{"leases":["` + held + `"]}}`,
		`{"wait":"-1s","ack":{"leases":["` + held + `"]}}`,
	} {
		var eb courier.ErrorBody
		c.must("POST", "/v1/queues/q/receive", body, 400, &eb)
		if eb.Error.Code != courier.CodeInvalidArgument || eb.Error.Message == "" {
			t.Errorf("%s: error %+v, want invalid_argument with a message", body, eb)
		}
	}
	if s := c.stats("q"); s.AckedTotal != 0 || s.InFlight != 1 || s.Ready != 1 {
		t.Fatalf("stats after refused receives: %+v, want one in flight and one ready", s)
	}
	c.must("POST", "/v1/queues/q/ack", courier.AckRequest{Lease: held}, 200, nil)
}

// TestE2EReceiveAckWithResult: a task's result rides on the receive.
func TestE2EReceiveAckWithResult(t *testing.T) {
	t.Parallel()
	c := start(t)
	var tk courier.Task
	c.must("POST", "/v1/queues/jobs/tasks", `{"body":{"n":1}}`, 202, &tk)
	m := c.receive("jobs", courier.ReceiveRequest{})[0]
	res := c.receiveAcking("jobs", courier.ReceiveRequest{
		Ack: &courier.AckRequest{Leases: []string{m.Lease}, Results: []json.RawMessage{json.RawMessage(`{"sum":2}`)}}})
	if res.Ack.Acked != 1 {
		t.Fatalf("ack outcome %+v", res.Ack)
	}
	c.must("GET", "/v1/tasks/"+tk.ID, nil, 200, &tk)
	if tk.State != "succeeded" || string(tk.Result) != `{"sum":2}` {
		t.Fatalf("task %+v, want succeeded with its result", tk)
	}
}

// TestE2EReceiveAcksBeforeWaiting: the acks of a long-poll are applied
// when it starts, not when it answers.
func TestE2EReceiveAcksBeforeWaiting(t *testing.T) {
	t.Parallel()
	c := start(t)
	c.must("POST", "/v1/queues/q/messages", `{"body":1}`, 201, nil)
	m := c.receive("q", courier.ReceiveRequest{})[0]
	done := make(chan courier.ReceiveResult, 1)
	go func() {
		var res courier.ReceiveResult
		status, data, err := c.call(context.Background(), "POST", "/v1/queues/q/receive",
			courier.ReceiveRequest{Wait: "20s", Ack: &courier.AckRequest{Lease: m.Lease}})
		if err != nil || status != 200 || json.Unmarshal(data, &res) != nil {
			t.Errorf("long-poll with an ack: %d %s %v", status, data, err)
		}
		done <- res
	}()
	for deadline := time.Now().Add(10 * time.Second); c.stats("q").AckedTotal != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the ack of a waiting receive was not applied")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case res := <-done:
		t.Fatalf("the receive answered before a message came: %+v", res)
	default:
	}
	c.must("POST", "/v1/queues/q/messages", `{"body":2}`, 201, nil)
	res := <-done
	if len(res.Messages) != 1 || string(res.Messages[0].Body) != "2" || res.Ack == nil || res.Ack.Acked != 1 {
		t.Fatalf("long-poll answer %+v", res)
	}
}

// TestE2EReceiveAckedWaitEndsEmpty: a long-poll whose acks were applied
// before it waited, and which no message ends, still answers their
// outcome when its wait runs out (the server syncs them then), and the
// acks hold.
func TestE2EReceiveAckedWaitEndsEmpty(t *testing.T) {
	t.Parallel()
	c := start(t)
	c.must("POST", "/v1/queues/q/messages", `{"messages":[{"body":1},{"body":2}]}`, 201, nil)
	ms := c.receive("q", courier.ReceiveRequest{Max: 2})
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second) // a wait for a sync that never comes fails here
	defer cancel()
	var res courier.ReceiveResult
	status, data, err := c.call(ctx, "POST", "/v1/queues/q/receive", courier.ReceiveRequest{Wait: "300ms",
		Ack: &courier.AckRequest{Leases: []string{ms[0].Lease, ms[1].Lease}}})
	if err != nil || status != 200 || json.Unmarshal(data, &res) != nil || res.Ack == nil {
		t.Fatalf("long-poll with acks: %d %s %v", status, data, err)
	}
	if len(res.Messages) != 0 || res.Ack.Acked != 2 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("long-poll with acks on an empty queue: %+v after %v; want no message, 2 acked, after its wait",
			res, time.Since(start))
	}
	if st := c.stats("q"); st.AckedTotal != 2 || st.InFlight != 0 {
		t.Fatalf("stats %+v, want 2 acked, none in flight", st)
	}
}
