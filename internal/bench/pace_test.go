package bench

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestPaceStartsNothingEarly: every call starts at or after its due time,
// in order of due time, and the schedule spans n-1 intervals.
func TestPaceStartsNothingEarly(t *testing.T) {
	var (
		mu   sync.Mutex
		dues []time.Time
	)
	const n, rate = 50, 2000.0
	lag, err := pace(t.Context(), n, rate, func(_ context.Context, due time.Time) error {
		if now := time.Now(); now.Before(due) {
			t.Errorf("call due at %v started %v early", due, due.Sub(now))
		}
		mu.Lock()
		dues = append(dues, due)
		mu.Unlock()
		return nil
	})
	if err != nil || lag.Count() != uint64(n) || len(dues) != n {
		t.Fatalf("pace = %d lags, %d calls, %v; want %d", lag.Count(), len(dues), err, n)
	}
	first, last := dues[0], dues[0]
	for _, d := range dues {
		first, last = minTime(first, d), maxTime(last, d)
	}
	if span, want := last.Sub(first), time.Duration(float64(n-1)/rate*float64(time.Second)); span != want {
		t.Fatalf("schedule spans %v, want %v", span, want)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
