package maintenance_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/maintenance"
	"github.com/courierhq/courier/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one scripted answer of fakeTicker.
type step struct {
	res store.TickResult
	err error
}

// fakeTicker answers Tick from a script (the last step repeats; an empty
// script answers nothing due) and reports every call on calls.
type fakeTicker struct {
	calls chan context.Context // one per Tick, with the ctx it was given
	block chan struct{}        // if set, Tick waits for it to close

	mu     sync.Mutex // guards script
	script []step
}

func newTicker(script ...step) *fakeTicker {
	return &fakeTicker{calls: make(chan context.Context, 100), script: script}
}

func (f *fakeTicker) Tick(ctx context.Context) (store.TickResult, error) {
	f.calls <- ctx
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.script) == 0 {
		return store.TickResult{}, nil
	}
	s := f.script[0]
	if len(f.script) > 1 {
		f.script = f.script[1:]
	}
	return s.res, s.err
}

func setup(t *testing.T, tk *fakeTicker) (*maintenance.Loop, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	return maintenance.New(tk, maintenance.Options{Clock: clk, Interval: time.Second}), clk
}

func TestRunOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		step step
		want time.Duration
	}{
		{"nothing due", step{}, time.Second},
		{"due sooner", step{res: store.TickResult{NextDue: t0.Add(300 * time.Millisecond)}}, 300 * time.Millisecond},
		{"due later", step{res: store.TickResult{NextDue: t0.Add(time.Hour)}}, time.Second},
		{"due at the interval", step{res: store.TickResult{NextDue: t0.Add(time.Second)}}, time.Second},
		{"due in under 1ms", step{res: store.TickResult{NextDue: t0.Add(time.Microsecond)}}, time.Millisecond},
		{"due now", step{res: store.TickResult{NextDue: t0}}, time.Millisecond},
		{"overdue", step{res: store.TickResult{NextDue: t0.Add(-time.Minute)}}, time.Millisecond},
		{"error", step{res: store.TickResult{NextDue: t0.Add(time.Millisecond)}, err: errors.New("disk on fire")}, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, _ := setup(t, newTicker(tc.step))
			if got := l.RunOnce(t.Context()); got != tc.want {
				t.Fatalf("RunOnce = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRunOnceDefaults(t *testing.T) {
	t.Parallel()
	l := maintenance.New(newTicker(), maintenance.Options{})
	if got := l.RunOnce(t.Context()); got != time.Second {
		t.Fatalf("RunOnce with default interval = %v, want 1s", got)
	}
}

// An error is logged, unless it is the loop being stopped.
func TestRunOnceLogsErrors(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	tk := newTicker(step{err: errors.New("disk on fire")})
	l := maintenance.New(tk, maintenance.Options{Clock: clock.NewFake(t0), Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	l.RunOnce(t.Context())
	if !strings.Contains(buf.String(), "disk on fire") {
		t.Fatalf("log = %q, want the tick error", buf.String())
	}
	buf.Reset()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	l.RunOnce(ctx)
	if buf.Len() != 0 {
		t.Fatalf("log = %q after a tick cut short by cancellation, want nothing", buf.String())
	}
}

func TestLoopTicksWhenTheWaitEnds(t *testing.T) {
	t.Parallel()
	tk := newTicker(
		step{res: store.TickResult{NextDue: t0.Add(200 * time.Millisecond)}},
		step{err: errors.New("transient")},
		step{},
	)
	l, clk := setup(t, tk)
	added := clk.TimerAdded()
	l.Start()
	defer l.Stop(t.Context())

	<-tk.calls // first tick at once
	<-added    // now waiting 200ms, as the first tick asked
	clk.Advance(199 * time.Millisecond)
	if n := clk.Timers(); n != 1 {
		t.Fatalf("Timers() = %d before the wait ends, want 1 (still waiting)", n)
	}
	added = clk.TimerAdded()
	clk.Advance(time.Millisecond)
	<-tk.calls // second tick, which fails
	<-added    // after an error the loop waits the interval
	added = clk.TimerAdded()
	clk.Advance(time.Second - time.Nanosecond)
	if n := clk.Timers(); n != 1 {
		t.Fatalf("Timers() = %d before the interval ends, want 1", n)
	}
	clk.Advance(time.Nanosecond)
	<-tk.calls // third tick
	<-added
	if n := len(tk.calls); n != 0 {
		t.Fatalf("%d extra ticks", n)
	}
}

func TestStopWaitsForTheLoop(t *testing.T) {
	t.Parallel()
	tk := newTicker()
	tk.block = make(chan struct{})
	l, _ := setup(t, tk)
	l.Start()
	tickCtx := <-tk.calls // the loop is inside Tick, which will not return until unblocked

	gone, cancel := context.WithCancel(t.Context())
	cancel()
	if err := l.Stop(gone); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with an ended ctx while Tick runs = %v, want context.Canceled", err)
	}
	if tickCtx.Err() == nil {
		t.Fatal("Stop did not cancel the ctx of the running Tick")
	}
	close(tk.block)
	if err := l.Stop(t.Context()); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if err := l.Stop(t.Context()); err != nil { // idempotent
		t.Fatalf("second Stop = %v", err)
	}
	if n := len(tk.calls); n != 0 {
		t.Fatalf("%d ticks after Stop", n)
	}
}

func TestStopWhileWaiting(t *testing.T) {
	t.Parallel()
	tk := newTicker()
	l, clk := setup(t, tk)
	added := clk.TimerAdded()
	l.Start()
	<-tk.calls
	<-added
	if err := l.Stop(t.Context()); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if n := clk.Timers(); n != 0 {
		t.Fatalf("Timers() = %d after Stop, want 0 (the wait's timer stopped)", n)
	}
}

func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	tk := newTicker()
	l, _ := setup(t, tk)
	if err := l.Stop(t.Context()); err != nil {
		t.Fatalf("Stop before Start = %v", err)
	}
	if n := len(tk.calls); n != 0 {
		t.Fatalf("%d ticks", n)
	}
}

func TestStartTwiceStartsOneLoop(t *testing.T) {
	t.Parallel()
	tk := newTicker()
	l, clk := setup(t, tk)
	added := clk.TimerAdded()
	l.Start()
	l.Start()
	<-tk.calls
	<-added
	// A second loop would tick before it stops, even if it had not run yet.
	if err := l.Stop(t.Context()); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if n := len(tk.calls); n != 0 {
		t.Fatalf("%d extra ticks: Start twice ran two loops", n)
	}
}
