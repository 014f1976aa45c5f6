package pebblestore

import (
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestWALYield: a WAL file, new or recycled, yields on its first write
// after a sync, before writing, and on no other write; SyncTo (no commit's
// sync) does not count; other files never yield.
func TestWALYield(t *testing.T) {
	t.Parallel()
	mem := vfs.NewMem()
	yields, current, written := 0, "", int64(0)
	fs := walYieldFS{FS: mem, yield: func() {
		yields++
		fi, err := mem.Stat(current)
		if err != nil {
			t.Fatal(err)
		}
		if current == "000001.log" && fi.Size() != written {
			t.Errorf("yield %d came with %d bytes in the log, want %d: it must come before the write", yields, fi.Size(), written)
		}
	}}
	step := func(f vfs.File, what string, sync func() error, want int) {
		t.Helper()
		if sync != nil {
			if err := sync(); err != nil {
				t.Fatal(err)
			}
		}
		n, err := f.Write([]byte("record"))
		if err != nil {
			t.Fatal(err)
		}
		written += int64(n)
		if yields != want {
			t.Fatalf("%s: %d yields, want %d", what, yields, want)
		}
	}
	current = "000001.log"
	f, err := fs.Create(current, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	step(f, "a new log's first write", nil, 0)
	step(f, "a write after SyncData", f.SyncData, 1)
	step(f, "a second write", nil, 1)
	step(f, "a write after Sync", f.Sync, 2)
	step(f, "a write after SyncTo", func() error { _, err := f.SyncTo(6); return err }, 2)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	current = "000002.log"
	r, err := fs.ReuseForWrite("000001.log", current, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	step(r, "a recycled log's first write", nil, 2)
	step(r, "a recycled log's write after SyncData", r.SyncData, 3)

	current = "000003.sst"
	o, err := fs.Create(current, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	step(o, "a table's write after SyncData", o.SyncData, 3)
}

// TestWALYieldInStore: the store's Pebble writes its WAL through the
// yielding FS, over the zero-filling one, and the yield is Gosched.
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
	if name := runtime.FuncForPC(reflect.ValueOf(fs.yield).Pointer()).Name(); name != "runtime.Gosched" {
		t.Fatalf("the store's WAL files yield by %s, want runtime.Gosched", name)
	}
}

// openedFS notes whether the last file it opened was recycled.
type openedFS struct {
	vfs.FS
	recycled atomic.Bool
}

func (fs *openedFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if isWAL(name) {
		fs.recycled.Store(false)
	}
	return fs.FS.Create(name, c)
}

func (fs *openedFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	fs.recycled.Store(true)
	return fs.FS.ReuseForWrite(oldname, newname, c)
}

// TestWALYieldThroughPebble: Pebble, configured as the store configures
// it, writes its WALs, new and recycled, through the yield: synced commits
// one after another yield between them.
func TestWALYieldThroughPebble(t *testing.T) {
	t.Parallel()
	opened := &openedFS{FS: vfs.NewMem()}
	var yields atomic.Int64
	po := pebbleOptions(Options{FS: opened, Logger: slog.New(slog.DiscardHandler)}, nil)
	po.FS = walYieldFS{FS: newWALFillFS(opened), yield: func() { yields.Add(1) }}
	db, err := pebble.Open("db", po)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	const commits = 20
	seen := map[bool]bool{} // recycled → a round on such a log yielded
	for round := range 6 {
		recycled, before := opened.recycled.Load(), yields.Load()
		for i := range commits {
			if err := db.Set(fmt.Appendf(nil, "k%d-%d", round, i), []byte("v"), pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}
		if got := yields.Load() - before; got < commits/2 {
			t.Errorf("round %d (recycled log: %v): %d yields for %d synced commits, want at least %d", round, recycled, got, commits, commits/2)
		} else {
			seen[recycled] = true
		}
		if err := db.Flush(); err != nil { // the next round writes a new or recycled log
			t.Fatal(err)
		}
	}
	if !seen[false] || !seen[true] {
		t.Fatalf("rounds that yielded on a new log: %v, on a recycled one: %v; want both", seen[false], seen[true])
	}
}
