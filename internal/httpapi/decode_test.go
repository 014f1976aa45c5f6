package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	courier "github.com/courierhq/courier"
)

// badCase is a request that must be refused with status and code, and a
// message containing msg (which names the field).
type badCase struct {
	name        string
	method, url string
	contentType string // "" = application/json when there is a body; "-" = none
	body        string
	status      int
	code        string
	msg         string
}

func (c badCase) run(t *testing.T, f *fixture) {
	t.Helper()
	r, _ := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
	switch c.contentType {
	case "":
		r.Header.Set("Content-Type", "application/json")
	case "-":
	default:
		r.Header.Set("Content-Type", c.contentType)
	}
	w := newRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != c.status {
		t.Fatalf("status %d, want %d; body %s", w.Code, c.status, w.Body)
	}
	e := errorOf(t, w)
	if e.Code != c.code || !strings.Contains(e.Message, c.msg) {
		t.Fatalf("error %+v, want code %s and a message containing %q", e, c.code, c.msg)
	}
}

const (
	inv      = courier.CodeInvalidArgument
	sendURL  = "/v1/queues/q/messages"
	recvURL  = "/v1/queues/q/receive"
	tooLarge = courier.CodeTooLarge
)

func batchOf(n int) string {
	return `{"messages":[` + strings.TrimSuffix(strings.Repeat(`{"body":1},`, n), ",") + `]}`
}

var badSends = []badCase{
	{name: "truncated", body: `{"body":`, msg: "ends in the middle"},
	{name: "syntax", body: `{"body":1,}`, msg: "not valid JSON"},
	{name: "not an object", body: `[{"body":1}]`, msg: "must be a JSON object, got array"},
	{name: "unknown field", body: `{"body":1,"bdy":2}`, msg: `unknown field "bdy"`},
	{name: "unknown field in batch", body: `{"messages":[{"body":1,"prio":2}]}`, msg: `unknown field "prio"`},
	{name: "priority type", body: `{"body":1,"priority":"high"}`, msg: `"priority" must be an integer`},
	{name: "priority fraction", body: `{"messages":[{"body":1,"priority":1.5}]}`, msg: `"messages.priority" must be an integer`},
	{name: "headers type", body: `{"body":1,"headers":{"a":1}}`, msg: `"headers"`},
	{name: "body and base64", body: `{"body":1,"body_base64":"AA=="}`, msg: "not both"},
	{name: "no body", body: `{"priority":1}`, msg: "needs body"},
	{name: "empty request", body: ``, contentType: "-", msg: "needs body"},
	{name: "bad base64", body: `{"body_base64":"!!!"}`, msg: "body_base64"},
	{name: "unpadded base64", body: `{"body_base64":"AA"}`, msg: "body_base64"},
	{name: "batch of 1001", body: batchOf(1001), msg: "1 to 1000 messages, got 1001"},
	{name: "empty batch", body: `{"messages":[]}`, msg: "1 to 1000 messages, got 0"},
	{name: "batch and single", body: `{"messages":[{"body":1}],"priority":2}`, msg: `only the field "messages"`},
	{name: "bad message in batch", body: `{"messages":[{"body":1},{"body":2,"body_base64":""}]}`, msg: "messages[1]: set body or body_base64"},
	{name: "negative delay", body: `{"body":1,"delay":"-1s"}`, msg: "delay must be"},
	{name: "absurd delay", body: `{"body":1,"delay":"1000000h"}`, msg: "delay must be"},
	{name: "delay syntax", body: `{"body":1,"delay":"abc"}`, msg: `delay must be a duration like "250ms", "30s" or "5m", got "abc"`},
	{name: "delay and not_before", body: `{"body":1,"delay":"1s","not_before":"2030-01-01T00:00:00Z"}`, msg: "not both"},
	{name: "not_before syntax", body: `{"body":1,"not_before":"tomorrow"}`, msg: "not_before must be an RFC 3339 time"},
	{name: "priority 101", body: `{"body":1,"priority":101}`, msg: "priority must be -100 to 100, got 101"},
	{name: "priority -101", body: `{"messages":[{"body":1},{"body":1,"priority":-101}]}`, msg: "messages[1]: priority must be -100 to 100"},
	{name: "trailing data", body: `{"body":1} {"body":2}`, msg: "data after the JSON object"},
	{name: "trailing brace", body: `{"body":1}}`, msg: "data after the JSON object"},
	{name: "text content type", contentType: "text/plain", body: `{"body":1}`, msg: "Content-Type must be application/json"},
	{name: "form content type", contentType: "application/x-www-form-urlencoded", body: `{"body":1}`, msg: "Content-Type"},
	{name: "no content type", contentType: "-", body: `{"body":1}`, msg: "Content-Type: application/json"},
	{name: "dedup key too long", body: `{"body":1,"dedup_key":"` + strings.Repeat("k", 257) + `"}`, msg: "dedup_key"},
	{name: "name of 81", url: "/v1/queues/" + strings.Repeat("n", 81) + "/messages", body: `{"body":1}`, msg: "queue name must be 1 to 80 characters, got 81"},
	{name: "name with space", url: "/v1/queues/a%20b/messages", body: `{"body":1}`, msg: "outside A-Z"},
	{name: "name with slash", url: "/v1/queues/a%2Fb/messages", body: `{"body":1}`, msg: "outside A-Z"},
	{name: "name with unicode", url: "/v1/queues/%C3%A9/messages", body: `{"body":1}`, msg: "outside A-Z"},
	{name: "over queue limit", body: `{"body":"` + strings.Repeat("x", 200) + `"}`, status: 413, code: tooLarge, msg: "the queue allows 100"},
	{name: "over queue limit in batch", body: `{"messages":[{"body":1},{"body_base64":"` + strings.Repeat("AAAA", 40) + `"}]}`, status: 413, code: tooLarge, msg: "messages[1]"},
	{name: "over server limit", body: `{"body":"` + strings.Repeat("x", 70<<10) + `"}`, status: 413, code: tooLarge, msg: "larger than 65536 bytes"},
	{name: "trailing data over server limit", body: `{"body":1}` + strings.Repeat(" ", 70<<10) + "x", status: 413, code: tooLarge, msg: "larger than"},
}

