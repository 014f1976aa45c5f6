package pebblestore

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

// TestRandomVerbs: random sequences of every verb that moves a message
// between states (sends of plain, grouped, delayed, prioritized, task and
// large messages; handed-off claims; leases carrying acks; acks, nacks,
// releases, extends, progress, ticks past leases and retention, redrive, purge,
// cancel, delete and re-create, reopen) over three queues, two of them each
// other's dead-letter queue, with flushes between steps. Times often stand
// still, so that a lease is extended to the expiry it had, a nack with no
// delay is leased again in its own batch by a waiting receive, and so on.
// Checked: after every step, the lease memo (every entry is its record's
// lease, memoN counts them: memoInvariant) and the delayed and lease
// cursors (nothing live below them, a live marker on one is the first live
// key: cursorInvariant); every so often, and at the
// end, the index after compacting everything (fsckIndex, and Pebble's
// reports of broken single deletes: checkSingleDeletes).
func TestRandomVerbs(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			randomVerbs(t, seed)
		})
	}
}

func randomVerbs(t *testing.T, seed uint64) {
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
		// Mostly one of the latest, which are most often still held;
		// sometimes any, most often long gone.
		i := len(leases) - 1 - rnd.IntN(min(len(leases), 10))
		if rnd.IntN(4) == 0 {
			i = rnd.IntN(len(leases))
		}
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
	maxMemo := 0
	for i := 0; i < 1500; i++ {
		maxMemo = max(maxMemo, s.memoN)
		q := queues[rnd.IntN(len(queues))]
		var what string
		switch op := rnd.IntN(18); op {
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
					// Now and then a lease of another queue, which must
					// be refused and change nothing.
					if h := pick(); h.q == q || rnd.IntN(4) == 0 {
						p.Acks = append(p.Acks, h.lease)
					}
				}
			}
			res, err := s.Lease(ctx, p)
			ok(what, err)
			keep(q, res.Messages)
			done["leased"] += len(res.Messages)
		case 5, 16, 17:
			what = "ack"
			h := pick()
			aq := h.q
			if rnd.IntN(4) == 0 {
				aq = queues[rnd.IntN(len(queues))] // maybe the wrong queue
			}
			ls := []string{h.lease}
			for range rnd.IntN(10) {
				if x := pick(); x.q == h.q || rnd.IntN(4) == 0 {
					ls = append(ls, x.lease)
				}
			}
			res, err := s.Ack(ctx, &store.AckParams{Queue: aq, Leases: ls, Now: step()})
			ok(what, err)
			for _, e := range res {
				if e == nil {
					done["acked"]++
				}
			}
		case 6:
			what = "nack"
			h := pick()
			p := &store.NackParams{Queue: h.q, Lease: h.lease, Now: step(), Retry: retryNow}
			switch rnd.IntN(5) {
			case 0:
				p.Terminate = true
			case 1:
				p.Release = true
			}
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
			done[what]++
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
				done[what]++
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
				done[what]++
				flushAndCompact(t, s)
				fsckIndex(t, s, fmt.Sprintf("step %d", i))
			}
		}
		memoInvariant(t, s, fmt.Sprintf("step %d (%s)", i, what))
		cursorInvariant(t, s, fmt.Sprintf("step %d (%s)", i, what))
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
	t.Logf("successful verbs: %v; since the last open, flushes %d, compactions %d; memo entries at most %d", done,
		s.db.Metrics().Flush.Count, s.db.Metrics().Compact.Count, maxMemo)
	if done["acked"] == 0 || maxMemo == 0 || done["compact+fsck"] == 0 {
		t.Fatalf("the run did not exercise what it checks: %v, memo entries at most %d", done, maxMemo)
	}
	fsckIndex(t, s, "before the last compaction")
	checkSingleDeletes(t, s, false) // queues were deleted
}
