package broker

import (
	"math"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// retry is the one retry policy of courier, handed to the store for every
// nack and expired lease: dead-letter once attempt reaches max_attempts
// (0 = never), else wait the explicit delay or the backoff for this attempt.
func (b *Broker) retry(q store.QueueConfig, attempt int, explicit *time.Duration) (time.Duration, bool) {
	if q.MaxAttempts > 0 && attempt >= q.MaxAttempts {
		return 0, true
	}
	if explicit != nil {
		return *explicit, false
	}
	b.randMu.Lock()
	r := b.rnd.Float64()
	b.randMu.Unlock()
	return Backoff(q.Backoff, attempt, r), false
}

// Backoff is the delay after the attempt-th failure: Initial × Multiplier^(attempt-1)
// capped at Max, then moved by up to ±Jitter of itself, with r uniform in [0,1).
func Backoff(bo store.Backoff, attempt int, r float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := float64(bo.Initial) * math.Pow(bo.Multiplier, float64(attempt-1))
	if d > float64(bo.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(bo.Max)
	}
	d *= 1 + bo.Jitter*(2*r-1)
	switch {
	case !(d > 0): // also NaN
		return 0
	case d >= math.MaxInt64: // float64(math.MaxInt64) is 2^63: converting it would wrap to negative
		return math.MaxInt64
	}
	return time.Duration(d)
}
