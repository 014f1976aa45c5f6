package metrics

import (
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// TestRebucket: the exposed buckets take the count of the store's largest
// bucket within each bound, exact where the bounds meet, never above the
// true count where they do not.
func TestRebucket(t *testing.T) {
	ms := time.Millisecond
	h := store.SyncHistogram{
		Upper:      []time.Duration{ms / 10, ms / 5, ms / 2, ms, 7 * ms, 30 * ms},
		Cumulative: []uint64{1, 4, 9, 10, 12, 13},
		Count:      14, // one beyond the last bound
	}
	got := rebucket(h, []float64{.00005, .0002, .0005, .001, .005, .01, .025, 1})
	want := map[float64]uint64{.00005: 0, .0002: 4, .0005: 9, .001: 10, .005: 10, .01: 12, .025: 12, 1: 13}
	for b, w := range want {
		if got[b] != w {
			t.Errorf("bucket %v: %d, want %d", b, got[b], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d buckets, want %d", len(got), len(want))
	}
}
