package store

import (
	"testing"
	"time"
)

// TestEngineWorkSince: the difference of two snapshots is the work between
// them; a before that is not an earlier snapshot counted none of it.
func TestEngineWorkSince(t *testing.T) {
	t.Parallel()
	before := EngineWork{Flushes: 2, FlushTime: time.Second, Compactions: 5, CompactionTime: 3 * time.Second, BytesWritten: 100}
	after := EngineWork{Flushes: 3, FlushTime: 1500 * time.Millisecond, Compactions: 9, CompactionTime: 4 * time.Second, BytesWritten: 160}
	want := EngineWork{Flushes: 1, FlushTime: 500 * time.Millisecond, Compactions: 4, CompactionTime: time.Second, BytesWritten: 60}
	if got := after.Since(before); got != want {
		t.Errorf("Since = %+v, want %+v", got, want)
	}
	if got := want.Time(); got != 1500*time.Millisecond {
		t.Errorf("Time = %v, want 1.5s", got)
	}
	if got := after.Since(EngineWork{}); got != after {
		t.Errorf("Since of nothing = %+v, want %+v", got, after)
	}
	// Another engine's (or one reopened): some count went down.
	later := EngineWork{Flushes: 1, FlushTime: 2 * time.Second, Compactions: 9, CompactionTime: 5 * time.Second, BytesWritten: 200}
	if got := later.Since(before); got != later {
		t.Errorf("Since of a snapshot that is not earlier = %+v, want %+v whole", got, later)
	}
}
