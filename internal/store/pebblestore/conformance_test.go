package pebblestore_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pebblestore"
	"github.com/courierhq/courier/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConformance runs the store conformance suite against pebblestore, each
// subtest on its own in-memory filesystem.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := pebblestore.Open(pebblestore.Options{
			Dir:        "db",
			FS:         vfs.NewMem(),
			CacheBytes: 1 << 20,
			// An in-memory filesystem has no disk to measure.
			FreeBytes: func() (uint64, error) { return 1 << 40, nil },
		})
		if err != nil {
			t.Fatalf("pebblestore.Open: %v", err)
		}
		return s
	})
}
