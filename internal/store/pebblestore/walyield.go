package pebblestore

// A WAL write that lets the requests its last sync answered run first.
//
// Every answer waits for an fsync of the WAL. Pebble writes and syncs the
// WAL from one goroutine: once a sync is done it wakes each commit that was
// waiting for it, then writes and syncs what came in meanwhile. Go's
// scheduler queues the goroutines it wakes on the waker's own P, and a
// goroutine in a system call keeps its P until the runtime's monitor takes
// it back, which takes two of the monitor's checks, 20 µs to 10 ms apart;
// another P steals them only when it has nothing else to run. So on two
// busy CPUs the answered requests sat runnable behind the next fdatasync
// (about 0.3 ms here), sometimes behind the one after. An execution trace
// of 16 producers and 16 consumers, one request per message
// (docs/benchmarks-journal.md), found a handler's wait for its fsync was 0.35 ms
// of waiting and 0.84 ms of being runnable (p50); 0.61 and 0.08 with this.
//
// So the log's first write after a sync yields the P (runtime.Gosched):
// the requests that sync answered run, then the write and its sync. Pebble
// has already taken what that write carries, so a commit that comes during
// the yield waits for the sync after; measured, the trade pays (w1 one
// request per message, 4 or 16 producers and as many consumers: 8-10%
// more messages/s, less CPU). The yield is in the write, not the sync, so
// that the WAL's sync latencies (which `courier bench` reports as a
// measure of the disk) stay the disk's own; Pebble writes with none of
// its locks held, so the yield blocks no commit. SyncTo (sync_file_range,
// which Pebble would call between writes if WALBytesPerSync were set)
// answers no commit, so it does not count as a sync here.

import (
	"runtime"
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
	if err != nil || !isWAL(name) {
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

// walYieldFile is a WAL file that yields on its first write after a sync
// (Sync or SyncData: the syncs that answer commits).
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
