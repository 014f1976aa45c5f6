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
// subtest on its own in-memory filesystem: with the default task cache, with
// none (every task read goes to Pebble), and with one so small that it
// evicts all the time.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache int64
	}{{"default", 0}, {"no-task-cache", -1}, {"tiny-task-cache", 300}} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				s, err := pebblestore.Open(pebblestore.Options{
					Dir:            "db",
					FS:             vfs.NewMem(),
					CacheBytes:     1 << 20,
					TaskCacheBytes: tc.cache,
					// An in-memory filesystem has no disk to measure.
					FreeBytes: func() (uint64, error) { return 1 << 40, nil },
				})
				if err != nil {
					t.Fatalf("pebblestore.Open: %v", err)
				}
				return s
			})
		})
	}
}
