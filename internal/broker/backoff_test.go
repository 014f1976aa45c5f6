package broker_test

import (
	"math"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

// rMax is the largest r below 1.
var rMax = math.Nextafter(1, 0)

func TestBackoffFormula(t *testing.T) {
	t.Parallel()
	bo := store.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2}
	for _, tc := range []struct {
		name    string
		bo      store.Backoff
		attempt int
		r       float64
		want    time.Duration
	}{
		{"attempt 1 is initial", bo, 1, 0, time.Second},
		{"attempt 2", bo, 2, 0, 2 * time.Second},
		{"attempt 3", bo, 3, 0, 4 * time.Second},
		{"attempt 6", bo, 6, 0, 32 * time.Second},
		{"attempt 7 capped", bo, 7, 0, time.Minute},
		{"attempt 0 is 1", bo, 0, 0, time.Second},
		{"negative attempt is 1", bo, -5, 0, time.Second},
		{"huge attempt capped", bo, 1 << 30, 0, time.Minute},
		{"max int attempt capped", bo, math.MaxInt, 0, time.Minute},
		{"multiplier 1 is constant", store.Backoff{Initial: time.Second, Max: time.Hour, Multiplier: 1}, 50, 0, time.Second},
		{"fractional multiplier", store.Backoff{Initial: time.Second, Max: time.Hour, Multiplier: 1.5}, 3, 0, 2250 * time.Millisecond},
		{"multiplier 100", store.Backoff{Initial: time.Millisecond, Max: broker.MaxBackoff, Multiplier: 100}, 3, 0, 10 * time.Second},
		{"max equals initial", store.Backoff{Initial: time.Second, Max: time.Second, Multiplier: 2}, 9, 0, time.Second},

		// Jitter moves the delay by up to ±Jitter of itself: r=0 is the
		// lowest, r=0.5 none, r→1 the highest.
		{"jitter r=0", store.Backoff{Initial: 10 * time.Second, Max: time.Hour, Multiplier: 2, Jitter: 0.2}, 1, 0, 8 * time.Second},
		{"jitter r=0.5", store.Backoff{Initial: 10 * time.Second, Max: time.Hour, Multiplier: 2, Jitter: 0.2}, 2, 0.5, 20 * time.Second},
		{"jitter r=0.75", store.Backoff{Initial: 10 * time.Second, Max: time.Hour, Multiplier: 2, Jitter: 0.2}, 1, 0.75, 11 * time.Second},
		{"jitter after the cap", store.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 0.2}, 100, 0, 48 * time.Second},
		{"full jitter r=0 is zero", store.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 1}, 3, 0, 0},

		// Never negative, and never wrapped around by the conversion to a
		// Duration, whatever the (unvalidated) inputs.
		{"max beyond Duration", store.Backoff{Initial: time.Second, Max: math.MaxInt64, Multiplier: 2}, 1000, 0.5, math.MaxInt64},
		{"max beyond Duration with jitter", store.Backoff{Initial: time.Second, Max: math.MaxInt64, Multiplier: 2, Jitter: 1}, 1000, rMax, math.MaxInt64},
		{"negative initial", store.Backoff{Initial: -time.Second, Max: time.Minute, Multiplier: 2}, 1, 0, 0},
		{"jitter above 1", store.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 3}, 1, 0, 0},
		{"NaN jitter", store.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: math.NaN()}, 1, 0, 0},
		{"zero initial", store.Backoff{Max: time.Minute, Multiplier: 2}, 1 << 20, 0, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := broker.Backoff(tc.bo, tc.attempt, tc.r); got != tc.want {
				t.Fatalf("Backoff(%+v, %d, %v) = %v, want %v", tc.bo, tc.attempt, tc.r, got, tc.want)
			}
		})
	}
}

// For r in [0,1) the delay stays within ±Jitter of the unjittered one.
func TestBackoffJitterBounds(t *testing.T) {
	t.Parallel()
	for _, jitter := range []float64{0, 0.1, 0.2, 0.5, 1} {
		bo := store.Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Minute, Multiplier: 3, Jitter: jitter}
		for attempt := 1; attempt <= 12; attempt++ {
			base := float64(broker.Backoff(store.Backoff{Initial: bo.Initial, Max: bo.Max, Multiplier: bo.Multiplier}, attempt, 0))
			lo, hi := time.Duration(base*(1-jitter)), time.Duration(base*(1+jitter))
			for _, r := range []float64{0, 0.001, 0.25, 0.5, 0.75, 0.999, rMax} {
				got := broker.Backoff(bo, attempt, r)
				if got < lo || got > hi {
					t.Errorf("jitter %v attempt %d r %v: %v outside [%v, %v]", jitter, attempt, r, got, lo, hi)
				}
			}
			if lo := broker.Backoff(bo, attempt, 0); lo != time.Duration(base*(1-jitter)) {
				t.Errorf("jitter %v attempt %d r 0: %v, want the lower bound %v", jitter, attempt, lo, time.Duration(base*(1-jitter)))
			}
			// r→1 reaches the upper bound, to within float rounding.
			if hi := broker.Backoff(bo, attempt, rMax); time.Duration(base*(1+jitter))-hi > time.Microsecond {
				t.Errorf("jitter %v attempt %d r→1: %v, want about %v", jitter, attempt, hi, time.Duration(base*(1+jitter)))
			}
		}
	}
}

// The delay never shrinks as attempts grow (without jitter) and never goes negative.
func TestBackoffMonotoneAndNonNegative(t *testing.T) {
	t.Parallel()
	bo := store.Backoff{Initial: time.Millisecond, Max: broker.MaxBackoff, Multiplier: broker.MaxMultiplier}
	prev := time.Duration(0)
	for _, attempt := range []int{-1, 0, 1, 2, 3, 4, 5, 10, 100, 1000, 1 << 20, math.MaxInt32, math.MaxInt} {
		got := broker.Backoff(bo, attempt, 0.5)
		if got < prev || got < 0 || got > bo.Max {
			t.Fatalf("attempt %d: %v (previous %v, max %v)", attempt, got, prev, bo.Max)
		}
		prev = got
	}
	if prev != bo.Max {
		t.Fatalf("largest attempt: %v, want the max %v", prev, bo.Max)
	}
}
