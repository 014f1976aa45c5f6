package pebblestore

// Single deletes of index keys (see unindex) in the cases where one key is
// deleted and written again: an extend to the same expiry, a nack handed
// back at once, a dead letter redriven with its seq, delayed messages and
// expired leases made ready by a tick or a lease. Each ends with
// checkSingleDeletes. Random sequences of every verb: TestRandomVerbs.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// sdStore opens a store with queues q (dead-letter queue q.dead) and
// q.dead, visibility 50ms, no backoff.
func sdStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(Options{Dir: "db", FS: vfs.NewMem(), FreeBytes: plenty})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, name := range []string{"q", "q.dead"} {
		cfg := store.DefaultConfig(name)
		cfg.VisibilityTimeout = 50 * time.Millisecond
		cfg.Backoff.Initial = 0
		if _, err := s.CreateQueue(context.Background(), &store.CreateQueueParams{Name: name, Config: cfg, Now: handoffNow}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// sendAndLeaseOne sends one message to q and leases it, at handoffNow.
func sendAndLeaseOne(t *testing.T, s *Store) store.Message {
	t.Helper()
	sendMessages(t, s, store.NewMessage{Body: []byte("x")})
	res, err := s.Lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 1, Now: handoffNow, Retry: retryNow})
	if err != nil || len(res.Messages) != 1 {
		t.Fatal(res, err)
	}
	return res.Messages[0]
}

// flushed flushes s's memtable: each write of a key before it goes to a
// table of its own, so a later single delete meets the latest write first
// (in the next flush) and an older one only in a compaction.
func flushed(t *testing.T, s *Store) {
	t.Helper()
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestSingleDeleteExtendToSameExpiry: a lease extended, with the time
// standing still, to the expiry it had: its lease key is deleted and
// written again in one batch; then the lease is acked. The memtable is
// flushed after the lease only (the lease's write is in a table, the
// extends and the ack meet it in a compaction), or after every step.
func TestSingleDeleteExtendToSameExpiry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		extends int
		every   bool
	}{{1, false}, {3, false}, {3, true}} {
		every := tc.every
		t.Run(fmt.Sprintf("%d extends, flush after every step %v", tc.extends, every), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := sdStore(t)
			m := sendAndLeaseOne(t, s)
			l := m.Lease
			flushed(t, s)
			for range tc.extends {
				exp, err := s.Extend(ctx, &store.ExtendParams{Queue: "q", Lease: l, Now: handoffNow})
				if err != nil || !exp.Equal(m.LeaseExpiresAt) {
					t.Fatalf("extend: %v %v, want the same expiry %v", exp, err, m.LeaseExpiresAt)
				}
				if every {
					flushed(t, s)
				}
			}
			if errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{l}, Now: handoffNow}); err != nil || errs[0] != nil {
				t.Fatal(errs, err)
			}
			flushed(t, s)
			checkSingleDeletes(t, s, true)
			if n := keysOf(t, s, tagLease, 1); n != 0 {
				t.Fatalf("%d lease keys after the ack", n)
			}
		})
	}
}

// TestSingleDeleteNackHandedBackSameKey: a nack with no delay at the time
// of the lease, handed in its own batch to a waiting receive with the
// same visibility: the message's lease key is deleted and written again
// in one batch, its ready key written and deleted.
func TestSingleDeleteNackHandedBackSameKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sdStore(t)
	m := sendAndLeaseOne(t, s)
	l := m.Lease
	flushed(t, s)
	for range 3 {
		c := s.Claim(&store.LeaseParams{Queue: "q", Max: 1})
		zero := time.Duration(0)
		if _, err := s.Nack(ctx, &store.NackParams{Queue: "q", Lease: l, Delay: &zero, Now: handoffNow, Retry: retryNow}); err != nil {
			t.Fatal(err)
		}
		ms, err := c.Withdraw()
		if err != nil || len(ms) != 1 || !ms[0].LeaseExpiresAt.Equal(m.LeaseExpiresAt) {
			t.Fatalf("handed: %+v %v", ms, err)
		}
		l = ms[0].Lease
		flushed(t, s)
	}
	if errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{l}, Now: handoffNow}); err != nil || errs[0] != nil {
		t.Fatal(errs, err)
	}
	flushed(t, s)
	checkSingleDeletes(t, s, true)
}

// TestSingleDeleteDeadLetterRedriveSameSeq: a message dead-lettered and
// redriven back, again and again, with the same seq, priority and lease
// expiry each time: its ready and lease keys in q are written, deleted
// and written again across tables.
func TestSingleDeleteDeadLetterRedriveSameSeq(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sdStore(t)
	sendMessages(t, s, store.NewMessage{Body: []byte("x"), Priority: 3},
		store.NewMessage{Body: []byte("y"), Group: "g"}, store.NewMessage{Body: []byte("z"), Group: "g"})
	for round := range 4 {
		res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 10, Now: handoffNow, Retry: retryNow})
		if err != nil || len(res.Messages) == 0 {
			t.Fatal(round, res, err)
		}
		flushed(t, s)
		for _, m := range res.Messages {
			if _, err := s.Nack(ctx, &store.NackParams{Queue: "q", Lease: m.Lease, Terminate: true, Now: handoffNow, Retry: retryNow}); err != nil {
				t.Fatal(err)
			}
		}
		flushed(t, s)
		if _, err := s.PurgeQueue(ctx, &store.PurgeQueueParams{Name: "q", Now: handoffNow}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Redrive(ctx, &store.RedriveParams{Queue: "q", Max: 10, Now: handoffNow}); err != nil || n == 0 {
			t.Fatal(round, n, err)
		}
		flushed(t, s)
	}
	checkSingleDeletes(t, s, true)
}

// TestSingleDeleteDelayedAndTick: delayed messages promoted by a tick and
// by a lease, expired leases retried at once by a tick, with flushes
// between, and a delayed group member released by its head's ack.
func TestSingleDeleteDelayedAndTick(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sdStore(t)
	now := handoffNow
	sendMessages(t, s, // now is handoffNow here
		store.NewMessage{Body: []byte("a"), NotBefore: now.Add(10 * time.Millisecond)},
		store.NewMessage{Body: []byte("b"), NotBefore: now.Add(10 * time.Millisecond), Group: "g"},
		store.NewMessage{Body: []byte("c"), NotBefore: now.Add(20 * time.Millisecond), Group: "g"},
		store.NewMessage{Body: []byte("d"), NotBefore: now})
	flushed(t, s)
	for i := range 12 {
		now = now.Add(10 * time.Millisecond)
		if _, err := s.Tick(ctx, &store.TickParams{Now: now, Retry: retryNow}); err != nil {
			t.Fatal(err)
		}
		flushed(t, s)
		res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 2, Now: now, Retry: retryNow, Visibility: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		flushed(t, s)
		if i%3 == 2 {
			for _, m := range res.Messages {
				s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{m.Lease}, Now: now})
			}
			flushed(t, s)
		}
	}
	checkSingleDeletes(t, s, true)
}
