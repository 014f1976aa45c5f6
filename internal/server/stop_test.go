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

// TestStopWithAStuckWrite: a stop ends by its deadline and a short grace
// even when a write never finishes its fsync, answering ErrNotClosed, so
// that SIGTERM can end the process; the close finishes once the disk
// answers again. The write was never acknowledged.
func TestStopWithAStuckWrite(t *testing.T) {
	defer server.SetCloseGrace(200 * time.Millisecond)()
	fs := gatefs.New(vfs.NewMem())
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
	fs.Hold()
	defer fs.Release()
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(context.Background(), "q", courier.NewMessage{Body: []byte(`2`)})
		sent <- err
	}()
	<-fs.Entered() // the send's write waits for a sync that does not come

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(ctx) }()
	select {
	case err = <-stopped:
	case <-time.After(10 * time.Second):
		fs.Release()
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
	fs.Release()
	select {
	case <-s.Closed():
	case <-time.After(30 * time.Second):
		t.Fatal("the store did not close once the sync went through")
	}
}
