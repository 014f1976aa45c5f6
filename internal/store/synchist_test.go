package store

import (
	"testing"
	"time"
)

// TestSyncHistogram: the difference of two snapshots counts what happened
// between them, and its quantiles are the upper bounds of the buckets that
// hold them.
func TestSyncHistogram(t *testing.T) {
	up := []time.Duration{100 * time.Microsecond, 200 * time.Microsecond, time.Millisecond}
	before := SyncHistogram{Upper: up, Cumulative: []uint64{5, 5, 6}, Count: 7, Sum: time.Millisecond}
	after := SyncHistogram{Upper: up, Cumulative: []uint64{5, 95, 105}, Count: 107, Sum: 21 * time.Millisecond}
	h := after.Since(before)
	if h.Count != 100 || h.Cumulative[0] != 0 || h.Cumulative[1] != 90 || h.Cumulative[2] != 99 || h.Sum != 20*time.Millisecond {
		t.Fatalf("Since = %+v", h)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 200 * time.Microsecond}, {0.9, 200 * time.Microsecond}, {0.95, time.Millisecond}, {0.99, time.Millisecond}, {1, time.Millisecond}} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if h := after.Since(SyncHistogram{}); h.Count != 107 || h.Cumulative[2] != 105 {
		t.Errorf("Since of an empty snapshot = %+v", h)
	}
	if got := (SyncHistogram{}).Quantile(0.5); got != 0 {
		t.Errorf("Quantile of nothing = %v, want 0", got)
	}
}

// TestSyncHistogramOverAndMax: the fsyncs past a bound, and the bucket of
// the slowest, from the counts of a run.
func TestSyncHistogramOverAndMax(t *testing.T) {
	up := []time.Duration{100 * time.Microsecond, 200 * time.Microsecond, time.Millisecond, 5 * time.Millisecond}
	h := SyncHistogram{Upper: up, Cumulative: []uint64{5, 90, 97, 97}, Count: 97}
	for _, c := range []struct {
		d    time.Duration
		want uint64
	}{{100 * time.Microsecond, 92}, {200 * time.Microsecond, 7}, {150 * time.Microsecond, 7}, {time.Millisecond, 0}, {time.Hour, 0}} {
		if got := h.Over(c.d); got != c.want {
			t.Errorf("Over(%v) = %d, want %d", c.d, got, c.want)
		}
	}
	if got := h.Max(); got != time.Millisecond {
		t.Errorf("Max = %v, want 1ms (the bucket of the slowest)", got)
	}
	past := SyncHistogram{Upper: up, Cumulative: []uint64{5, 90, 97, 97}, Count: 99}
	if got := past.Max(); got != 5*time.Millisecond {
		t.Errorf("Max with fsyncs past every bound = %v, want the last bound", got)
	}
	if got := past.Over(time.Hour); got != 2 {
		t.Errorf("Over past every bound = %d, want the 2 past the last", got)
	}
	first := SyncHistogram{Upper: up, Cumulative: []uint64{3, 3, 3, 3}, Count: 3}
	if got := first.Max(); got != 100*time.Microsecond {
		t.Errorf("Max of fsyncs all in the first bucket = %v", got)
	}
	if (SyncHistogram{}).Max() != 0 || (SyncHistogram{}).Over(time.Millisecond) != 0 {
		t.Error("an empty histogram has a max or fsyncs over a bound")
	}
}

// TestSyncHistogramSinceOtherHistogram: snapshots that are not of one
// histogram (another store's, one that started over, other buckets) never
// wrap around to counts near 2^64: the later one is taken whole.
func TestSyncHistogramSinceOtherHistogram(t *testing.T) {
	up := []time.Duration{100 * time.Microsecond, 200 * time.Microsecond, time.Millisecond}
	before := SyncHistogram{Upper: up, Cumulative: []uint64{5, 95, 105}, Count: 107}
	for _, after := range []SyncHistogram{
		{Upper: up, Cumulative: []uint64{1, 2, 3}, Count: 3},                               // started over
		{Upper: up[:2], Cumulative: []uint64{200, 300}, Count: 300},                        // other buckets
		{Upper: []time.Duration{1, 2, 3}, Cumulative: []uint64{200, 300, 400}, Count: 400}, // other bounds
		{}, // reports nothing
	} {
		h := after.Since(before)
		if h.Count != after.Count || len(h.Cumulative) != len(after.Cumulative) {
			t.Errorf("%+v.Since(%+v) = %+v; want the later one whole", after, before, h)
			continue
		}
		for i, c := range h.Cumulative {
			if c != after.Cumulative[i] {
				t.Errorf("%+v.Since(%+v) = %+v; want the later one whole", after, before, h)
				break
			}
		}
	}
}
