//go:build !linux

package bench

// newSleeper returns a Go timer's sleeper where no timerfd is at hand.
func newSleeper() sleeper { return newTimerSleeper() }
