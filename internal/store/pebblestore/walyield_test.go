package pebblestore

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestWALYield: a WAL file, new or recycled, yields on its first write
// after each kind of sync, and on no other write; other files never do.
func TestWALYield(t *testing.T) {
	t.Parallel()
	yields := 0
	fs := walYieldFS{FS: vfs.NewMem(), yield: func() { yields++ }}
	step := func(f vfs.File, what string, sync func() error, want int) {
		t.Helper()
		if sync != nil {
			if err := sync(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.Write([]byte("record")); err != nil {
			t.Fatal(err)
		}
		if yields != want {
			t.Fatalf("%s: %d yields, want %d", what, yields, want)
		}
	}
	f, err := fs.Create("000001.log", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	step(f, "a new log's first write", nil, 0)
	step(f, "a write after SyncData", f.SyncData, 1)
	step(f, "a second write", nil, 1)
	step(f, "a write after Sync", f.Sync, 2)
	step(f, "a write after SyncTo", func() error { _, err := f.SyncTo(6); return err }, 3)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	r, err := fs.ReuseForWrite("000001.log", "000002.log", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	step(r, "a recycled log's first write", nil, 3)
	step(r, "a recycled log's write after SyncData", r.SyncData, 4)

	o, err := fs.Create("000003.sst", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	step(o, "a table's write after SyncData", o.SyncData, 4)
}

// TestWALYieldInStore: the store's Pebble writes its WAL through the
// yielding FS, over the zero-filling one.
func TestWALYieldInStore(t *testing.T) {
	t.Parallel()
	fs, ok := pebbleOptions(Options{FS: vfs.NewMem()}, nil).FS.(walYieldFS)
	if !ok {
		t.Fatal("the store's Pebble FS is not a walYieldFS")
	}
	if _, ok := fs.Unwrap().(walFillFS); !ok {
		t.Fatalf("under the yielding FS: %T, want walFillFS", fs.Unwrap())
	}
	if fs.yield == nil {
		t.Fatal("the store's WAL files have no yield")
	}
}
