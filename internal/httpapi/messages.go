package httpapi

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

// sendRequest is the body of a send: one message, or {"messages": [...]}.
// The single message's fields are embedded, so one decode accepts both forms
// (and still rejects unknown fields); form tells which was sent.
type sendRequest struct {
	courier.NewMessage
	Messages []courier.NewMessage `json:"messages"`
}

// messages converts the request to broker messages; batch reports the form.
func (req *sendRequest) messages() (msgs []broker.Message, batch bool, err error) {
	if req.Messages == nil {
		m, err := brokerMessage(&req.NewMessage)
		return []broker.Message{m}, false, err
	}
	if !isZeroMessage(&req.NewMessage) {
		return nil, true, invalidf("a batch send has only the field \"messages\"; put every message's fields inside it")
	}
	if len(req.Messages) == 0 || len(req.Messages) > broker.MaxBatch {
		return nil, true, invalidf("messages must hold 1 to %d messages, got %d", broker.MaxBatch, len(req.Messages))
	}
	msgs = make([]broker.Message, len(req.Messages))
	for i := range req.Messages {
		if msgs[i], err = brokerMessage(&req.Messages[i]); err != nil {
			return nil, true, invalidf("messages[%d]: %v", i, err)
		}
	}
	return msgs, true, nil
}

func isZeroMessage(m *courier.NewMessage) bool {
	return m.Body == nil && m.BodyBase64 == nil && m.Headers == nil && m.Delay == "" &&
		m.NotBefore == nil && m.Priority == 0 && m.DedupKey == "" && m.Group == ""
}

// brokerMessage checks the form of one message; its ranges are the broker's.
//
// `"body": null` is a message whose body is the JSON value null: "any JSON
// value" includes it, and it is delivered back as `"body": null`. Only a
// missing "body" key counts as no body.
func brokerMessage(m *courier.NewMessage) (broker.Message, error) {
	out := broker.Message{Headers: m.Headers, Priority: m.Priority, DedupKey: m.DedupKey, Group: m.Group}
	switch {
	case m.Body != nil && m.BodyBase64 != nil:
		return out, invalidf("set body or body_base64, not both")
	case m.Body != nil:
		out.Body, out.Kind = m.Body, store.BodyJSON
	case m.BodyBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*m.BodyBase64)
		if err != nil {
			return out, invalidf("body_base64 is not valid standard base64 (RFC 4648, with padding)")
		}
		out.Body, out.Kind = b, store.BodyBinary
	default:
		return out, invalidf("a message needs body (any JSON value) or body_base64")
	}
	d, err := duration("delay", m.Delay)
	if err != nil {
		return out, err
	}
	out.Delay = d
	if m.NotBefore != nil {
		out.NotBefore = *m.NotBefore
	}
	return out, nil
}

