package pebblestore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// carryAcks leases up to one message of q, carrying acks of leases, with
// the sync deferred if the lease hands out nothing.
func carryAcks(t *testing.T, s *Store, leases ...string) store.LeaseResult {
	t.Helper()
	res, err := s.Lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 1, Visibility: time.Minute,
		Now: handoffNow, Retry: retryNow, Acks: leases, DeferSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range res.Acked {
		if e != nil {
			t.Fatalf("ack %d: %v", i, e)
		}
	}
	return res
}

// within runs fn with a context that ends in 10 s: a wait for a deferred
// sync that nothing serves fails instead of hanging the test.
func within(t *testing.T, what string, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fn(ctx); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestDeferredSync: a lease that carries acks and hands out nothing is
// applied unsynced (SyncMark set) with the acks in effect at once; the
// next synced write covers it, with no fsync of its own; a read that may
// have seen it, or WaitSynced alone, gets it synced; and a lease that
// hands out a message is synced as before (no mark).
func TestDeferredSync(t *testing.T) {
	t.Parallel()
	s := handoffStore(t, vfs.NewMem())
	sendBodies(t, s, `"a"`, `"b"`)
	got := leaseUpTo(t, s, handoffNow, 2)

	// A message ready: the lease hands it out, and its sync is waited for.
	sendBodies(t, s, `"c"`)
	if res := carryAcks(t, s, got[0].Lease); res.SyncMark != 0 || len(res.Messages) != 1 {
		t.Fatalf("lease with a message ready: mark %d, %d messages; want 0, 1", res.SyncMark, len(res.Messages))
	}

	// Nothing ready: deferred, and then covered by a send's own sync.
	syncs := s.WALSyncs().Count
	res := carryAcks(t, s, got[1].Lease)
	if res.SyncMark == 0 || len(res.Messages) != 0 {
		t.Fatalf("lease of an empty queue: mark %d, %d messages; want a mark, 0", res.SyncMark, len(res.Messages))
	}
	s.dur.mu.Lock()
	synced := s.dur.synced
	s.dur.mu.Unlock()
	if synced >= res.SyncMark {
		t.Fatalf("deferred batch %d noted synced (up to %d) before any sync", res.SyncMark, synced)
	}
	sendBodies(t, s, `"d"`)
	within(t, "WaitSynced after a send", func(ctx context.Context) error { return s.WaitSynced(ctx, res.SyncMark) })
	if n := s.WALSyncs().Count - syncs; n != 1 {
		t.Fatalf("a deferred lease and a send took %d fsyncs, want 1 (the send's)", n)
	}

	// Deferred with no write after it: a read waits for it and gets it synced.
	m := leaseUpTo(t, s, handoffNow, 1)
	res = carryAcks(t, s, m[0].Lease)
	if res.SyncMark == 0 {
		t.Fatal("second deferred lease: no mark")
	}
	within(t, "a read after a deferred lease", func(ctx context.Context) error {
		q, err := s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: handoffNow})
		if err == nil && (q.Stats.InFlight != 1 || q.Stats.Ready != 0) {
			t.Errorf("stats after the carried acks: %+v; want 1 in flight (c), 0 ready", q.Stats)
		}
		return err
	})
	within(t, "WaitSynced", func(ctx context.Context) error { return s.WaitSynced(ctx, res.SyncMark) })
}

// TestDeferredSyncClose: closing the store syncs a deferred batch, and a
// wait for it then answers nil, not an error or a hang.
func TestDeferredSyncClose(t *testing.T) {
	t.Parallel()
	fs := vfs.NewCrashableMem()
	s := handoffStore(t, fs)
	sendBodies(t, s, `"a"`)
	got := leaseUpTo(t, s, handoffNow, 1)
	res := carryAcks(t, s, got[0].Lease)
	if res.SyncMark == 0 {
		t.Fatal("no mark")
	}
	crash := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	within(t, "WaitSynced after Close", func(ctx context.Context) error { return s.WaitSynced(ctx, res.SyncMark) })
	after := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})

	// Before Close, the ack was not durable; after it, it is.
	for _, c := range []struct {
		fs        vfs.FS
		inFlight  int64
		situation string
	}{{crash, 1, "before Close"}, {after, 0, "after Close"}} {
		r, err := Open(Options{Dir: "db", FS: c.fs, FreeBytes: plenty})
		if err != nil {
			t.Fatal(err)
		}
		if st := queueStats(t, r); st.InFlight != c.inFlight {
			t.Errorf("%s: %d in flight, want %d", c.situation, st.InFlight, c.inFlight)
		}
		r.Close()
	}
}

