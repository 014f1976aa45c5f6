// Package clock lets courier's core read time and wait on timers through an
// interface, so tests drive delays and lease expiry with a fake clock instead
// of sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was active.
	Stop() bool
}

// Real returns the wall clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now().UTC() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// Fake is a clock that moves only when told to. Timers fire when Advance or
// Set moves the time to or past their deadline. Safe for concurrent use.
type Fake struct {
	mu     sync.Mutex // guards now, timers
	now    time.Time
	timers map[*fakeTimer]struct{}
	added  chan struct{} // closed and replaced each time a timer is added
}

// NewFake returns a fake clock set to t.
func NewFake(t time.Time) *Fake {
	return &Fake{now: t.UTC(), timers: map[*fakeTimer]struct{}{}, added: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires when the fake time reaches now+d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{f: f, at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- f.now
		return t
	}
	f.timers[t] = struct{}{}
	close(f.added)
	f.added = make(chan struct{})
	return t
}

// TimerAdded returns a channel closed when the next timer is created, so a
// test can wait until the code under test is blocked on the clock.
func (f *Fake) TimerAdded() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.added
}

// Timers reports how many timers are pending.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// Advance moves the time forward by d and fires the timers that are due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set(f.now.Add(d)) // under one lock, so concurrent advances all count
}

// Set moves the time to t (never backwards) and fires the timers that are due.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set(t)
}

// set is Set; requires mu.
func (f *Fake) set(t time.Time) {
	if t.After(f.now) {
		f.now = t.UTC()
	}
	for tm := range f.timers {
		if !tm.at.After(f.now) {
			delete(f.timers, tm)
			tm.c <- f.now
		}
	}
}

type fakeTimer struct {
	f  *Fake
	at time.Time
	c  chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	_, ok := t.f.timers[t]
	delete(t.f.timers, t)
	return ok
}
