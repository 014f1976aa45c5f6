package pebblestore

// Single deletes of index keys (see unindex) under random sequences of
// every verb, with flushes between steps, so that a key's writes are
// spread over several tables and meet in compactions, not only in one
// memtable's flush; and the cases where one key is deleted and written
// again: an extend to the same expiry, a nack handed back at once, a dead
// letter redriven with its seq. Each ends with checkSingleDeletes.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// TestSingleDeleteRandomFsck: random sequences of every verb that moves a
// message between states, with flushes between steps and, every so
// often, a compaction of everything followed by fsckIndex and Pebble's
// single-delete reports. Times often stand still, so that a lease is
// extended to the expiry it had, a nack with no delay is leased again in
// its own batch by a waiting receive, and so on.
func TestSingleDeleteRandomFsck(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			singleDeleteRandomFsck(t, seed)
		})
	}
}

func singleDeleteRandomFsck(t *testing.T, seed uint64) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(seed, 23))
	fs := vfs.NewMem()
	open := func() *Store {
		s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty, MemTableBytes: 256 << 10})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	defer func() { s.Close() }()
	now := handoffNow
	step := func() time.Time {
		switch rnd.IntN(8) {
		case 0, 1, 2: // time stands still
		case 3, 4:
			now = now.Add(time.Millisecond)
		case 5, 6:
			now = now.Add(time.Duration(rnd.IntN(60)) * time.Millisecond)
		default:
			now = now.Add(time.Duration(rnd.IntN(400)) * time.Millisecond)
		}
		return now
	}
	mk := func(name, dlq string) {
		cfg := store.DefaultConfig(name)
		cfg.VisibilityTimeout = 50 * time.Millisecond
		cfg.MaxAttempts = 3
		cfg.Retention = 3 * time.Second
		cfg.DeadLetterQueue = dlq
		cfg.Backoff.Initial = time.Duration(rnd.IntN(3)) * 20 * time.Millisecond
		if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: name, Config: cfg, Now: now}); err != nil && err != store.ErrQueueExists {
			t.Fatal(err)
		}
	}
	// a and b are each other's dead-letter queue; c has none.
	mk("a", "b")
	mk("b", "a")
	mk("c", "")
	queues := []string{"a", "b", "c"}
	type held struct{ q, lease, id string }
	var leases []held
	var tasks []string
	var claims []store.Claim
	keep := func(q string, ms []store.Message) {
		for _, m := range ms {
			leases = append(leases, held{q, m.Lease, m.ID})
		}
	}
	pick := func() held {
		if len(leases) == 0 {
			return held{"a", "bogus", ""}
		}
		i := len(leases) - 1 - rnd.IntN(min(len(leases), 10))
		return leases[i]
	}
	done := map[string]int{}
	ok := func(what string, err error) {
		t.Helper()
		if err == nil {
			done[what]++
		}
		switch {
		case err == nil, errors.Is(err, store.ErrLeaseExpired), errors.Is(err, store.ErrInvalidLease),
			errors.Is(err, store.ErrQueueNotFound), errors.Is(err, store.ErrTaskNotFound),
			errors.Is(err, store.ErrTaskCancelled):
		default:
			t.Fatalf("%s: %v", what, err)
		}
	}
	vis := func() time.Duration { return time.Duration(rnd.IntN(3)) * 25 * time.Millisecond }
	durs := []time.Duration{0, 10 * time.Millisecond, 50 * time.Millisecond}
	for i := 0; i < 1000; i++ {
		q := queues[rnd.IntN(len(queues))]
		var what string
		switch op := rnd.IntN(16); op {
		case 0, 1, 2:
			what = "send"
			var nm []store.NewMessage
			for range 1 + rnd.IntN(20) {
				m := store.NewMessage{Body: []byte(`"x"`), Kind: store.BodyJSON, Priority: []int{-5, 0, 5}[rnd.IntN(3)]}
				switch rnd.IntN(3) {
				case 0:
					m.Group = []string{"g1", "g2"}[rnd.IntN(2)]
				}
				switch rnd.IntN(4) {
				case 0:
					m.NotBefore = now
				case 1:
					m.NotBefore = now.Add(time.Duration(rnd.IntN(100)) * time.Millisecond)
				}
				if rnd.IntN(4) == 0 {
					m.Task = &store.NewTask{ReplyTo: []string{"", "a", "b", "c"}[rnd.IntN(4)], ResultTTL: time.Second}
				}
				if rnd.IntN(6) == 0 {
					m.Body = make([]byte, inlineMax+1)
					m.Kind = store.BodyBinary
				}
				nm = append(nm, m)
			}
			res, err := s.Send(ctx, &store.SendParams{Queue: q, Messages: nm, Now: step()})
			ok(what, err)
			for j, r := range res {
				if nm[j].Task != nil {
					tasks = append(tasks, r.ID)
				}
			}
		case 3, 4:
			what = "lease"
			p := &store.LeaseParams{Queue: q, Max: 1 + rnd.IntN(10), Now: step(), Retry: retryNow, Visibility: vis()}
			if rnd.IntN(2) == 0 {
				for range rnd.IntN(10) {
					if h := pick(); h.q == q {
						p.Acks = append(p.Acks, h.lease)
					}
				}
			}
			res, err := s.Lease(ctx, p)
			ok(what, err)
			keep(q, res.Messages)
			done["leased"] += len(res.Messages)
		case 5:
			what = "ack"
			h := pick()
			ls := []string{h.lease}
			for range rnd.IntN(10) {
				if x := pick(); x.q == h.q {
					ls = append(ls, x.lease)
				}
			}
			_, err := s.Ack(ctx, &store.AckParams{Queue: h.q, Leases: ls, Now: step()})
			ok(what, err)
		case 6:
			what = "nack"
			h := pick()
			p := &store.NackParams{Queue: h.q, Lease: h.lease, Now: step(), Retry: retryNow, Terminate: rnd.IntN(5) == 0}
			if rnd.IntN(3) != 0 {
				d := durs[rnd.IntN(len(durs))]
				p.Delay = &d
			}
			r, err := s.Nack(ctx, p)
			ok(what, err)
			if r.DeadLettered {
				done["dead-lettered"]++
			}
		case 7, 8:
			what = "extend"
			h := pick()
			_, err := s.Extend(ctx, &store.ExtendParams{Queue: h.q, Lease: h.lease, Visibility: vis(), Now: step()})
			ok(what, err)
		case 9:
			what = "progress"
			h := pick()
			_, err := s.Progress(ctx, &store.ProgressParams{ID: h.id, Lease: h.lease, Progress: 0.5, Visibility: vis(), Now: step()})
			ok(what, err)
		case 10:
			what = "tick"
			_, err := s.Tick(ctx, &store.TickParams{Now: step(), Retry: retryNow})
			ok(what, err)
		case 11:
			what = "redrive/purge"
			if rnd.IntN(3) != 0 {
				n, err := s.Redrive(ctx, &store.RedriveParams{Queue: []string{"a", "b"}[rnd.IntN(2)], Max: 1 + rnd.IntN(20), Now: step()})
				ok(what, err)
				done["redriven"] += n
			} else {
				_, err := s.PurgeQueue(ctx, &store.PurgeQueueParams{Name: q, Now: step()})
				ok(what, err)
			}
		case 12:
			what = "cancel"
			if len(tasks) > 0 {
				_, err := s.CancelTask(ctx, &store.CancelTaskParams{ID: tasks[rnd.IntN(len(tasks))], Now: step()})
				ok(what, err)
			}
		case 13:
			what = "claim/withdraw"
			if rnd.IntN(2) == 0 {
				if c := s.Claim(&store.LeaseParams{Queue: q, Max: 1 + rnd.IntN(3), Visibility: vis()}); c != nil {
					claims = append(claims, c)
				}
			} else {
				for _, c := range claims {
					ms, _ := c.Withdraw()
					if len(ms) > 0 {
						keep(ms[0].Queue, ms)
					}
				}
				claims = nil
			}
		case 14:
			what = "flush"
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		case 15:
			switch rnd.IntN(10) {
			case 0:
				what = "delete"
				ok(what, s.DeleteQueue(ctx, &store.DeleteQueueParams{Name: q, Now: step()}))
				mk(q, map[string]string{"a": "b", "b": "a"}[q])
			case 1, 2:
				what = "reopen"
				for _, c := range claims {
					ms, _ := c.Withdraw()
					if len(ms) > 0 {
						keep(ms[0].Queue, ms)
					}
				}
				claims = nil
				s.Close()
				s = open()
				for _, name := range queues {
					mk(name, map[string]string{"a": "b", "b": "a"}[name])
				}
			default:
				what = "compact+fsck"
				flushAndCompact(t, s)
				fsckIndex(t, s, fmt.Sprintf("step %d", i))
			}
		}
		if t.Failed() {
			t.Fatalf("failed at step %d (%s)", i, what)
		}
		if len(leases) > 300 {
			leases = leases[150:]
		}
	}
	for _, c := range claims {
		c.Withdraw()
	}
	t.Logf("successful verbs: %v; flushes %d, compactions %d", done, s.db.Metrics().Flush.Count, s.db.Metrics().Compact.Count)
	fsckIndex(t, s, "before the last compaction")
	checkSingleDeletes(t, s, false) // queues were deleted
}

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
	ctx := context.Background()
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{{Body: []byte("x")}}, Now: handoffNow}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Now: handoffNow, Retry: retryNow})
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
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{
		{Body: []byte("x"), Priority: 3}, {Body: []byte("y"), Group: "g"}, {Body: []byte("z"), Group: "g"},
	}, Now: handoffNow}); err != nil {
		t.Fatal(err)
	}
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
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{
		{Body: []byte("a"), NotBefore: now.Add(10 * time.Millisecond)},
		{Body: []byte("b"), NotBefore: now.Add(10 * time.Millisecond), Group: "g"},
		{Body: []byte("c"), NotBefore: now.Add(20 * time.Millisecond), Group: "g"},
		{Body: []byte("d"), NotBefore: now},
	}, Now: now}); err != nil {
		t.Fatal(err)
	}
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
