package bench

import (
	"context"
	"time"
)

// A sleeper waits for a duration or until its context ends, whichever comes
// first (then it returns the context's error). pace sleeps on one between
// calls; how precisely it wakes is the load generator's own lag.
type sleeper interface {
	sleep(ctx context.Context, d time.Duration) error
	close()
}

// timerSleeper sleeps on a Go timer.
type timerSleeper struct{ t *time.Timer }

func newTimerSleeper() sleeper { return &timerSleeper{t: time.NewTimer(time.Hour)} }

func (s *timerSleeper) sleep(ctx context.Context, d time.Duration) error {
	s.t.Reset(d)
	select {
	case <-s.t.C:
		return nil
	case <-ctx.Done():
		s.t.Stop()
		return ctx.Err()
	}
}

func (s *timerSleeper) close() { s.t.Stop() }
