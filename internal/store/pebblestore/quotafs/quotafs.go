// Package quotafs is a vfs.FS with a byte budget, for filling a disk in
// tests without filling one. Writes that would take the files written
// through it past the budget fail with ENOSPC, wrapped as the os package
// wraps it (so Pebble sees a full disk), and GetDiskUsage reports the budget
// left, so a store's free-space guard sees the same disk. Raising the budget
// (SetLimit) or removing files frees space.
//
// Space is counted per file as the largest of its size and what was
// preallocated for it. A hard link counts its bytes again (a real filesystem
// shares them): the budget errs on the side of filling early. Files are
// counted from when they are created, or opened for writing, through fs.
package quotafs

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FS wraps a vfs.FS with a byte budget.
type FS struct {
	vfs.FS
	mu       sync.Mutex // guards limit, sizes, used, freed
	limit    int64
	sizes    map[string]int64 // bytes counted for each file
	used     int64
	peak     int64
	freed    chan struct{} // closed, and replaced, whenever used falls or limit rises
	refused  atomic.Int64
	prealloc atomic.Int64
}

var _ vfs.FS = (*FS)(nil)

// New wraps inner with a budget of limit bytes.
func New(inner vfs.FS, limit uint64) *FS {
	return &FS{FS: inner, limit: int64(limit), sizes: map[string]int64{}, freed: make(chan struct{})}
}

// SetLimit changes the budget.
func (fs *FS) SetLimit(limit uint64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.limit = int64(limit)
	fs.signal()
}

// Used is how many bytes the files written through fs hold.
func (fs *FS) Used() uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return uint64(fs.used)
}

// Peak is the most bytes the files written through fs have held at once.
func (fs *FS) Peak() uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return uint64(fs.peak)
}

// Refused counts the writes refused for lack of space.
func (fs *FS) Refused() int64 { return fs.refused.Load() }

// RefusedPreallocations counts the preallocations refused for lack of
// space; Pebble ignores those (a write then claims the space, or fails).
func (fs *FS) RefusedPreallocations() int64 { return fs.prealloc.Load() }

// WaitFree blocks until at least n bytes of the budget are free, or ctx ends.
func (fs *FS) WaitFree(ctx context.Context, n uint64) error {
	for {
		fs.mu.Lock()
		free, ch := fs.limit-fs.used, fs.freed
		fs.mu.Unlock()
		if free >= int64(n) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// signal wakes WaitFree. Requires mu.
func (fs *FS) signal() {
	close(fs.freed)
	fs.freed = make(chan struct{})
}

// grow counts n more bytes for name (size is the file's new extent), or
// refuses them. Requires mu.
func (fs *FS) grow(name string, extent int64) bool {
	n := extent - fs.sizes[name]
	if n <= 0 {
		return true
	}
	if fs.used+n > fs.limit {
		return false
	}
	fs.sizes[name] = extent
	fs.used += n
	fs.peak = max(fs.peak, fs.used)
	return true
}

// forget stops counting name. Requires mu.
func (fs *FS) forget(name string) {
	if n, ok := fs.sizes[name]; ok {
		fs.used -= n
		delete(fs.sizes, name)
		fs.signal()
	}
}

// GetDiskUsage reports the budget as the disk.
func (fs *FS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	avail := max(fs.limit-fs.used, 0)
	return vfs.DiskUsage{AvailBytes: uint64(avail), TotalBytes: uint64(fs.limit), UsedBytes: uint64(fs.used)}, nil
}

// Unwrap returns the wrapped filesystem.
func (fs *FS) Unwrap() vfs.FS { return fs.FS }

func (fs *FS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, cat)
	if err != nil {
		return nil, err
	}
	fs.mu.Lock()
	fs.forget(name) // Create truncates
	fs.sizes[name] = 0
	fs.mu.Unlock()
	return &file{File: f, fs: fs, name: name}, nil
}

func (fs *FS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, cat, opts...)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs, name: name}, nil
}

func (fs *FS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, cat)
	if err != nil {
		return nil, err
	}
	fs.mu.Lock()
	fs.move(oldname, newname)
	fs.mu.Unlock()
	return &file{File: f, fs: fs, name: newname}, nil
}

// move counts old's bytes as new's. Requires mu.
func (fs *FS) move(oldname, newname string) {
	n, ok := fs.sizes[oldname]
	fs.forget(newname)
	if ok {
		delete(fs.sizes, oldname)
		fs.sizes[newname] = n
	}
}

func (fs *FS) Rename(oldname, newname string) error {
	if err := fs.FS.Rename(oldname, newname); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.move(oldname, newname)
	return nil
}

func (fs *FS) Link(oldname, newname string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !fs.grow(newname, fs.sizes[oldname]) {
		fs.refused.Add(1)
		return enospc("link", newname)
	}
	if err := fs.FS.Link(oldname, newname); err != nil {
		fs.forget(newname)
		return err
	}
	return nil
}

func (fs *FS) Remove(name string) error {
	if err := fs.FS.Remove(name); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.forget(name)
	return nil
}

func (fs *FS) RemoveAll(dir string) error {
	if err := fs.FS.RemoveAll(dir); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for name := range fs.sizes {
		if name == dir || strings.HasPrefix(name, prefix) {
			fs.forget(name)
		}
	}
	return nil
}

func enospc(op, name string) error {
	return &os.PathError{Op: op, Path: name, Err: syscall.ENOSPC}
}

// file counts what is written to a file of an FS.
type file struct {
	vfs.File
	fs   *FS
	name string
	pos  int64 // where Write writes next
}

// reserve claims the space for bytes up to extent, or refuses.
func (f *file) reserve(op string, extent int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if _, ok := f.fs.sizes[f.name]; !ok {
		// Opened for writing, not created through fs: count what it holds.
		var size int64
		if st, err := f.File.Stat(); err == nil {
			size = st.Size()
		}
		f.fs.sizes[f.name] = size
		f.fs.used += size
	}
	if !f.fs.grow(f.name, extent) {
		return enospc(op, f.name)
	}
	return nil
}

func (f *file) Write(p []byte) (int, error) {
	if err := f.reserve("write", f.pos+int64(len(p))); err != nil {
		f.fs.refused.Add(1)
		return 0, err
	}
	n, err := f.File.Write(p)
	f.pos += int64(n)
	return n, err
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if err := f.reserve("write", off+int64(len(p))); err != nil {
		f.fs.refused.Add(1)
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *file) Preallocate(off, length int64) error {
	if err := f.reserve("fallocate", off+length); err != nil {
		f.fs.prealloc.Add(1)
		return err
	}
	return f.File.Preallocate(off, length)
}
