package cli

import (
	"slices"
	"strings"
	"testing"
)

// TestServeCORSOriginFlag: --cors-origin repeats (and takes comma lists),
// and a value that is not an origin is a usage error.
func TestServeCORSOriginFlag(t *testing.T) {
	t.Parallel()
	cmd := newServeCmd(&env{stdin: strings.NewReader(""), getenv: func(string) string { return "" }})
	if err := cmd.ParseFlags([]string{"--cors-origin", "https://app.example.com", "--cors-origin", "http://localhost:3000,*"}); err != nil {
		t.Fatal(err)
	}
	got, err := cmd.Flags().GetStringSlice("cors-origin")
	if want := []string{"https://app.example.com", "http://localhost:3000", "*"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("--cors-origin: %q %v, want %q", got, err, want)
	}
	r := courierCmd(t.Context(), t, "", strings.NewReader(""), "serve", "--cors-origin", "app.example.com", "--data", t.TempDir())
	if r.code != exitUsage || !strings.Contains(r.stderr, "cors origin") {
		t.Fatalf("bad origin: exit %d stderr %q", r.code, r.stderr)
	}
}
