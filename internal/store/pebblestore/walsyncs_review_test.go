package pebblestore

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// TestWALSyncsCountsSends: each synced write shows in the WAL's fsync
// histogram, the buckets add up, and asking after Close does not panic.
func TestWALSyncsCountsSends(t *testing.T) {
	ctx := context.Background()
	s, err := Open(Options{Dir: "db", FS: vfs.NewMem(), FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: now}); err != nil {
		t.Fatal(err)
	}
	before := s.WALSyncs()
	for range 5 {
		if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: now, Messages: []store.NewMessage{{Body: []byte(`1`), Kind: store.BodyJSON}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Pebble notes a sync's latency after it has woken the sync's waiters,
	// so the last one may show a moment after its Send returned.
	h := s.WALSyncs().Since(before)
	for deadline := time.Now().Add(5 * time.Second); h.Count < 5 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		h = s.WALSyncs().Since(before)
	}
	t.Logf("before %d, since %d, buckets %d, last %v", before.Count, h.Count, len(h.Upper), h.Upper[len(h.Upper)-1])
	if h.Count < 5 || h.Cumulative[len(h.Cumulative)-1] != h.Count {
		t.Fatalf("5 synced sends: %d syncs, %d in the buckets", h.Count, h.Cumulative[len(h.Cumulative)-1])
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Errorf("WALSyncs after Close panicked: %v", v)
			}
		}()
		s.WALSyncs()
	}()
}
