package bench

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// TestSleepers: each sleeper sleeps at least its duration, and a cancelled
// context ends a long sleep early with the context's error; on Linux the
// pacer's sleeper is the timerfd one.
func TestSleepers(t *testing.T) {
	sleepers := map[string]func() sleeper{"timer": newTimerSleeper, "default": newSleeper}
	for name, mk := range sleepers {
		t.Run(name, func(t *testing.T) {
			s := mk()
			defer s.close()
			for _, d := range []time.Duration{time.Nanosecond, 300 * time.Microsecond, 2 * time.Millisecond} {
				for range 3 { // a sleeper is reused, as pace reuses it
					start := time.Now()
					if err := s.sleep(t.Context(), d); err != nil {
						t.Fatalf("sleep(%v) = %v", d, err)
					}
					if got := time.Since(start); got < d {
						t.Fatalf("sleep(%v) returned after %v", d, got)
					}
				}
			}
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(20*time.Millisecond, cancel)
			start := time.Now()
			err := s.sleep(ctx, time.Minute)
			if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
				t.Fatalf("cancelled sleep = %v after %v, want context.Canceled at once", err, time.Since(start))
			}
		})
	}
	s := newSleeper()
	defer s.close()
	if _, ok := s.(*timerfdSleeper); runtime.GOOS == "linux" && !ok {
		t.Fatal("on Linux the pacer should sleep on a timerfd")
	}
}
