package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	courier "github.com/courierhq/courier"
)

// The fuzz targets feed arbitrary request bodies to the decoders, through
// the whole handler over a real store, and hold the API's promise: whatever
// the body, no panic and never a 5xx. Seeds are in testdata/fuzz.

// checkAnswer fails on a 5xx or an answer that is not JSON.
func checkAnswer(t *testing.T, path string, body []byte, code int, answer []byte) {
	t.Helper()
	if code >= 500 {
		t.Fatalf("POST %s %q: status %d: %s", path, body, code, answer)
	}
	if code != http.StatusNoContent && !json.Valid(answer) {
		t.Fatalf("POST %s %q: answer is not JSON: %q", path, body, answer)
	}
}

func FuzzDecodeSend(f *testing.F) {
	f.Add([]byte(`{"body":{"a":1},"headers":{"k":"v"},"delay":"1s","priority":5,"dedup_key":"d","group":"g"}`))
	f.Add([]byte(`{"messages":[{"body":null},{"body_base64":"AAE="}]}`))
	fx := setup(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fx := fx.with(t)
		w := fx.do("POST", sendURL, string(body))
		checkAnswer(t, sendURL, body, w.Code, w.Body.Bytes())
		if w.Code == http.StatusCreated && !strings.Contains(w.Body.String(), `"id"`) {
			t.Fatalf("201 without ids: %s", w.Body)
		}
	})
}

// FuzzDecodeReceive: LEASE in a body is replaced by a current lease, for
// the acks a receive carries.
func FuzzDecodeReceive(f *testing.F) {
	f.Add([]byte(`{"max":10,"wait":"20s","visibility":"30s"}`))
	f.Add([]byte(`{"max":2,"ack":{"leases":["LEASE","x"]}}`))
	f.Add([]byte(`{"ack":{"lease":"LEASE","result":{"a":1}}}`))
	f.Add([]byte(`{"ack":{"leases":["LEASE"],"results":[null]}}`))
	fx := setup(f)
	fx.must("POST", sendURL, `{"messages":[{"body":1},{"body":2},{"body":3}]}`, 201, nil)
	// The context is cancelled before the call, as by a stopping server, so
	// that a valid long-poll (which the fake clock would never end) answers
	// at once with what it has (a client that left would get no answer).
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(ErrServerStopping)
	f.Fuzz(func(t *testing.T, body []byte) {
		fx := fx.with(t)
		b := string(body)
		if strings.Contains(b, "LEASE") {
			b = strings.ReplaceAll(b, "LEASE", fx.lease())
		}
		w := fx.doCtx(ctx, "POST", recvURL, b)
		checkAnswer(t, recvURL, []byte(b), w.Code, w.Body.Bytes())
		if w.Code == http.StatusOK {
			var res courier.ReceiveResult
			if err := decodeStrict(w.Body.Bytes(), &res); err != nil || res.Messages == nil {
				t.Fatalf("receive answered %s (%v)", w.Body, err)
			}
		}
	})
}

// FuzzDecodeAck sends each body to ack, nack and extend. The text LEASE in a
// body is replaced by a lease that is current when the call is made, so the
// fuzzer reaches the paths that apply a lease as well as those that refuse one.
func FuzzDecodeAck(f *testing.F) {
	f.Add([]byte(`{"lease":"LEASE"}`))
	f.Add([]byte(`{"leases":["LEASE","x"]}`))
	f.Add([]byte(`{"lease":"LEASE","delay":"5s","error":"why","visibility":"1m"}`))
	f.Add([]byte(`{"lease":"LEASE","release":true,"delay":"0s"}`))
	fx := setup(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fx := fx.with(t)
		for _, op := range []string{"ack", "nack", "extend"} {
			b := string(body)
			if strings.Contains(b, "LEASE") {
				b = strings.ReplaceAll(b, "LEASE", fx.lease())
			}
			path := "/v1/queues/q/" + op
			w := fx.do("POST", path, b)
			checkAnswer(t, path, []byte(b), w.Code, w.Body.Bytes())
		}
	})
}

// lease sends a message and receives it, returning its lease.
func (f *fixture) lease() string {
	f.t.Helper()
	f.must("POST", sendURL, `{"body":0}`, 201, nil)
	var res courier.ReceiveResult
	f.must("POST", recvURL, `{"max":1}`, 200, &res)
	if len(res.Messages) != 1 {
		f.t.Fatalf("received %d messages, want 1", len(res.Messages))
	}
	return res.Messages[0].Lease
}

// FuzzDecodeSubmit: whatever the body of a submit, no panic, never a 5xx,
// and a 202 always carries a task object with its Location.
func FuzzDecodeSubmit(f *testing.F) {
	f.Add([]byte(`{"body":{"a":1},"notify":{"url":"https://example.com/h","secret":"s"},"reply_to":"r","result_ttl":"1h"}`))
	f.Add([]byte(`{"body_base64":"AAE=","headers":{"type":"x"},"delay":"1s","priority":-5,"dedup_key":"d","group":"g"}`))
	f.Add([]byte(`{"body":null,"notify":{"url":"http://[::1]:80/x"}}`))
	f.Add([]byte(`{"body":1,"notify":{"url":"ftp://x"},"result_ttl":"0s"}`))
	f.Add([]byte(`{"body":1,"notify":null,"reply_to":""}`))
	f.Add([]byte(`{"messages":[{"body":1}]}`))
	fx := setup(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fx := fx.with(t)
		w := fx.do("POST", tasksURL, string(body))
		checkAnswer(t, tasksURL, body, w.Code, w.Body.Bytes())
		if w.Code == http.StatusAccepted {
			var tk courier.Task
			if err := decodeStrict(w.Body.Bytes(), &tk); err != nil || tk.ID == "" ||
				w.Header().Get("Location") != "/v1/tasks/"+tk.ID || tk.State != courier.TaskQueued {
				t.Fatalf("202 answer %s, Location %q (%v)", w.Body, w.Header().Get("Location"), err)
			}
		}
	})
}

// FuzzDecodeProgress sends each body as a progress report of a running
// task; LEASE in it is replaced by the task's current lease.
func FuzzDecodeProgress(f *testing.F) {
	f.Add([]byte(`{"lease":"LEASE","progress":0.5,"message":"half","visibility":"1m"}`))
	f.Add([]byte(`{"lease":"LEASE","progress":1e308}`))
	fx := setup(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fx := fx.with(t)
		tk := fx.submit(`{"body":0}`)
		b := strings.ReplaceAll(string(body), "LEASE", fx.take().Lease)
		path := "/v1/tasks/" + tk.ID + "/progress"
		w := fx.do("POST", path, b)
		checkAnswer(t, path, []byte(b), w.Code, w.Body.Bytes())
	})
}
