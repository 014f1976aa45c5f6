package server_test

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/courierhq/courier/internal/gcfloor"
	"github.com/courierhq/courier/internal/server"
)

// gcPercent reads the collector's target without changing it for long.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestTuneGCAsServeRestores: the benchmarks' tuning raises the target and
// its restore func puts back what was there and stops the collection floor
// (it must return: an earlier version called itself until the stack
// overflowed).
func TestTuneGCAsServeRestores(t *testing.T) {
	t.Setenv("GOGC", "")
	old := debug.SetGCPercent(123)
	defer debug.SetGCPercent(old)
	restore := server.TuneGCAsServe()
	if got := gcPercent(); got < server.GCPercent {
		restore()
		t.Fatalf("GC percent while tuned: %d, want at least %d", got, server.GCPercent)
	}
	restore()
	if got := gcPercent(); got != 123 {
		t.Fatalf("GC percent after restore: %d, want 123", got)
	}
	stop, on := gcfloor.Start(1, os.Getenv) // one floor per process: free again?
	stop()
	if !on {
		t.Fatal("the collection floor still runs after restore")
	}
}
