package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pebblestore/quotafs"
)

// TestDiskFull fills a small disk (a byte budget over an in-memory
// filesystem: writes past it fail with ENOSPC, and the free space the store
// asks for is what is left of it) through the store. Sends are refused with
// ErrNoSpace before Pebble ever meets a full disk; receive, ack and nack go
// on; the store never fails; sends resume once acks and a compaction have
// freed space; and every message acknowledged as sent and not acked is
// there after a restart.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// The reserve must hold what acks write and what compactions write
	// before they delete their inputs: in a store this small, about its
	// size (docs/reliability.md).
	const budget, reserve = 16 << 20, 10 << 20
	qfs := quotafs.New(vfs.NewMem(), budget)
	opts := Options{Dir: "db", FS: qfs, MinFreeBytes: reserve, MemTableBytes: 256 << 10, CacheBytes: 1 << 20}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	now := crashBase
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: unlimited("q"), Now: now}); err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{} // answered as sent, not acked
	send := func(i int) error {
		msgs := make([]store.NewMessage, 8)
		for j := range msgs {
			msgs[j] = store.NewMessage{Body: fmt.Appendf(nil, "m%d-%d-%s", i, j, strings.Repeat("x", 4000)), Kind: store.BodyBinary}
		}
		_, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: now})
		if err == nil {
			for _, m := range msgs {
				stored[string(m.Body)] = true
			}
		}
		return err
	}

	// Fill: about 5 MiB fit above the reserve.
	refusedAt := -1
	for i := range 1000 {
		if err := send(i); errors.Is(err, store.ErrNoSpace) {
			refusedAt = i
			break
		} else if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if refusedAt < 0 {
		t.Fatalf("1000 sends of 32 KiB fit in a budget of %d bytes", budget)
	}
	usedAtRefusal := qfs.Used()
	t.Logf("sends refused after %d batches (%d messages), %d of %d bytes used", refusedAt, len(stored), usedAtRefusal, budget)
	if err := send(refusedAt); !errors.Is(err, store.ErrNoSpace) {
		t.Fatalf("send on a full disk: %v; want ErrNoSpace", err)
	}

	// Receive, ack and nack on the full disk.
	res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 40, Visibility: time.Minute, Now: now, Retry: retryNow})
	if err != nil || len(res.Messages) != 40 {
		t.Fatalf("lease on a full disk: %d messages, %v; want 40", len(res.Messages), err)
	}
	if _, err := s.Nack(ctx, &store.NackParams{Queue: "q", Lease: res.Messages[0].Lease, Now: now, Retry: retryNow}); err != nil {
		t.Fatalf("nack on a full disk: %v", err)
	}
	ackAll(t, s, res.Messages[1:], now, stored)
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("store not ready on a full disk: %v", err)
	}

	// Free space: ack most messages, then compact (flushing the memtable
	// and dropping the acked messages' data).
	for len(stored) > 200 {
		res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 100, Visibility: time.Minute, Now: now, Retry: retryNow})
		if err != nil || len(res.Messages) == 0 {
			t.Fatalf("lease: %d messages, %v", len(res.Messages), err)
		}
		ackAll(t, s, res.Messages, now, stored)
	}
	if err := s.db.Compact(ctx, []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatalf("compact: %v", err)
	}
	// Obsolete files are deleted in the background: wait for the space.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := qfs.WaitFree(wctx, reserve+1<<20); err != nil {
		t.Fatalf("space not freed by acks and a compaction: %d of %d bytes used: %v", qfs.Used(), budget, err)
	}
	if err := send(10000); err != nil {
		t.Fatalf("send after space was freed: %v", err)
	}
	t.Logf("at most %d of %d bytes used (sends refused from %d)", qfs.Peak(), budget, usedAtRefusal)
	if n := qfs.Refused(); n != 0 {
		t.Errorf("Pebble met a full disk %d times; the store's guard should refuse sends first", n)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("store not ready: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Nothing acknowledged is lost.
	qfs.SetLimit(1 << 30)
	s, err = Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	found := map[string]bool{}
	if _, err := drainQueue(s, "q", func(m store.Message) { found[string(m.Body)] = true }); err != nil {
		t.Fatal(err)
	}
	for b := range stored {
		if !found[b] {
			t.Errorf("%.12s… lost: its send was acknowledged", b)
		}
	}
	if len(found) != len(stored) {
		t.Errorf("found %d messages after the restart, want %d", len(found), len(stored))
	}
	if n := qfs.Refused(); n != 0 {
		t.Errorf("Pebble met a full disk %d times", n)
	}
}

func ackAll(t *testing.T, s *Store, msgs []store.Message, now time.Time, stored map[string]bool) {
	t.Helper()
	leases := make([]string, len(msgs))
	for i, m := range msgs {
		leases[i] = m.Lease
	}
	errs, err := s.Ack(t.Context(), &store.AckParams{Queue: "q", Leases: leases, Now: now})
	if err != nil {
		t.Fatalf("ack: %v", err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("ack %d: %v", i, e)
		}
		delete(stored, string(msgs[i].Body))
	}
}
