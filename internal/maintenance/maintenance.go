// Package maintenance runs courier's background loop: it calls the broker's
// Tick whenever something is due (a delayed message, an expiring lease, the
// end of a retention or dedup window) and at least every Interval, so stats
// stay true and long-polls are woken even when nobody receives.
package maintenance

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/store"
)

// Ticker is the part of the broker the loop drives.
type Ticker interface {
	Tick(ctx context.Context) (store.TickResult, error)
}

// Loop is the maintenance loop. Start it once; Stop is idempotent.
type Loop struct {
	t        Ticker
	clock    clock.Clock
	log      *slog.Logger
	interval time.Duration

	mu     sync.Mutex // guards cancel, done
	cancel context.CancelFunc
	done   chan struct{}
}

// Options configure a Loop.
type Options struct {
	Clock    clock.Clock   // default the wall clock
	Logger   *slog.Logger  // default discards
	Interval time.Duration // the longest gap between ticks; default 1s
}

// New returns a loop over t.
func New(t Ticker, o Options) *Loop {
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	return &Loop{t: t, clock: o.Clock, log: o.Logger, interval: o.Interval}
}

// Start runs the loop in a goroutine until Stop.
func (l *Loop) Start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan struct{})
	go l.run(ctx, l.done)
}

// Stop ends the loop and waits for it, or for ctx.
func (l *Loop) Stop(ctx context.Context) error {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Loop) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	for {
		wait := l.RunOnce(ctx)
		t := l.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// RunOnce ticks once and returns how long to wait before the next tick.
func (l *Loop) RunOnce(ctx context.Context) time.Duration {
	res, err := l.t.Tick(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Error("maintenance tick failed", "err", err)
		}
		return l.interval
	}
	if res.Expired+res.DeadLettered+res.Dropped > 0 {
		l.log.Debug("maintenance", "promoted", res.Promoted, "expired", res.Expired,
			"dead_lettered", res.DeadLettered, "dropped", res.Dropped)
	}
	wait := l.interval
	if !res.NextDue.IsZero() {
		if d := res.NextDue.Sub(l.clock.Now()); d < wait {
			wait = max(d, time.Millisecond)
		}
	}
	return wait
}
