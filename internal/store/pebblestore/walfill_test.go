package pebblestore

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// TestWALFill: the WAL is written over zeros laid down ahead of it, and a
// power cut at any moment leaves a WAL whose zero tail Pebble reads as its
// end: every acknowledged send is there after the restart.
func TestWALFill(t *testing.T) {
	t.Parallel()
	fs := vfs.NewCrashableMem()
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: unlimited("q"), Now: crashBase}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 3000) // ~3 KB a send: the log passes several fill chunks
	sent := 0
	var crashed *vfs.MemFS
	for i := range 1200 {
		if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: crashBase,
			Messages: []store.NewMessage{{Body: fmt.Appendf(nil, "%d:%s", i, body), Kind: store.BodyBinary}}}); err != nil {
			t.Fatal(err)
		}
		sent++
		if i == 700 {
			crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
		}
	}
	wal := newestWAL(t, fs)
	data, err := fs.UnsafeGetFileDataBuffer("db/" + wal)
	if err != nil {
		t.Fatal(err)
	}
	records := len(bytes.TrimRight(data, "\x00"))
	if len(data) < records+memFillAhead || len(data)%memFillChunk != 0 {
		t.Errorf("WAL %s: %d bytes of records in a file of %d: want zeros at least %d bytes ahead, in chunks of %d",
			wal, records, len(data), memFillAhead, memFillChunk)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		fs   *vfs.MemFS
		want int
	}{{"after a power cut", crashed, 701}, {"after a clean stop", fs, sent}} {
		r, err := Open(Options{Dir: "db", FS: tc.fs, FreeBytes: plenty, CacheBytes: 1 << 20})
		if err != nil {
			t.Fatalf("%s: reopen: %v", tc.name, err)
		}
		n, err := drainQueue(r, "q", func(store.Message) {})
		r.Close()
		if err != nil || n != tc.want {
			t.Errorf("%s: %d messages back (%v), want the %d acknowledged", tc.name, n, err, tc.want)
		}
	}
}

// preallocCounter is a file that counts the preallocations reaching it.
type preallocCounter struct {
	vfs.File
	calls int
}

func (p *preallocCounter) Preallocate(offset, length int64) error {
	p.calls++
	return nil
}

// TestWALFillSkipsPreallocate: Pebble's preallocation of a new WAL does
// not reach a file being zero-filled, and does once a fill has failed.
func TestWALFillSkipsPreallocate(t *testing.T) {
	fs := vfs.NewMem()
	base, err := fs.Create("000002.log", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	under := &preallocCounter{File: base}
	f := &walFillFile{File: under, chunk: memFillChunk, ahead: memFillAhead}
	if _, err := f.Write([]byte("record")); err != nil {
		t.Fatal(err)
	}
	if err := f.Preallocate(0, 70<<20); err != nil || under.calls != 0 {
		t.Errorf("Preallocate while filling: err %v, %d calls reached the file; want none", err, under.calls)
	}
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	if err := f.Preallocate(0, 70<<20); err != nil || under.calls != 1 {
		t.Errorf("Preallocate after a failed fill: err %v, %d calls reached the file; want 1", err, under.calls)
	}
}