// TestDeferredSyncNotWhenOthersWait: a carrying lease whose acks hand a
// waiting receive a message (a task's outcome sent to its reply_to queue)
// or make a webhook due is synced as any write: those are answered only
// after a sync, which a deferred batch would not have.
func TestDeferredSyncNotWhenOthersWait(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		req  store.NewTask
	}{
		{"reply_to with a receive waiting", store.NewTask{ReplyTo: "replies", ResultTTL: time.Hour}},
		{"a webhook", store.NewTask{NotifyURL: "https://hooks.example.test/done", NotifySecret: "s", ResultTTL: time.Hour}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := handoffStore(t, vfs.NewMem())
			if _, err := s.CreateQueue(context.Background(), &store.CreateQueueParams{Name: "replies",
				Config: store.DefaultConfig("replies"), Now: handoffNow}); err != nil {
				t.Fatal(err)
			}
			sendMessages(t, s, store.NewMessage{Body: []byte(`"job"`), Kind: store.BodyJSON, Task: &c.req})
			m := leaseUpTo(t, s, handoffNow, 1)
			claim := s.Claim(&store.LeaseParams{Queue: "replies", Max: 1, Visibility: time.Minute})
			res, err := s.Lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 1, Visibility: time.Minute,
				Now: handoffNow, Retry: retryNow, Acks: []string{m[0].Lease}, AckResults: [][]byte{[]byte(`1`)}, DeferSync: true})
			if err != nil || len(res.Acked) != 1 || res.Acked[0] != nil {
				t.Fatalf("carrying lease = %+v, %v", res, err)
			}
			if res.SyncMark != 0 {
				t.Fatalf("the lease was deferred (mark %d) though its change must be synced", res.SyncMark)
			}
			if c.req.ReplyTo == "" {
				claim.Withdraw()
				return
			}
			select {
			case <-claim.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the waiting receive of the reply queue was never answered")
			}
			if got, err := claim.Withdraw(); err != nil || len(got) != 1 {
				t.Fatalf("reply queue's receive got %d messages, %v; want the outcome", len(got), err)
			}
		})
	}
}

// TestDeferredSyncKicksServeEveryWaiter: on an otherwise idle store, many
// deferred leases at once, each then waited for, all get synced: a kick
// that comes while a sync is under way is served by another.
func TestDeferredSyncKicksServeEveryWaiter(t *testing.T) {
	t.Parallel()
	s := handoffStore(t, vfs.NewMem())
	const rounds, width = 300, 8
	for round := range rounds {
		bodies := make([]string, width)
		for i := range bodies {
			bodies[i] = `"m"`
		}
		sendBodies(t, s, bodies...)
		got := leaseUpTo(t, s, handoffNow, width)
		errs := make(chan error, width)
		for _, m := range got {
			go func() {
				res, err := s.Lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 1, Visibility: time.Minute,
					Now: handoffNow, Retry: retryNow, Acks: []string{m.Lease}, DeferSync: true})
				if err == nil && res.SyncMark != 0 {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					err = s.WaitSynced(ctx, res.SyncMark)
					cancel()
				}
				errs <- err
			}()
		}
		for range got {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

// TestRefusalSyncsDeferredAcks: a nack of a lease whose ack a waiting
// receive applied unsynced is refused only once that ack is durable: the
// refusal gets the deferred batch synced, as a read would, and answers
// after it.
func TestRefusalSyncsDeferredAcks(t *testing.T) {
	t.Parallel()
	s := handoffStore(t, vfs.NewMem())
	sendBodies(t, s, `"a"`)
	got := leaseUpTo(t, s, handoffNow, 1)
	res := carryAcks(t, s, got[0].Lease)
	if res.SyncMark == 0 {
		t.Fatal("the carried ack was not deferred")
	}
	synced := func() uint64 {
		s.dur.mu.Lock()
		defer s.dur.mu.Unlock()
		return s.dur.synced
	}
	if n := synced(); n >= res.SyncMark {
		t.Fatalf("deferred batch %d noted synced (up to %d) before any sync", res.SyncMark, n)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := s.Nack(context.Background(), &store.NackParams{Queue: "q", Lease: got[0].Lease, Retry: retryNow, Now: handoffNow})
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, store.ErrLeaseExpired) {
			t.Fatalf("nack of the acked lease = %v, want %v", err, store.ErrLeaseExpired)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the nack of a lease acked by a deferred batch did not answer")
	}
	if n := synced(); n < res.SyncMark {
		t.Fatalf("the nack was refused with the ack it was refused on (batch %d) not yet synced (up to %d)", res.SyncMark, n)
	}
}
