package webhook

// This file uses only the standard library, so that the Go SDK (which may
// import nothing else) can take Sign and Verify over as they are.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of a webhook request.
const (
	HeaderSignature = "Courier-Signature"
	HeaderTaskID    = "Courier-Task-Id"
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock before Verify refuses it as a possible replay.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrNoSignature      = errors.New("webhook: no valid Courier-Signature header")
	ErrBadSignature     = errors.New("webhook: signature does not match")
	ErrStaleSignature   = errors.New("webhook: signature timestamp outside the tolerance")
	errSignatureNoValue = fmt.Errorf("%w: no t= or v1= value", ErrNoSignature)
)

// Sign returns the Courier-Signature header of body sent at t:
//
//	t=<unix seconds>,v1=<hex HMAC-SHA256 of "<unix seconds>.<body>">
//
// keyed by secret. Signing the timestamp with the body lets a receiver
// refuse an old request replayed by someone who captured it.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a webhook request as its receiver should: header is the
// Courier-Signature header, body the raw request body (before any JSON
// decoding), now the receiver's clock. It returns nil if one of the v1
// signatures is the HMAC of the timestamp and body under secret (more than
// one v1 is allowed, for a change of secrets) and the timestamp is within
// tolerance of now (zero: DefaultTolerance); otherwise ErrNoSignature,
// ErrBadSignature or ErrStaleSignature. Unknown keys in the header are
// ignored, so a future scheme can be added beside v1. A receiver should also
// treat deliveries as at-least-once: the same task may be announced twice
// (dedupe by Courier-Task-Id).
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
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
	want := mac(secret, ts, body)
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
