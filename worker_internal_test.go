package courier

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestLeaseStart(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	vis := 30 * time.Second
	cases := []struct {
		answered time.Duration // after sending
		want     time.Duration // lease start, after sending
	}{
		{5 * time.Millisecond, 0},            // a prompt answer: from the send
		{10 * time.Second, 0},                // within a third of the visibility
		{19 * time.Second, 9 * time.Second},  // a long-poll that waited: shortly before the answer
		{60 * time.Second, 50 * time.Second}, // waited longer than the visibility
	}
	for _, tc := range cases {
		if got := leaseStart(t0, t0.Add(tc.answered), vis).Sub(t0); got != tc.want {
			t.Errorf("answered after %v: lease start %v, want %v", tc.answered, got, tc.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	if got := errorText(errors.New("")); got != "*errors.errorString" {
		t.Errorf("empty error: %q", got)
	}
	long := errors.New(strings.Repeat("€", 2000)) // 6000 bytes
	got := errorText(long)
	if len(got) > maxErrorText || len(got) < maxErrorText-3 || !utf8.ValidString(got) {
		t.Errorf("long error cut to %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}
