package courier

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxErrorBody bounds how much of an error answer the client reads: a
// misbehaving server or proxy must not make it buffer without limit.
const maxErrorBody = 64 << 10

// maxIdleConns is how many keep-alive connections a Client keeps to its server.
const maxIdleConns = 256

// Client calls a courier server's HTTP API. It is safe for concurrent use.
//
// Calls end when their context does: the client sets no timeouts of its own,
// so a long-poll Receive can wait as long as the server lets it. Give each
// call a context with a deadline, or configure one with WithHTTPClient.
type Client struct {
	base  string // the server's URL, without a trailing slash
	hc    *http.Client
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests through hc. A Timeout on
// hc also bounds long-poll receives, so keep it above the longest wait.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithToken sends token as `Authorization: Bearer <token>` on every call.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// NewClient returns a Client of the server at baseURL, e.g.
// "http://127.0.0.1:7070". A malformed URL surfaces as the error of the first
// call, so that NewClient can be used in variable declarations.
func NewClient(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/")}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		// A transport of its own, rather than http.DefaultTransport, so that
		// CloseIdleConnections closes this client's connections only.
		//
		// More idle connections than the default 2 per host: a client
		// talks to one server, and a Worker, a Producer and long-polls
		// awaiting tasks use many connections at once. With 2, each
		// request beyond them would open (and then close) a connection.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = maxIdleConns
		t.MaxIdleConnsPerHost = maxIdleConns
		c.hc = &http.Client{Transport: t}
	}
	return c
}

// CloseIdleConnections closes the client's keep-alive connections that are
// not in use. The Client stays usable; call this when done with it.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// queuePath is the path of a queue's resource, or of one of its actions.
func queuePath(name string, action ...string) (string, error) {
	if name == "" {
		return "", invalidArgument("queue name is empty")
	}
	p := "/v1/queues/" + url.PathEscape(name)
	for _, a := range action {
		p += "/" + a
	}
	return p, nil
}

// call sends in (if not nil) as JSON to path and decodes a 2xx answer into
// out (if not nil). An error answer becomes an *Error.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if a, ok := in.(jsonAppender); ok {
		if b, ok := a.appendJSON(nil); ok {
			body = bytes.NewReader(append(b, '\n')) // request_json.go
		}
	}
	if in != nil && body == nil {
		// Not json.Marshal: it would rewrite < > & in bodies as \u003c…,
		// and a body should arrive as it was written.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(in); err != nil {
			return fmt.Errorf("courier: encode request: %w", err)
		}
		body = &buf
	}
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header["Content-Type"] = jsonHeaderValue
	}
	req.Header["Accept"] = jsonHeaderValue
	resp, err := c.hc.Do(req)
	if err != nil {
		return err // a *url.Error naming method and URL; wraps ctx errors
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errorFrom(resp)
	}
	if out != nil {
		if err := decodeAnswer(resp.Body, out); err != nil {
			return fmt.Errorf("courier: decode answer of %s %s: %w", method, path, err)
		}
	}
	// Drain what is left (a newline, usually) so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return nil
}

// jsonHeaderValue is the value of a request's Content-Type and Accept,
// shared by every request: net/http only reads it (Header.Set would
// allocate a slice for each header of each call). A RoundTripper or
// CheckRedirect given by WithHTTPClient must not write into it, as
// http.RoundTripper's contract already forbids changing the request.
var jsonHeaderValue = []string{"application/json"}

// decodeAnswer decodes the JSON value at the start of body into out. The
// answers of a receive, a batch send, a batch submit and a task take a fast
// path (receive_json.go, send_json.go, task_json.go) when they can.
func decodeAnswer(body io.Reader, out any) error {
	return decodeAnswerUpTo(body, out, maxFastAnswer)
}

