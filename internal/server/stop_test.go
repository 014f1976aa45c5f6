package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
	"github.com/courierhq/courier/internal/store/pebblestore/gatefs"
)

// stuckWrite starts a server over a filesystem whose WAL syncs it then
// holds, and a send whose write waits for a sync that does not come (its
// outcome on sent). The caller releases the syncs.
func stuckWrite(t *testing.T) (s *server.Server, fs *gatefs.FS, sent <-chan error) {
	t.Helper()
	fs = gatefs.New(vfs.NewMem())
	s, err := server.Start(t.Context(), server.Config{Addr: "127.0.0.1:0", DataDir: "data", FS: fs,
		CacheBytes: 1 << 20, FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	c := courier.NewClient(s.URL())
	t.Cleanup(c.CloseIdleConnections)
	if _, err := c.Send(t.Context(), "q", courier.NewMessage{Body: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	fs.Hold()
	out := make(chan error, 1)
	go func() {
		_, err := c.Send(context.Background(), "q", courier.NewMessage{Body: []byte(`2`)})
		out <- err
	}()
	<-fs.Entered()
	return s, fs, out
}

// stopStuck stops s with ctx while a write is stuck: Stop must end, with
// ErrNotClosed, and the stuck send must not be answered 2xx; the store
// then closes once the syncs are released.
func stopStuck(t *testing.T, ctx context.Context, s *server.Server, fs *gatefs.FS, sent <-chan error) {
	t.Helper()
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(ctx) }()
	var err error
	select {
	case err = <-stopped:
	case <-time.After(10 * time.Second):
		fs.Release()
		<-stopped
		t.Fatal("Stop did not end while a write was stuck")
	}
	if !errors.Is(err, server.ErrNotClosed) {
		t.Errorf("Stop = %v; want ErrNotClosed", err)
	}
	select {
	case err := <-s.Closed():
		t.Fatalf("the store closed (%v) with a write still waiting for its sync", err)
	default:
	}
	fs.Release()
	if err := <-sent; err == nil {
		t.Error("the send whose write never synced was answered 2xx")
	}
	select {
	case <-s.Closed():
	case <-time.After(30 * time.Second):
		t.Fatal("the store did not close once the sync went through")
	}
}

// TestStopWithAStuckWrite: a stop ends by its deadline and a short grace
// even when a write never finishes its fsync, answering ErrNotClosed, so
// that SIGTERM can end the process; the close finishes once the disk
// answers again. The write was never acknowledged.
func TestStopWithAStuckWrite(t *testing.T) {
	defer server.SetCloseGrace(200 * time.Millisecond)()
	s, fs, sent := stuckWrite(t)
	defer fs.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	stopStuck(t, ctx, s, fs, sent)
}

// memServer starts a server on an in-memory filesystem.
func memServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.Start(t.Context(), server.Config{Addr: "127.0.0.1:0", DataDir: "data", FS: vfs.NewMem(),
		CacheBytes: 1 << 20, FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestClosedAfterStopWithoutDeadline: Closed answers at once after a Stop
// that closed the store, also when Stop's context has no deadline.
func TestClosedAfterStopWithoutDeadline(t *testing.T) {
	s := memServer(t)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.Closed():
		if err != nil {
			t.Fatalf("Closed = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Closed did not answer after a Stop without a deadline that closed the store")
	}
}

// TestClosedTakenBeforeStop: the channel Closed gives before (or while)
// Stop runs answers once the store is closed.
func TestClosedTakenBeforeStop(t *testing.T) {
	s := memServer(t)
	closed := s.Closed()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the channel Closed gave before Stop never answered")
	}
}

// lateDeadline is a context whose deadline, once asked for, has just
// passed: Stop asks for it after it has started the close, which by then
// has finished, so that the close and the deadline are both there when
// Stop looks.
type lateDeadline struct{ context.Context }

func (c lateDeadline) Deadline() (time.Time, bool) {
	time.Sleep(150 * time.Millisecond) // the close of an idle in-memory store takes milliseconds
	return time.Now(), true
}

// TestStopWithTheCloseDoneAtItsDeadline: a store that has closed when
// Stop's time is up is a clean stop, not ErrNotClosed.
func TestStopWithTheCloseDoneAtItsDeadline(t *testing.T) {
	defer server.SetCloseGrace(0)()
	for i := range 12 { // before the fix, each stop had even odds of ErrNotClosed
		s := memServer(t)
		if err := s.Stop(lateDeadline{context.Background()}); err != nil {
			t.Fatalf("stop %d: %v; the store had closed", i, err)
		}
		<-s.Closed()
	}
}

// TestStopWithAStuckWriteAndACancelledContext: a stop whose context has
// no deadline but ends (cancelled: a signal's, a test's) gives up on a
// stuck close closeGrace later too, as one whose deadline passed does.
func TestStopWithAStuckWriteAndACancelledContext(t *testing.T) {
	defer server.SetCloseGrace(200 * time.Millisecond)()
	s, fs, sent := stuckWrite(t)
	defer fs.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stopStuck(t, ctx, s, fs, sent)
}