// TestBadSends: every malformed send is refused with a clear 4xx and stores nothing.
func TestBadSends(t *testing.T) {
	t.Parallel()
	f := setupWith(t, Options{MaxRequestBytes: 64 << 10})
	f.must("PUT", "/v1/queues/q", `{"max_message_bytes":100}`, 200, nil)
	before := f.queue("q")
	for _, c := range badSends {
		t.Run(c.name, func(t *testing.T) {
			c.method = "POST"
			if c.url == "" {
				c.url = sendURL
			}
			if c.status == 0 {
				c.status, c.code = 400, inv
			}
			c.run(t, f)
			if after := f.queue("q"); after.Stats != before.Stats {
				t.Fatalf("stats changed: %+v → %+v", before.Stats, after.Stats)
			}
		})
	}
	if names := f.queueNames(); !slices.Equal(names, []string{"q"}) {
		t.Fatalf("queues after bad sends: %v", names)
	}
}

// TestBadLeaseCalls: malformed receive, ack, nack and extend calls are
// refused and leave the message where it was.
func TestBadLeaseCalls(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.must("POST", sendURL, `{"body":1}`, 201, nil)
	var res courier.ReceiveResult
	f.must("POST", recvURL, `{"visibility":"1m"}`, 200, &res)
	lease := res.Messages[0].Lease
	before := f.queue("q")
	l := func(s string) string { return strings.ReplaceAll(s, "LEASE", lease) }
	cases := []badCase{
		{name: "receive max -1", url: recvURL, body: `{"max":-1}`, msg: "max must be 1 to 1000"},
		{name: "receive max 1001", url: recvURL, body: `{"max":1001}`, msg: "max must be 1 to 1000, got 1001"},
		{name: "receive max string", url: recvURL, body: `{"max":"3"}`, msg: `"max" must be an integer`},
		{name: "receive wait 61s", url: recvURL, body: `{"wait":"61s"}`, msg: "wait must be"},
		{name: "receive wait negative", url: recvURL, body: `{"wait":"-1s"}`, msg: "wait must be"},
		{name: "receive wait syntax", url: recvURL, body: `{"wait":"soon"}`, msg: "wait must be a duration"},
		{name: "receive visibility 13h", url: recvURL, body: `{"visibility":"13h"}`, msg: "visibility must be"},
		{name: "receive unknown", url: recvURL, body: `{"max_messages":3}`, msg: `unknown field "max_messages"`},
		{name: "ack neither", url: "/v1/queues/q/ack", body: `{}`, msg: "lease (one) or leases (a list) is required"},
		{name: "ack both", url: "/v1/queues/q/ack", body: l(`{"lease":"LEASE","leases":["LEASE"]}`), msg: "not both"},
		{name: "ack empty list", url: "/v1/queues/q/ack", body: `{"leases":[]}`, msg: "1 to 1000 leases, got 0"},
		{name: "ack list type", url: "/v1/queues/q/ack", body: `{"leases":"LEASE"}`, msg: `"leases" must be an array`},
		{name: "ack forged", url: "/v1/queues/q/ack", body: `{"lease":"forged"}`, msg: "not a lease token"},
		{name: "ack other queue", url: "/v1/queues/other/ack", body: l(`{"lease":"LEASE"}`), status: 404, code: courier.CodeQueueNotFound, msg: `queue "other" does not exist`},
		{name: "nack no lease", url: "/v1/queues/q/nack", body: `{"delay":"1s"}`, msg: "lease is required"},
		{name: "nack delay syntax", url: "/v1/queues/q/nack", body: l(`{"lease":"LEASE","delay":"1 s"}`), msg: "delay must be a duration"},
		{name: "nack delay negative", url: "/v1/queues/q/nack", body: l(`{"lease":"LEASE","delay":"-1s"}`), msg: "delay must be 0s to"},
		{name: "nack forged", url: "/v1/queues/q/nack", body: `{"lease":"AAAA"}`, msg: "not a lease token"},
		{name: "extend no lease", url: "/v1/queues/q/extend", body: `{}`, msg: "lease is required"},
		{name: "extend 13h", url: "/v1/queues/q/extend", body: l(`{"lease":"LEASE","visibility":"13h"}`), msg: "visibility must be"},
		{name: "extend forged", url: "/v1/queues/q/extend", body: `{"lease":"x.y.z"}`, msg: "not a lease token"},
		{name: "redrive max -1", url: "/v1/queues/q/redrive", body: `{"max":-1}`, msg: "max must be"},
		{name: "purge with body", url: "/v1/queues/q/purge", body: `{"all":true}`, msg: `unknown field "all"`},
		{name: "pause with body", url: "/v1/queues/q/pause", body: `[]`, msg: "must be a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.method = "POST"
			if c.status == 0 {
				c.status, c.code = 400, inv
			}
			c.run(t, f)
			if after := f.queue("q"); after.Stats != before.Stats || after.Paused {
				t.Fatalf("queue changed: %+v → %+v", before, after)
			}
		})
	}
	// The lease still works after all that.
	f.must("POST", "/v1/queues/q/ack", l(`{"lease":"LEASE"}`), 200, nil)
	// And now it is stale: 409, in a single ack, nack and extend.
	for _, op := range []string{"ack", "nack", "extend"} {
		badCase{method: "POST", url: "/v1/queues/q/" + op, body: l(`{"lease":"LEASE"}`),
			status: 409, code: courier.CodeLeaseExpired, msg: "another consumer"}.run(t, f)
	}
}

