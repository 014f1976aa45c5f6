// Package gatefs is a filesystem for tests whose write-ahead-log syncs can
// be held: while its syncs are held, a write is applied (visible) but its
// fsync does not return, for as long as the test likes — a durable-answer
// test's way to look between apply and sync, and a stuck disk's stand-in.
package gatefs

import (
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FS is fs with gated syncs of its ".log" files.
type FS struct {
	vfs.FS
	mu      sync.Mutex
	gate    chan struct{} // nil: not held; else syncs wait for it to close
	entered chan struct{} // gets a value when a sync starts waiting
}

// New wraps fs, its syncs not held.
func New(fs vfs.FS) *FS { return &FS{FS: fs} }

// Hold holds the syncs that start from now on.
func (fs *FS) Hold() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.gate, fs.entered = make(chan struct{}), make(chan struct{}, 64)
}

// Release lets held syncs go on; a no-op when none are held.
func (fs *FS) Release() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.gate != nil {
		close(fs.gate)
		fs.gate = nil
	}
}

// Entered gets a value each time a sync starts waiting, since the last
// Hold.
func (fs *FS) Entered() <-chan struct{} {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.entered
}

// Unwrap is the FS under the gate (the embedded FS's Unwrap would answer
// nil, hiding it).
func (fs *FS) Unwrap() vfs.FS { return fs.FS }

// Create gates the syncs of WAL files.
func (fs *FS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, cat)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &file{File: f, fs: fs}, nil
}

type file struct {
	vfs.File
	fs *FS
}

func (f *file) Sync() error     { f.wait(); return f.File.Sync() }
func (f *file) SyncData() error { f.wait(); return f.File.SyncData() }

func (f *file) wait() {
	f.fs.mu.Lock()
	gate, entered := f.fs.gate, f.fs.entered
	f.fs.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
}
