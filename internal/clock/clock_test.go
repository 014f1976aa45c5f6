package clock_test

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fired reports whether tm has fired, and at what time, without blocking.
func fired(tm clock.Timer) (time.Time, bool) {
	select {
	case at := <-tm.C():
		return at, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimerFiresAtDeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		move func(f *clock.Fake)
	}{
		{"Advance", func(f *clock.Fake) { f.Advance(time.Nanosecond) }},
		{"Set", func(f *clock.Fake) { f.Set(t0.Add(10 * time.Second)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := clock.NewFake(t0)
			tm := f.NewTimer(10 * time.Second)
			f.Advance(10*time.Second - time.Nanosecond)
			if at, ok := fired(tm); ok {
				t.Fatalf("fired at %v, before its deadline", at)
			}
			tc.move(f) // reaches the deadline exactly
			at, ok := fired(tm)
			if !ok {
				t.Fatal("not fired at its deadline")
			}
			if want := t0.Add(10 * time.Second); !at.Equal(want) {
				t.Fatalf("fired with %v, want %v", at, want)
			}
			if f.Timers() != 0 {
				t.Fatalf("Timers() = %d after firing, want 0", f.Timers())
			}
			f.Advance(time.Hour)
			if _, ok := fired(tm); ok {
				t.Fatal("fired twice")
			}
		})
	}
}

func TestFakeFiresOnlyDueTimers(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(t0)
	a, b, c := f.NewTimer(time.Second), f.NewTimer(2*time.Second), f.NewTimer(3*time.Second)
	if f.Timers() != 3 {
		t.Fatalf("Timers() = %d, want 3", f.Timers())
	}
	f.Advance(2500 * time.Millisecond) // past a's and b's deadlines at once
	for name, tm := range map[string]clock.Timer{"a": a, "b": b} {
		if at, ok := fired(tm); !ok || !at.Equal(t0.Add(2500*time.Millisecond)) {
			t.Errorf("timer %s: fired=%v at %v, want fired at the new time", name, ok, at)
		}
	}
	if _, ok := fired(c); ok {
		t.Error("timer c fired before its deadline")
	}
	if f.Timers() != 1 {
		t.Errorf("Timers() = %d, want 1", f.Timers())
	}
}

func TestFakeStop(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(t0)
	tm := f.NewTimer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of a pending timer = false, want true")
	}
	if tm.Stop() {
		t.Fatal("second Stop = true, want false")
	}
	f.Advance(time.Hour)
	if _, ok := fired(tm); ok {
		t.Fatal("a stopped timer fired")
	}

	done := f.NewTimer(time.Second)
	f.Advance(time.Second)
	if done.Stop() {
		t.Fatal("Stop of a fired timer = true, want false")
	}
	if _, ok := fired(done); !ok {
		t.Fatal("Stop after firing drained the channel")
	}
}

func TestFakeNonPositiveDurationFiresAtOnce(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, -time.Nanosecond, -time.Hour} {
		f := clock.NewFake(t0)
		added := f.TimerAdded()
		tm := f.NewTimer(d)
		at, ok := fired(tm)
		if !ok || !at.Equal(t0) {
			t.Errorf("NewTimer(%v): fired=%v at %v, want fired at once with %v", d, ok, at, t0)
		}
		if tm.Stop() {
			t.Errorf("NewTimer(%v): Stop = true, want false (already fired)", d)
		}
		if f.Timers() != 0 {
			t.Errorf("NewTimer(%v): Timers() = %d, want 0", d, f.Timers())
		}
		select { // it never blocks anyone, so it does not count as a wait
		case <-added:
			t.Errorf("NewTimer(%v) closed TimerAdded", d)
		default:
		}
	}
}

func TestFakeSetNeverMovesBackwards(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(t0)
	tm := f.NewTimer(time.Second)
	f.Set(t0.Add(-time.Hour))
	if got := f.Now(); !got.Equal(t0) {
		t.Fatalf("Now() = %v after Set to the past, want %v", got, t0)
	}
	f.Advance(-time.Minute)
	if got := f.Now(); !got.Equal(t0) {
		t.Fatalf("Now() = %v after Advance(-1m), want %v", got, t0)
	}
	if _, ok := fired(tm); ok {
		t.Fatal("timer fired though time did not move forward")
	}
}

func TestFakeIsUTC(t *testing.T) {
	t.Parallel()
	zone := time.FixedZone("UTC+3", 3*60*60)
	f := clock.NewFake(t0.In(zone))
	if loc := f.Now().Location(); loc != time.UTC {
		t.Fatalf("NewFake: Now() location = %v, want UTC", loc)
	}
	f.Set(t0.Add(time.Hour).In(zone))
	if got := f.Now(); got.Location() != time.UTC || !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Set: Now() = %v, want %v in UTC", got, t0.Add(time.Hour))
	}
}

func TestFakeTimerAdded(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(t0)
	added := f.TimerAdded()
	select {
	case <-added:
		t.Fatal("TimerAdded closed before any timer was created")
	default:
	}
	done := make(chan struct{})
	go func() { // the code under test, blocking on a timer in its own goroutine
		defer close(done)
		<-f.NewTimer(time.Minute).C()
	}()
	<-added // closed once the goroutine has made its timer
	if f.Timers() != 1 {
		t.Fatalf("Timers() = %d after TimerAdded, want 1", f.Timers())
	}
	next := f.TimerAdded()
	select {
	case <-next:
		t.Fatal("the next TimerAdded channel is already closed")
	default:
	}
	f.Advance(time.Minute)
	<-done
}

// Advance is atomic: concurrent advances all count.
func TestFakeConcurrentAdvance(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(t0)
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Advance(time.Millisecond)
		}()
	}
	wg.Wait()
	if got, want := f.Now(), t0.Add(n*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Now() = %v after %d concurrent Advance(1ms), want %v", got, n, want)
	}
}

func TestReal(t *testing.T) {
	t.Parallel()
	c := clock.Real()
	if loc := c.Now().Location(); loc != time.UTC {
		t.Fatalf("Real().Now() location = %v, want UTC", loc)
	}
	if tm := c.NewTimer(time.Hour); !tm.Stop() {
		t.Fatal("Stop of a pending real timer = false, want true")
	}
	<-c.NewTimer(0).C() // fires at once
}
