package courier

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := map[string]time.Duration{
		"":               0,
		"0":              0,
		"12":             12 * time.Second,
		" 5 ":            5 * time.Second,
		"-3":             0,
		"99999999999999": 24 * time.Hour,
		"soon":           0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestCodeTable checks the table's generic codes per status, which error
// answers without a code of their own get.
func TestCodeTable(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{400: CodeInvalidArgument, 401: CodeUnauthenticated,
		403: CodePermissionDenied, 404: CodeNotFound, 405: CodeMethodNotAllowed, 409: CodeConflict,
		413: CodeTooLarge, 429: CodeRateLimited, 500: CodeInternal, 502: CodeUnavailable,
		503: CodeUnavailable, 504: CodeUnavailable, 507: CodeInternal, 418: ""} {
		if got := codeForStatus(status); got != want {
			t.Errorf("codeForStatus(%d) = %q, want %q", status, got, want)
		}
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if seen[c.code] {
			t.Errorf("code %s is in the table twice", c.code)
		}
		seen[c.code] = true
		if http.StatusText(c.status) == "" {
			t.Errorf("code %s has status %d, which is no HTTP status", c.code, c.status)
		}
	}
}