// decodeAnswerUpTo is decodeAnswer with the fast paths for answers of at
// most limit bytes.
func decodeAnswerUpTo(body io.Reader, out any, limit int) error {
	var fast func([]byte) bool
	switch res := out.(type) {
	case *receiveInto:
		fast = func(data []byte) bool { return decodeReceive(data, res.res, res.room) }
		out = res.res
	case *SendResult:
		fast = func(data []byte) bool { return decodeSend(data, res) }
	case *SendBatchResult:
		fast = func(data []byte) bool { return decodeSendBatch(data, res) }
		body = io.LimitReader(body, maxSendAnswer) // a thousand ids: a misbehaving server must not fill memory
	case *TaskList:
		fast = func(data []byte) bool { return decodeTaskList(data, res) }
	case *Task:
		fast = func(data []byte) bool { return decodeTaskAnswer(data, res) }
	}
	if fast == nil {
		return json.NewDecoder(body).Decode(out)
	}
	buf := answerBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledAnswer {
			buf.Reset()
			answerBufs.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(io.LimitReader(body, int64(limit)+1)); err != nil {
		return err
	}
	if buf.Len() > limit {
		// Larger than the answers the fast paths are for: encoding/json
		// reads it as it comes, up to the end of its value, as it reads
		// every other answer; a server that sends more is not read further.
		return json.NewDecoder(io.MultiReader(bytes.NewReader(buf.Bytes()), body)).Decode(out)
	}
	if fast(buf.Bytes()) {
		return nil
	}
	return json.NewDecoder(bytes.NewReader(buf.Bytes())).Decode(out)
}

// answerBufs are the buffers answers are read into for their fast paths,
// reused: read by io.ReadAll, which grows its buffer by doubling from 512
// bytes, an answer of a hundred messages was copied six times and took
// twice its size. Nothing decoded points into the buffer: both decoders
// copy what they keep.
var answerBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxFastAnswer is the largest answer read whole for a fast path: above
// the largest receive's (16 MiB of bodies, some in base64), so that only a
// batch submit's answer holding many large results, or a misbehaving
// server, goes past it.
const maxFastAnswer = 32 << 20

// maxPooledAnswer is the largest buffer kept for reuse.
const maxPooledAnswer = 4 << 20

// maxSendAnswer bounds what is read of a batch send's answer: its ids.
const maxSendAnswer = 1 << 20

// receiveInto is what a receive's answer is decoded into: its result, and
// room for how many messages to make when some come, so that decoding a
// full answer does not grow the slice by doubling.
type receiveInto struct {
	res  *ReceiveResult
	room int
}

// request makes a request of path with the client's credentials.
func (c *Client) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("courier: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// errorFrom turns an error answer into an *Error. An answer that is not the
// API's error body (from a proxy, say) keeps its status and takes the
// status's generic code.
func errorFrom(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var eb ErrorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
	} else {
		e.Code = codeForStatus(resp.StatusCode)
		e.Message = strings.TrimSpace(string(raw))
		if len(e.Message) > 200 || !isText(e.Message) {
			e.Message = ""
		}
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// isText reports whether s is short printable text worth showing to people.
func isText(s string) bool {
	for _, r := range s {
		if r < ' ' && r != '\n' && r != '\t' || r == 0x7f || r == '\uFFFD' {
			return false
		}
	}
	return true
}

// PutQueue creates the queue name, or updates its settings. Nil fields of s
// keep their current values (the defaults, for a new queue).
func (c *Client) PutQueue(ctx context.Context, name string, s QueueSettings) (Queue, error) {
	var q Queue
	p, err := queuePath(name)
	if err != nil {
		return q, err
	}
	return q, c.call(ctx, http.MethodPut, p, s, &q)
}

// GetQueue returns the queue name with its settings and stats.
func (c *Client) GetQueue(ctx context.Context, name string) (Queue, error) {
	var q Queue
	p, err := queuePath(name)
	if err != nil {
		return q, err
	}
	return q, c.call(ctx, http.MethodGet, p, nil, &q)
}

// ListQueues returns every queue.
func (c *Client) ListQueues(ctx context.Context) ([]Queue, error) {
	var l QueueList
	err := c.call(ctx, http.MethodGet, "/v1/queues", nil, &l)
	return l.Queues, err
}

// DeleteQueue deletes the queue name and its messages.
func (c *Client) DeleteQueue(ctx context.Context, name string) error {
	p, err := queuePath(name)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodDelete, p, nil, nil)
}

// PurgeQueue drops every ready and delayed message of a queue and says how
// many it dropped. Messages in flight stay.
func (c *Client) PurgeQueue(ctx context.Context, name string) (int, error) {
	var r PurgeResult
	p, err := queuePath(name, "purge")
	if err != nil {
		return 0, err
	}
	err = c.call(ctx, http.MethodPost, p, nil, &r)
	return r.Purged, err
}

// PauseQueue stops a queue from handing out messages (it still takes sends)
// and returns the queue as it is now.
func (c *Client) PauseQueue(ctx context.Context, name string) (Queue, error) {
	return c.setPaused(ctx, name, "pause")
}

// ResumeQueue lets a paused queue hand out messages again, and returns it.
func (c *Client) ResumeQueue(ctx context.Context, name string) (Queue, error) {
	return c.setPaused(ctx, name, "resume")
}

func (c *Client) setPaused(ctx context.Context, name, action string) (Queue, error) {
	var q Queue
	p, err := queuePath(name, action)
	if err != nil {
		return q, err
	}
	return q, c.call(ctx, http.MethodPost, p, nil, &q)
}

// Redrive moves up to max of queue's dead letters back into it (max 0: the
// server's default) and says how many it moved.
func (c *Client) Redrive(ctx context.Context, queue string, max int) (int, error) {
	var r RedriveResult
	p, err := queuePath(queue, "redrive")
	if err != nil {
		return 0, err
	}
	err = c.call(ctx, http.MethodPost, p, RedriveRequest{Max: max}, &r)
	return r.Moved, err
}

// Send stores one message in queue and returns its id. A send with the
// DedupKey of a recent message returns that message's id instead.
func (c *Client) Send(ctx context.Context, queue string, m NewMessage) (string, error) {
	var r SendResult
	p, err := queuePath(queue, "messages")
	if err != nil {
		return "", err
	}
	err = c.call(ctx, http.MethodPost, p, m, &r)
	return r.ID, err
}

// SendBatch stores up to 1000 messages in queue, all or none, and returns
// their ids in order.
func (c *Client) SendBatch(ctx context.Context, queue string, msgs []NewMessage) ([]string, error) {
	var r SendBatchResult
	p, err := queuePath(queue, "messages")
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, invalidArgument("a batch carries at least one message")
	}
	if err := c.call(ctx, http.MethodPost, p, SendBatch{Messages: msgs}, &r); err != nil {
		return nil, err
	}
	ids := make([]string, len(r.Messages))
	for i, m := range r.Messages {
		ids[i] = m.ID
	}
	return ids, nil
}

// Receive leases up to r.Max messages of queue. With r.Wait it long-polls:
// it answers as soon as a message is available, or empty when the wait
// ends. Canceling ctx abandons the wait at once.
func (c *Client) Receive(ctx context.Context, queue string, r ReceiveRequest) ([]Message, error) {
	res, err := c.ReceiveAcking(ctx, queue, r)
	return res.Messages, err
}

// ReceiveAcking is Receive for a request that also acknowledges leases
// (r.Ack): the server applies them before it takes messages, in the same
// durable change, and the answer's Ack says what became of each. If the
// call fails, the acks may or may not have been applied.
func (c *Client) ReceiveAcking(ctx context.Context, queue string, r ReceiveRequest) (ReceiveResult, error) {
	var res ReceiveResult
	p, err := queuePath(queue, "receive")
	if err != nil {
		return res, err
	}
	err = c.call(ctx, http.MethodPost, p, r, &receiveInto{&res, min(max(r.Max, 0), maxReceive)})
	return res, err
}

// Ack acknowledges one message: it is done and gone. A lease that has
// expired answers an error matching ErrLeaseExpired.
func (c *Client) Ack(ctx context.Context, queue, lease string) error {
	p, err := queuePath(queue, "ack")
	if err != nil {
		return err
	}
	if lease == "" {
		return invalidArgument("lease is empty")
	}
	return c.call(ctx, http.MethodPost, p, AckRequest{Lease: lease}, nil)
}

// AckBatch acknowledges many messages. Every valid lease is applied; the
// others are listed in the result's Failed, with no error returned.
func (c *Client) AckBatch(ctx context.Context, queue string, leases []string) (AckResult, error) {
	var r AckResult
	p, err := queuePath(queue, "ack")
	if err != nil {
		return r, err
	}
	if len(leases) == 0 {
		return r, invalidArgument("a batch ack carries at least one lease")
	}
	return r, c.call(ctx, http.MethodPost, p, AckRequest{Leases: leases}, &r)
}

// Nack hands a message back: at once, after r.Delay, or (Delay empty) after
// the queue's backoff for its attempt. At the queue's max attempts it goes to
// the dead-letter queue instead. The result says which happened.
func (c *Client) Nack(ctx context.Context, queue string, r NackRequest) (NackResult, error) {
	var res NackResult
	p, err := queuePath(queue, "nack")
	if err != nil {
		return res, err
	}
	if r.Lease == "" {
		return res, invalidArgument("lease is empty")
	}
	return res, c.call(ctx, http.MethodPost, p, r, &res)
}

// Extend keeps a lease for r.Visibility from now (empty: the queue's
// visibility timeout) and returns its new expiry.
func (c *Client) Extend(ctx context.Context, queue string, r ExtendRequest) (time.Time, error) {
	var res ExtendResult
	p, err := queuePath(queue, "extend")
	if err != nil {
		return time.Time{}, err
	}
	if r.Lease == "" {
		return time.Time{}, invalidArgument("lease is empty")
	}
	err = c.call(ctx, http.MethodPost, p, r, &res)
	return res.LeaseExpiresAt, err
}

// JSONBody encodes v as a message body, for NewMessage.Body.
func JSONBody(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("courier: encode body: %w", err)
	}
	return b, nil
}

// BinaryBody encodes bytes as a message body, for NewMessage.BodyBase64.
func BinaryBody(b []byte) *string {
	s := base64.StdEncoding.EncodeToString(b)
	return &s
}

// BodyBytes returns a delivered message's body as it was sent: the JSON text
// of a JSON body, or the decoded bytes of a binary one.
func (m Message) BodyBytes() ([]byte, error) {
	if m.BodyBase64 != nil {
		b, err := base64.StdEncoding.DecodeString(*m.BodyBase64)
		if err != nil {
			return nil, fmt.Errorf("courier: message %s: body_base64: %w", m.ID, err)
		}
		return b, nil
	}
	return m.Body, nil
}
