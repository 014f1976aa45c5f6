package courier

// Webhooks: a task submitted with "notify" is announced by a POST of the
// task object to its URL, signed with the task's secret. The server signs
// with SignWebhook; a receiver checks with VerifyWebhook (or ReadWebhook).

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a webhook request.
const (
	WebhookSignatureHeader = "Courier-Signature"
	WebhookTaskIDHeader    = "Courier-Task-Id"
)

// DefaultWebhookTolerance is how far a signature's timestamp may be from
// the receiver's clock before VerifyWebhook refuses it as a possible replay.
const DefaultWebhookTolerance = 5 * time.Minute

// Errors of VerifyWebhook.
var (
	ErrNoSignature      = errors.New("courier: webhook: no valid Courier-Signature header")
	ErrBadSignature     = errors.New("courier: webhook: signature does not match")
	ErrStaleSignature   = errors.New("courier: webhook: signature timestamp outside the tolerance")
	errSignatureNoValue = fmt.Errorf("%w: no t= or v1= value", ErrNoSignature)
)

// SignWebhook returns the Courier-Signature header of body sent at t:
//
//	t=<unix seconds>,v1=<hex HMAC-SHA256 of "<unix seconds>.<body>">
//
// keyed by secret. Signing the timestamp with the body lets a receiver
// refuse an old request replayed by someone who captured it.
func SignWebhook(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(webhookMAC(secret, ts, body))
}

func webhookMAC(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifyWebhook checks a webhook request as its receiver should: header is the
// Courier-Signature header, body the raw request body (before any JSON
// decoding), now the receiver's clock. It returns nil if one of the v1
// signatures is the HMAC of the timestamp and body under secret (more than
// one v1 is allowed, for a change of secrets) and the timestamp is within
// tolerance of now (zero: DefaultWebhookTolerance); otherwise ErrNoSignature,
// ErrBadSignature or ErrStaleSignature. Unknown keys in the header are
// ignored, so a future scheme can be added beside v1. A receiver should also
// treat deliveries as at-least-once: the same task may be announced twice
// (dedupe by Courier-Task-Id).
func VerifyWebhook(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	var ts string
	var sigs [][]byte
	for _, kv := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return ErrNoSignature
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: more than one t=", ErrNoSignature)
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: v1 is not a hex SHA-256 HMAC", ErrNoSignature)
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return errSignatureNoValue
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: t is not a number of seconds", ErrNoSignature)
	}
	want := webhookMAC(secret, ts, body)
	match := false
	for _, sig := range sigs {
		match = hmac.Equal(sig, want) || match // constant time: compare them all
	}
	if !match {
		return ErrBadSignature
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: sent %v ago", ErrStaleSignature, age.Round(time.Second))
	}
	return nil
}

// maxWebhookBody bounds the body ReadWebhook reads: a task object with a
// result of the largest size a server takes.
const maxWebhookBody = 32 << 20

// ReadWebhook reads and checks a webhook request as its receiver's handler
// should: it reads the body (at most 32 MiB), verifies its signature under
// secret against the local clock (VerifyWebhook, DefaultWebhookTolerance),
// and decodes the task object it announces. Answer 2xx once the outcome is
// safely yours; anything else is retried. The same task may be announced
// more than once: dedupe by its ID.
func ReadWebhook(r *http.Request, secret string) (Task, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody+1))
	if err != nil {
		return Task{}, fmt.Errorf("courier: webhook: read body: %w", err)
	}
	if len(body) > maxWebhookBody {
		return Task{}, fmt.Errorf("courier: webhook: body over %d bytes", maxWebhookBody)
	}
	if err := VerifyWebhook(secret, r.Header.Get(WebhookSignatureHeader), body, time.Now(), 0); err != nil {
		return Task{}, err
	}
	var t Task
	if err := json.Unmarshal(body, &t); err != nil {
		return Task{}, fmt.Errorf("courier: webhook: decode task: %w", err)
	}
	return t, nil
}
