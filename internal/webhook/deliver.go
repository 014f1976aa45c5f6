package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/netguard"
	"github.com/courierhq/courier/internal/store"
)

const (
	maxDrain      = 64 << 10 // bytes of an answer read (to reuse the connection), the rest dropped
	maxErrorText  = 200      // bytes of an attempt's error text
	jitterPortion = 0.2      // a retry delay is shortened by up to this fraction
	userAgent     = "courier-webhook/1"
)

// payload is the body of a webhook: the task object of the HTTP API, with
// the same fields as courier.Task in the SDK (so a Go receiver can decode
// it into one) but without the webhook's own settings and state: the URL,
// the secret (never sent) and the delivery attempts.
type payload struct {
	ID              string          `json:"id"`
	Queue           string          `json:"queue"`
	State           string          `json:"state"`
	Attempt         int             `json:"attempt"`
	Progress        float64         `json:"progress"`
	ProgressMessage string          `json:"progress_message,omitempty"`
	Result          json.RawMessage `json:"result,omitempty"`
	Error           string          `json:"error,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	FinishedAt      *time.Time      `json:"finished_at,omitempty"`
	CancelRequested bool            `json:"cancel_requested"`
	ReplyTo         string          `json:"reply_to,omitempty"`
	ResultTTL       string          `json:"result_ttl"`
}

func payloadOf(t store.Task) payload {
	p := payload{ID: t.ID, Queue: t.Queue, State: string(t.State), Attempt: t.Attempt,
		Progress: t.Progress, ProgressMessage: t.ProgressMessage, Error: t.Error,
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(), CancelRequested: t.CancelRequested,
		ReplyTo: t.Request.ReplyTo, ResultTTL: t.Request.ResultTTL.String()}
	if len(t.Result) > 0 {
		p.Result = t.Result // valid JSON, checked at ack; Marshal checks again
	}
	if !t.FinishedAt.IsZero() {
		f := t.FinishedAt.UTC()
		p.FinishedAt = &f
	}
	return p
}

// newClient returns the HTTP client of deliveries: every dial goes through
// the guard, no proxy, no redirects, bounded answers.
func newClient(g *netguard.Guard, timeout time.Duration) (*http.Client, *http.Transport) {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: g.Control}
	tr := &http.Transport{
		Proxy:                  nil, // never the environment's: a proxy would dial past the guard
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: tr,
		// A redirect's target was never vetted by the submitter's check; the
		// dial check would hold, but a receiver that redirects is misconfigured:
		// the 3xx fails the attempt.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, tr
}

// permanentError fails an attempt and ends delivery: trying again cannot help.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// deliver makes one attempt at t's webhook and records it.
func (d *Dispatcher) deliver(ctx context.Context, t store.Task) {
	now := d.o.Clock.Now()
	status, err := d.post(ctx, t, now)
	if err != nil && ctx.Err() != nil {
		return // cut short by Stop: not the receiver's doing; tried again after a restart
	}
	a := store.WebhookAttempt{At: now, Status: status}
	var next time.Time
	if err != nil {
		a.Error = shortError(err)
		next = d.retryAt(t, now, err)
	}
	log := d.o.Logger.With("task", t.ID, "status", status)
	switch {
	case err == nil:
		log.Debug("webhook delivered")
	case next.IsZero():
		log.Warn("webhook not delivered; giving up", "err", a.Error, "attempts", len(t.Webhook.Attempts)+1)
	default:
		log.Info("webhook attempt failed; will retry", "err", a.Error, "next", next)
	}
	// Record what happened even if Stop comes now: the attempt was made.
	if rerr := d.src.RecordWebhook(context.WithoutCancel(ctx), t.ID, a, err == nil, next); rerr != nil {
		d.o.Logger.Error("webhooks: record attempt", "task", t.ID, "err", rerr)
	}
}

// post sends t's webhook and returns the answer's status (0 if none) and
// why the attempt failed, if it did.
func (d *Dispatcher) post(ctx context.Context, t store.Task, now time.Time) (int, error) {
	u, err := url.Parse(t.Request.NotifyURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 0, permanentError{errors.New("notify URL is not an http(s) URL")}
	}
	body, err := json.Marshal(payloadOf(t))
	if err != nil {
		return 0, permanentError{fmt.Errorf("encode task: %w", err)}
	}
	actx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, permanentError{errors.New("notify URL is not usable")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(courier.WebhookTaskIDHeader, t.ID)
	if t.Request.NotifySecret != "" {
		req.Header.Set(courier.WebhookSignatureHeader, courier.SignWebhook(t.Request.NotifySecret, now, body))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		// The attempt's deadline, or the transport's timers (set to the same
		// bound, so either may fire first): one outcome, one text.
		var ne net.Error
		if ctx.Err() == nil && (errors.Is(actx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()) {
			return 0, fmt.Errorf("timed out after %v", d.o.Timeout)
		}
		var ue *url.Error // its text holds the URL, which may hold a token: leave it out
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, netguard.ErrDenied) {
			return 0, permanentError{err}
		}
		return 0, err
	}
	_, derr := io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		if derr != nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
			// The answer was 2xx: the receiver has the task, whatever came after.
			d.o.Logger.Debug("webhook answer body cut short", "task", t.ID, "err", derr)
		}
		return resp.StatusCode, nil
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		return resp.StatusCode, fmt.Errorf("HTTP %d: redirects are not followed", resp.StatusCode)
	}
	return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
}

// retryAt returns when to try again after a failed attempt at now, or zero
// to give up: err is permanent, or the next attempt would come more than
// MaxAge after the task finished.
func (d *Dispatcher) retryAt(t store.Task, now time.Time, err error) time.Time {
	var pe permanentError
	if errors.As(err, &pe) {
		return time.Time{}
	}
	start := t.FinishedAt
	if start.IsZero() {
		start = now
	}
	// The store keeps the latest attempts only; past the cap it no longer
	// matters how many there were.
	next := now.Add(d.backoff(len(t.Webhook.Attempts)))
	if next.After(start.Add(d.o.MaxAge)) {
		return time.Time{}
	}
	return next
}

// backoff is the delay after the n+1-th failed attempt: MinBackoff × 2^n,
// capped at MaxBackoff, less up to jitterPortion of itself.
func (d *Dispatcher) backoff(n int) time.Duration {
	delay := d.o.MinBackoff
	for i := 0; i < n; i++ {
		if delay >= d.o.MaxBackoff/2 {
			delay = d.o.MaxBackoff
			break
		}
		delay *= 2
	}
	return delay - time.Duration(float64(delay)*jitterPortion*d.jitter())
}

func randFloat() float64 { return rand.Float64() }

// shortError is an attempt's error text: at most maxErrorText bytes of
// valid UTF-8.
func shortError(err error) string {
	s := err.Error()
	if len(s) <= maxErrorText {
		return s
	}
	s = s[:maxErrorText]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
