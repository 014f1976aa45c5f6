package pebblestore

import (
	"errors"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// errNoAnswer is what answers returns for a call that did not return.
var errNoAnswer = errors.New("no answer")

// answers runs f and returns its error, or fails t and returns errNoAnswer
// if f has not returned within d (f goes on in the background: the test
// must let it finish, by releasing what it waits for).
func answers(t *testing.T, what string, d time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Errorf("%s did not answer within %v", what, d)
		return errNoAnswer
	}
}

// TestStalledEngineFailsFast: when the engine stalls writes and its last
// flush or compaction failed (a full disk), the commit that met the stall
// holds the store's mutex until it ends; every other call — Ready, sends,
// receives — answers ErrUnavailable at once instead of waiting behind it.
// A stall while flushes succeed is waited out, and a successful flush ends
// the refusals. The engine's events are simulated: on a real full disk the
// stall may last until a restart (docs/reliability.md).
func TestStalledEngineFailsFast(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(Options{Dir: "db", FS: vfs.NewMem(), CacheBytes: 1 << 20,
		FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := crashBase
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: unlimited("q"), Now: now}); err != nil {
		t.Fatal(err)
	}
	send := func() error {
		_, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{{Body: []byte("x"), Kind: store.BodyBinary}}, Now: now})
		return err
	}
	res, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: now,
		Messages: []store.NewMessage{{Body: []byte("{}"), Kind: store.BodyJSON, Task: &store.NewTask{ResultTTL: time.Hour}}}})
	if err != nil {
		t.Fatal(err)
	}
	taskID := res[0].ID
	l := s.health.listener(slog.New(slog.DiscardHandler))
	full := syscall.ENOSPC

	for _, tc := range []struct {
		name string
		fail func()
		heal func()
	}{
		{"flush", func() { l.FlushEnd(pebble.FlushInfo{Done: true, Err: full}) }, func() { l.FlushEnd(pebble.FlushInfo{Done: true}) }},
		{"compaction", func() { l.CompactionEnd(pebble.CompactionInfo{Done: true, Err: full}) }, func() { l.CompactionEnd(pebble.CompactionInfo{Done: true}) }},
	} {
		// A stall alone is waited out: Ready answers nil.
		l.WriteStallBegin(pebble.WriteStallBeginInfo{Reason: "memtable count limit reached"})
		if err := s.Ready(ctx); err != nil {
			t.Fatalf("%s: Ready during a stall without failures: %v", tc.name, err)
		}
		tc.fail()
		s.mu.Lock() // as the stalled commit does
		for what, call := range map[string]func() error{
			"Ready": func() error { return s.Ready(ctx) },
			"Send":  send,
			"Lease": func() error {
				_, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Now: now, Retry: retryNow})
				return err
			},
			"Ack": func() error {
				_, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{"x"}, Now: now})
				return err
			},
			"GetQueue": func() error {
				_, err := s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: now})
				return err
			},
			"ListQueues": func() error {
				_, err := s.ListQueues(ctx, &store.ListQueuesParams{Now: now})
				return err
			},
			"GetTask": func() error {
				_, err := s.GetTask(ctx, &store.GetTaskParams{ID: taskID, Now: now})
				return err
			},
			// A watch fires at once: its caller's next call says why.
			"Watch":     func() error { return firedOr(s.Watch("q"), syscall.ENOSPC) },
			"WatchTask": func() error { return firedOr(s.WatchTask(taskID), syscall.ENOSPC) },
		} {
			err := answers(t, tc.name+": "+what, 5*time.Second, call)
			if err != errNoAnswer && !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("%s: %s while stuck: %v; want ErrUnavailable naming the full disk", tc.name, what, err)
			}
		}
		s.mu.Unlock()
		if t.Failed() {
			t.FailNow()
		}
		tc.heal()
		l.WriteStallEnd()
		if err := s.Ready(ctx); err != nil {
			t.Fatalf("%s: Ready after the stall: %v", tc.name, err)
		}
		if err := send(); err != nil {
			t.Fatalf("%s: send after the stall: %v", tc.name, err)
		}
	}

	// A failed write makes Ready answer ErrFailed, without the mutex too.
	s.mu.Lock()
	s.breakLocked(errors.Join(store.ErrFailed, errors.New("simulated")))
	err = answers(t, "Ready of a failed store", 5*time.Second, func() error { return s.Ready(ctx) })
	s.mu.Unlock()
	if !errors.Is(err, store.ErrFailed) {
		t.Fatalf("Ready of a failed store: %v; want ErrFailed", err)
	}
}

// firedOr returns err if ch has fired, else an error saying it has not.
func firedOr(ch <-chan struct{}, err error) error {
	select {
	case <-ch:
		return err
	default:
		return errors.New("the watch has not fired")
	}
}

// TestEngineHealth: which engine events make the store refuse work.
func TestEngineHealth(t *testing.T) {
	t.Parallel()
	h := &engineHealth{}
	l := h.listener(slog.New(slog.DiscardHandler))
	l.FlushEnd(pebble.FlushInfo{Done: true, Err: syscall.ENOSPC})
	if err := h.stuck(); err != nil {
		t.Errorf("a failed flush without a stall: %v; want nil (the engine retries it)", err)
	}
	l.WriteStallBegin(pebble.WriteStallBeginInfo{Reason: "memtable count limit reached"})
	if err := h.stuck(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("a stall after a failed flush: %v; want ENOSPC", err)
	}
	// A flush with nothing to write, which Pebble reports with an error, is a success.
	l.FlushEnd(pebble.FlushInfo{Done: true, Err: errors.New("pebble: empty table")})
	if err := h.stuck(); err != nil {
		t.Errorf("a stall after an empty flush: %v; want nil", err)
	}
	// A cancelled compaction says nothing; a failed one does, until one succeeds.
	l.CompactionEnd(pebble.CompactionInfo{Done: true, Err: pebble.ErrCancelledCompaction})
	if err := h.stuck(); err != nil {
		t.Errorf("a stall after a cancelled compaction: %v; want nil", err)
	}
	l.CompactionEnd(pebble.CompactionInfo{Done: true, Err: syscall.ENOSPC})
	l.CompactionEnd(pebble.CompactionInfo{Done: true, Err: pebble.ErrCancelledCompaction})
	if err := h.stuck(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("a stall after a failed compaction: %v; want ENOSPC", err)
	}
	l.CompactionEnd(pebble.CompactionInfo{Done: true})
	if err := h.stuck(); err != nil {
		t.Errorf("a stall after a successful compaction: %v; want nil", err)
	}
	// A stall that lasts is refused even without a failure.
	h.stalledAt.Store(time.Now().Add(-stallLimit - time.Second).UnixNano())
	if err := h.stuck(); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a stall of %v: %v; want ErrUnavailable", stallLimit+time.Second, err)
	}
	l.WriteStallEnd()
	if err := h.stuck(); err != nil {
		t.Errorf("after the stall: %v", err)
	}
}