func (a *api) send(w http.ResponseWriter, r *http.Request) error {
	var req sendRequest
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	msgs, batch, err := req.messages()
	if err != nil {
		return err
	}
	res, err := a.b.Send(r.Context(), r.PathValue("queue"), msgs)
	if err != nil {
		return err
	}
	if len(res) != len(msgs) {
		return fmt.Errorf("send: store answered %d ids for %d messages", len(res), len(msgs))
	}
	if !batch {
		return writeJSON(w, http.StatusCreated, courier.SendResult{ID: res[0].ID})
	}
	out := courier.SendBatchResult{Messages: make([]courier.SendResult, len(res))}
	for i := range res {
		out.Messages[i].ID = res[i].ID
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (a *api) receive(w http.ResponseWriter, r *http.Request) error {
	var body receiveRequest
	if err := a.decode(w, r, &body); err != nil {
		return err
	}
	req := body.ReceiveRequest
	o := broker.ReceiveOptions{Max: req.Max}
	var err error
	if o.Wait, err = duration("wait", req.Wait); err != nil {
		return err
	}
	if o.Visibility, err = duration("visibility", req.Visibility); err != nil {
		return err
	}
	if req.Max < 0 { // the broker reads 0 as the default; a negative is a mistake
		return invalidf("max must be 1 to %d, got %d", broker.MaxReceive, req.Max)
	}
	if req.Ack != nil {
		if o.Ack, o.AckResults, err = ackLeases(req.Ack); err != nil {
			return err
		}
	}
	// r.Context() ends when the client disconnects, which ends a long-poll.
	got, err := a.b.ReceiveAcking(r.Context(), r.PathValue("queue"), o)
	// A long-poll cut short by its context answers what it has, nothing: for a
	// client that left, no one reads it; when the server is stopping (Stop
	// cancels every request's context), the client gets a normal empty answer.
	if err != nil && !(len(got.Messages) == 0 && r.Context().Err() != nil && errors.Is(err, r.Context().Err())) {
		return err
	}
	// Messages a long-poll's wait brought to a client that has left are
	// handed back, and the answer aborted. Not those of its first lease: a
	// client that half-closes its connection after the request (some tools
	// do) reads as gone at once, and should still get what was there.
	if len(got.Messages) > 0 && got.Waited && clientLeft(r.Context()) {
		a.giveBack(r, got.Messages)
		panic(http.ErrAbortHandler) // no answer: the connection is gone
	}
	var acked *courier.AckResult
	if o.Ack != nil && got.Acked != nil {
		// Every outcome goes in the list, even of a single "lease": the
		// receive itself succeeded, so a stale lease cannot be its 409.
		out, err := ackOutcome(r, o.Ack, got.Acked)
		if err != nil {
			return err
		}
		acked = &out
	}
	setJSONHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	bw := answerWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() { bw.Reset(nil); answerWriters.Put(bw) }() // also after the abort below
	if err := writeMessages(bw, got.Messages, acked); err != nil {
		// Too late for an error answer: the status is out. Cut the connection
		// so the client sees a broken answer, never a short valid one.
		a.log.Error("encode receive answer", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
	_ = bw.Flush() // a failed write means the client is gone; the leases expire
	return nil
}

// answerWriters are the buffers receive answers are written through, reused:
// a new 32 KiB buffer for every receive was a sixth of the bytes a batched
// round trip allocated.
var answerWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// writeMessages streams {"messages":[...]} (never null), so an answer of many
// large messages is not held in memory twice, followed by "ack" when the
// receive carried acks. It is written by hand because a JSON body must come
// back as the exact bytes that were sent, and encoding/json rewrites a
// json.RawMessage (it compacts it and escapes <>&).
func writeMessages(w *bufio.Writer, msgs []store.Message, acked *courier.AckResult) error {
	w.WriteString(`{"messages":[`)
	for i := range msgs {
		if i > 0 {
			w.WriteByte(',')
		}
		if err := encodeMessage(w, &msgs[i]); err != nil {
			return err
		}
	}
	w.WriteByte(']')
	if acked != nil {
		b, err := json.Marshal(acked)
		if err != nil {
			return err
		}
		w.WriteString(`,"ack":`)
		w.Write(b)
	}
	w.WriteString("}\n")
	return nil // write errors stick in w and show at Flush: the client is gone
}

// ErrServerStopping is the cause with which the server cancels the
// contexts of the requests in flight when it stops (server.Stop).
var ErrServerStopping = errors.New("the server is stopping")

// clientLeft reports whether ctx, a request's, ended because its client
// went away: cancelled, and not by the server stopping (whose long-polls
// still answer what they have to clients that are there).
func clientLeft(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(context.Cause(ctx), ErrServerStopping) &&
		!errors.Is(ctx.Err(), context.DeadlineExceeded)
}

// Bounds of giveBack: its releases out at once (so that the store can
// share its commits among them), and how long all of them may take.
const (
	giveBackAtOnce  = 16
	giveBackTimeout = 10 * time.Second
)

// giveBack releases (uncounted, ready at once) the messages a long-poll
// took for a client that left before the answer: otherwise they would stay
// leased to no one until their visibility timeout, and the expiry would
// count an attempt. A release that fails leaves that message to expire;
// one refused because its lease has already ended is no failure.
func (a *api) giveBack(r *http.Request, msgs []store.Message) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), giveBackTimeout)
	defer cancel()
	queue := r.PathValue("queue")
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex // guards failed, last
		failed int
		last   error
	)
	out := make(chan struct{}, giveBackAtOnce)
	for _, m := range msgs {
		out <- struct{}{}
		wg.Go(func() {
			defer func() { <-out }()
			_, err := a.b.Release(ctx, queue, m.Lease, nil)
			if err != nil && !errors.Is(err, store.ErrLeaseExpired) {
				mu.Lock()
				failed, last = failed+1, err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed > 0 {
		a.log.Warn("could not release the messages of a receive whose client left; they come back when their leases expire",
			"queue", queue, "failed", failed, "of", len(msgs), "err", last)
	}
}
