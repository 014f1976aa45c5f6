package pebblestore

import (
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// TestPanicInVerbFailsStore: a verb that panics while holding the store's
// lock leaves the store failed, not locked: later calls answer ErrFailed
// at once.
func TestPanicInVerbFailsStore(t *testing.T) {
	s, err := Open(Options{Dir: "/data", FS: vfs.NewMem(), FreeBytes: plenty})
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the verb's panic", r)
			}
		}()
		_ = s.update(time.Now(), func(*txn) error { panic("boom") })
	}()
	done := make(chan error, 1)
	go func() {
		_, err := s.Send(t.Context(), &store.SendParams{Queue: "q", Now: time.Now(),
			Messages: []store.NewMessage{{Body: []byte("x")}}})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrFailed) {
			t.Errorf("Send after a panic: %v, want ErrFailed", err)
		}
	case <-time.After(10 * time.Second):
		// Not closed: Close would block on the same lock.
		t.Fatal("Send after a panic blocked: the store's lock was left held")
	}
	if err := s.Close(); err != nil && !errors.Is(err, store.ErrFailed) {
		t.Errorf("Close: %v", err)
	}
}
