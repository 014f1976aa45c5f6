package server_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
)

// stuckSyncFS holds every WAL sync while shut, as a disk that stopped
// answering would: the write that waits for it never returns.
type stuckSyncFS struct {
	vfs.FS
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	entered chan struct{}
}

func (fs *stuckSyncFS) Unwrap() vfs.FS { return fs.FS }

func (fs *stuckSyncFS) shut() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.gate, fs.entered = make(chan struct{}), make(chan struct{}, 64)
}

func (fs *stuckSyncFS) open() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.gate != nil {
		close(fs.gate)
		fs.gate = nil
	}
}

func (fs *stuckSyncFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, cat)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &stuckSyncFile{File: f, fs: fs}, nil
}

type stuckSyncFile struct {
	vfs.File
	fs *stuckSyncFS
}

func (f *stuckSyncFile) wait() {
	f.fs.mu.Lock()
	gate, entered := f.fs.gate, f.fs.entered
	f.fs.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
}

func (f *stuckSyncFile) Sync() error     { f.wait(); return f.File.Sync() }
func (f *stuckSyncFile) SyncData() error { f.wait(); return f.File.SyncData() }

// TestStopWithAStuckWrite: a stop ends by its deadline and a short grace
// even when a write never finishes its fsync, answering ErrNotClosed, so
// that SIGTERM can end the process; the close finishes once the disk
// answers again. The write was never acknowledged.
func TestStopWithAStuckWrite(t *testing.T) {
	defer server.SetCloseGrace(200 * time.Millisecond)()
	fs := &stuckSyncFS{FS: vfs.NewMem()}
	s, err := server.Start(t.Context(), server.Config{Addr: "127.0.0.1:0", DataDir: "data", FS: fs,
		CacheBytes: 1 << 20, FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	c := courier.NewClient(s.URL())
	defer c.CloseIdleConnections()
	if _, err := c.Send(t.Context(), "q", courier.NewMessage{Body: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	fs.shut()
	defer fs.open()
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(context.Background(), "q", courier.NewMessage{Body: []byte(`2`)})
		sent <- err
	}()
	<-fs.entered // the send's write waits for a sync that does not come

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(ctx) }()
	select {
	case err = <-stopped:
	case <-time.After(10 * time.Second):
		fs.open()
		<-stopped
		t.Fatal("Stop did not end while a write was stuck")
	}
	if !errors.Is(err, server.ErrNotClosed) {
		t.Fatalf("Stop = %v; want ErrNotClosed", err)
	}
	if err := <-sent; err == nil {
		t.Fatal("the send whose write never synced was answered 2xx")
	}
	select {
	case err := <-s.Closed():
		t.Fatalf("the store closed (%v) with a write still waiting for its sync", err)
	default:
	}
	fs.open()
	select {
	case <-s.Closed():
	case <-time.After(30 * time.Second):
		t.Fatal("the store did not close once the sync went through")
	}
}
