package pebblestore

import (
	"testing"

	"github.com/courierhq/courier/internal/store"
)

// TestEngineWork: a flush and a compaction of a store's tables show in its
// engine work, nothing before them does, and nothing after Close.
func TestEngineWork(t *testing.T) {
	t.Parallel()
	s, tick := openWithQueue(t, Options{Dir: t.TempDir(), MemTableBytes: 1 << 20, CacheBytes: 1 << 20})
	defer s.Close()
	start := s.EngineWork()
	if start != (store.EngineWork{}) {
		t.Fatalf("a fresh store's engine work: %+v, want none", start)
	}
	for range 4 {
		send(t, s, batchOf(1000), tick())
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	flushed := s.EngineWork()
	if flushed.Flushes < 1 || flushed.FlushTime <= 0 || flushed.BytesWritten == 0 {
		t.Fatalf("after a flush: %+v", flushed)
	}
	drain(t, s, 3000, 500, tick)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	// Rewrite every table: the deletes of the drain meet what they delete.
	if err := s.db.Compact(t.Context(), []byte{0}, []byte{0xff, 0xff}, true); err != nil {
		t.Fatal(err)
	}
	w := s.EngineWork().Since(flushed)
	if w.Compactions < 1 || w.CompactionTime <= 0 || w.BytesWritten == 0 || w.Flushes < 1 {
		t.Errorf("the drain's flush and a compaction: %+v", w)
	}
	// A report asked for after Close reads no engine.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if w := s.EngineWork(); w != (store.EngineWork{}) {
		t.Errorf("a closed store's engine work: %+v, want none", w)
	}
	if h := s.WALSyncs(); h.Count != 0 {
		t.Errorf("a closed store's WAL syncs: %d, want none", h.Count)
	}
}