// TestBadQueueSettings: bad settings name their field and change nothing.
func TestBadQueueSettings(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.must("PUT", "/v1/queues/q", `{"max_attempts":7}`, 200, nil)
	before := f.queue("q")
	cases := []struct{ body, msg string }{
		{`{"visibility_timeout":"abc"}`, "visibility_timeout must be a duration"},
		{`{"visibility_timeout":"0s"}`, "visibility_timeout must be"},
		{`{"visibility_timeout":30}`, `"visibility_timeout" must be a string`},
		{`{"retention":"1000000h"}`, "retention must be"},
		{`{"dedup_window":"-5m"}`, "dedup_window must be"},
		{`{"max_attempts":-1}`, "max_attempts must be"},
		{`{"max_attempts":1001}`, "max_attempts must be"},
		{`{"max_message_bytes":0}`, "max_message_bytes must be"},
		{`{"max_message_bytes":99999999999}`, "max_message_bytes must be"},
		{`{"backoff":{"initial":"x"}}`, "backoff.initial must be a duration"},
		{`{"backoff":{"max":"1ms"}}`, "backoff.max must be"},
		{`{"backoff":{"multiplier":0}}`, "backoff.multiplier must be"},
		{`{"backoff":{"jitter":2}}`, "backoff.jitter must be"},
		{`{"backoff":{"jittr":0.1}}`, `unknown field "jittr"`},
		{`{"backoff":"fast"}`, `"backoff" must be an object`},
		{`{"dead_letter_queue":"q"}`, "dead_letter_queue cannot be the queue itself"},
		{`{"dead_letter_queue":"no way"}`, "dead_letter_queue"},
		{`{"visibility":"30s"}`, `unknown field "visibility"`},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			badCase{method: "PUT", url: "/v1/queues/q", body: c.body, status: 400, code: inv, msg: c.msg}.run(t, f)
			if after := f.queue("q"); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("queue changed: %+v → %+v", before, after)
			}
		})
	}
	badCase{method: "PUT", url: "/v1/queues/bad!name", body: `{}`, status: 400, code: inv, msg: "outside A-Z"}.run(t, f)
	badCase{method: "GET", url: "/v1/queues/nope", status: 404, code: courier.CodeQueueNotFound, msg: `queue "nope" does not exist`}.run(t, f)
	badCase{method: "DELETE", url: "/v1/queues/nope", status: 404, code: courier.CodeQueueNotFound, msg: `"nope"`}.run(t, f)
	if names := f.queueNames(); !slices.Equal(names, []string{"q"}) {
		t.Fatalf("queues: %v", names)
	}
}
