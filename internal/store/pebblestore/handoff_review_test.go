package pebblestore

import (
	"context"
	"errors"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/storetest"
)

// TestHandoffWakesReplyQueue: leasing for a claim can drop a ready task
// past its retention, whose outcome goes to its reply_to queue in the same
// batch. That queue has a message ready: its waiting receives must be woken
// (or handed it), not left asleep until their wait ends.
func TestHandoffWakesReplyQueue(t *testing.T) {
	for _, claimOnReply := range []bool{false, true} {
		name := "watch on reply_to"
		if claimOnReply {
			name = "claim on reply_to"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := handoffStore(t, vfs.NewMem())
			cfg := store.DefaultConfig("q")
			cfg.Retention = time.Minute
			if _, err := s.UpdateQueue(ctx, &store.UpdateQueueParams{Name: "q", Config: cfg, Now: handoffNow}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "r", Config: store.DefaultConfig("r"), Now: handoffNow}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: handoffNow, Messages: []store.NewMessage{
				{Body: []byte(`"task"`), Kind: store.BodyJSON, Task: &store.NewTask{ReplyTo: "r", ResultTTL: time.Hour}}}}); err != nil {
				t.Fatal(err)
			}
			c := s.Claim(&store.LeaseParams{Queue: "q", Max: 1})
			var rc store.Claim
			if claimOnReply {
				rc = s.Claim(&store.LeaseParams{Queue: "r", Max: 1})
			}
			watchR := s.Watch("r")
			// The task is past its retention now; no tick has dropped it yet.
			later := handoffNow.Add(2 * time.Minute)
			if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: later, Messages: []store.NewMessage{
				{Body: []byte(`"new"`), Kind: store.BodyJSON}}}); err != nil {
				t.Fatal(err)
			}
			if got, err := c.Withdraw(); err != nil || len(got) != 1 || string(got[0].Body) != `"new"` {
				t.Fatalf("claim on q = %+v, %v; want the new message", got, err)
			}
			r, err := s.GetQueue(ctx, &store.GetQueueParams{Name: "r", Now: later})
			if err != nil {
				t.Fatal(err)
			}
			if r.Stats.Ready+r.Stats.InFlight != 1 {
				t.Fatalf("reply_to stats %+v, want the task's outcome", r.Stats)
			}
			if claimOnReply {
				if got, err := rc.Withdraw(); err != nil || len(got) != 1 {
					if !storetest.Closed(watchR) {
						t.Fatalf("claim on reply_to = %+v, %v, and its watchers were not woken: the outcome waits unseen", got, err)
					}
				}
				return
			}
			if !storetest.Closed(watchR) {
				t.Fatal("the task's outcome was made ready in reply_to, but its watchers were not woken")
			}
		})
	}
}

// TestHandoffStalledEngineFailsFast: while the engine is stuck and a
// stalled commit holds the store's mutex, a long-poll that registers or
// withdraws a claim answers at once, as Watch and Lease do, instead of
// waiting behind the stalled commit (on a full disk, until a restart).
func TestHandoffStalledEngineFailsFast(t *testing.T) {
	s := handoffStore(t, vfs.NewMem())
	c := s.Claim(&store.LeaseParams{Queue: "q", Max: 1}) // a receive waiting when the stall begins
	l := s.health.listener(slog.New(slog.DiscardHandler))
	l.WriteStallBegin(pebble.WriteStallBeginInfo{Reason: "memtable count limit reached"})
	l.FlushEnd(pebble.FlushInfo{Done: true, Err: syscall.ENOSPC})
	stuck := func(what string, f func() error) {
		s.mu.Lock() // as the stalled commit does
		done := make(chan struct{})
		err := answers(t, what, 5*time.Second, func() error { defer close(done); return f() })
		s.mu.Unlock()
		<-done // a call that waited behind the lock finishes now
		if err != nil && err != errNoAnswer {
			t.Errorf("%s while stuck: %v", what, err)
		}
	}
	stuck("Withdraw of a waiting claim", func() error {
		if got, err := c.Withdraw(); err != nil || len(got) != 0 {
			return errors.Join(err, errors.New("messages from a claim nothing leased for"))
		}
		return nil
	})
	stuck("Claim", func() error {
		if c := s.Claim(&store.LeaseParams{Queue: "q", Max: 1}); c != nil {
			c.Withdraw()
		}
		return nil
	})
	l.FlushEnd(pebble.FlushInfo{Done: true})
	l.WriteStallEnd()
	sendBodies(t, s, "1")
	if st := queueStats(t, s); st.Ready != 1 || st.InFlight != 0 {
		t.Fatalf("stats %+v after the stall: a withdrawn claim was leased for", st)
	}
}

// TestHandoffPanicAnswersClaims: a verb that panics after leasing for a
// claim applies nothing; the claim is not left waiting on it for good, nor
// registered, and answers no messages.
func TestHandoffPanicAnswersClaims(t *testing.T) {
	s := handoffStore(t, vfs.NewMem())
	c := s.Claim(&store.LeaseParams{Queue: "q", Max: 1})
	sendBodies(t, s, "1") // leased for c
	if got, err := c.Withdraw(); err != nil || len(got) != 1 {
		t.Fatalf("claim = %+v, %v", got, err)
	}
	c = s.Claim(&store.LeaseParams{Queue: "q", Max: 1})
	func() {
		defer func() { recover() }()
		_ = s.update(handoffNow, func(t *txn) error {
			w, _ := t.queue("q")
			t.send(w, &store.NewMessage{Body: []byte(`2`), Kind: store.BodyJSON})
			if err := t.handOff(); err != nil { // as run does, then the apply panics
				return err
			}
			panic("boom")
		})
	}()
	err := answers(t, "Withdraw after a panic", 5*time.Second, func() error {
		got, err := c.Withdraw()
		if len(got) != 0 {
			return errors.New("messages leased by a change never applied")
		}
		return err
	})
	if err == errNoAnswer || (err != nil && !errors.Is(err, store.ErrFailed)) {
		t.Fatalf("Withdraw after a panic: %v", err)
	}
	s.cmu.Lock()
	n := len(s.claims)
	s.cmu.Unlock()
	if n != 0 {
		t.Fatalf("claims left registered: %v", s.claims)
	}
}
