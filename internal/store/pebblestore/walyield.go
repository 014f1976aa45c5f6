package pebblestore

// A WAL write that lets the requests its last sync answered run first.
//
// Every answer waits for an fsync of the WAL. Pebble writes and syncs the
// WAL from one goroutine: once a sync is done it wakes each commit that was
// waiting for it, then writes and syncs what came in meanwhile. Go's
// scheduler queues the goroutines it wakes on the waker's own P, and a
// goroutine in a system call keeps its P until the runtime's monitor takes
// it back, which it does late, or not at all while another P looks idle.
// So the answered requests sat runnable behind the next fdatasync (about
// 0.3 ms here), sometimes behind the one after. An execution trace of 16
// producers and 16 consumers, one request per message
// (docs/benchmarks.md), found a handler's wait for its fsync was 0.32 ms
// of waiting and 0.75 ms of being runnable (p50).
//
// So the log's first write after a sync yields the P (runtime.Gosched):
// the requests that sync answered run, then the write and its sync. Pebble
// has already taken what that write carries, so a commit that comes during
// the yield waits for the sync after; measured, the trade pays (w1 one
// request per message, 4 and 16 clients: 8-10% more messages/s, less
// CPU). The yield is in the write, not the sync, so that the WAL's sync
// latencies (which `courier bench` reports as a measure of the disk) stay
// the disk's own; Pebble writes without holding the log's lock, which
// every commit needs, so the yield blocks no commit.

import (
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// walYieldFS is fs, whose WAL files yield on their first write after a
// sync; yield is runtime.Gosched outside tests.
type walYieldFS struct {
	vfs.FS
	yield func()
}

func newWALYieldFS(fs vfs.FS) walYieldFS { return walYieldFS{fs, runtime.Gosched} }

func (fs walYieldFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &walYieldFile{File: f, yield: fs.yield}, nil
}

// ReuseForWrite is how Pebble opens most WAL files: it recycles old ones.
func (fs walYieldFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	if err != nil {
		return f, err
	}
	return &walYieldFile{File: f, yield: fs.yield}, nil
}

// Unwrap is the FS under the yielding.
func (fs walYieldFS) Unwrap() vfs.FS { return fs.FS }

// walYieldFile is a WAL file that yields on its first write after a sync.
type walYieldFile struct {
	vfs.File
	yield  func()
	synced atomic.Bool // a sync ended since the last write
}

func (f *walYieldFile) Write(p []byte) (int, error) {
	if f.synced.Swap(false) {
		f.yield()
	}
	return f.File.Write(p)
}

func (f *walYieldFile) Sync() error {
	defer f.synced.Store(true)
	return f.File.Sync()
}

func (f *walYieldFile) SyncData() error {
	defer f.synced.Store(true)
	return f.File.SyncData()
}

func (f *walYieldFile) SyncTo(length int64) (bool, error) {
	defer f.synced.Store(true)
	return f.File.SyncTo(length)
}
