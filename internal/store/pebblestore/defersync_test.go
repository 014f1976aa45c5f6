package pebblestore

import (
	"context"
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
