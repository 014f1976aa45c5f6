package pebblestore

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestWarnNoCgo: a build without cgo says so at open, one with it says nothing.
func TestWarnNoCgo(t *testing.T) {
	t.Parallel()
	for _, cgo := range []bool{false, true} {
		var buf bytes.Buffer
		warnNoCgo(slog.New(slog.NewTextHandler(&buf, nil)), cgo)
		if warned := strings.Contains(buf.String(), "level=WARN") && strings.Contains(buf.String(), "without cgo"); warned == cgo {
			t.Errorf("built with cgo %v: logged %q", cgo, buf.String())
		}
	}
}
