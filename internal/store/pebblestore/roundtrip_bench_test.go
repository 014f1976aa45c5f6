package pebblestore

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// BenchmarkStoreRoundTrip measures what the store itself spends on a
// message's send, lease and ack, in batches of 100 with a backlog of 1,000
// ahead of the consumer, as in `courier bench w1`, and one at a time with
// a backlog of 10, as in `courier bench w1 --batch 1`: on an in-memory
// filesystem, so the figure is the CPU a round trip costs under the
// store's mutex and in Pebble, without waiting for a disk; wal-B/msg is
// what it writes. Files are real
// (in the test's temporary directory) but their syncs return at once. b.N
// counts messages.
//
//	go test -run '^$' -bench StoreRoundTrip -benchmem -count 6 ./internal/store/pebblestore/
func BenchmarkStoreRoundTrip(b *testing.B) {
	for _, c := range []struct{ batch, backlog int }{{100, 1000}, {1, 10}} {
		b.Run(fmt.Sprintf("batch=%d", c.batch), func(b *testing.B) { storeRoundTrip(b, c.batch, c.backlog) })
	}
}

func storeRoundTrip(b *testing.B, batch, backlog int) {
	s, err := Open(Options{Dir: b.TempDir(), FS: noSyncFS{vfs.Default}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	}()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tick := func() time.Time { now = now.Add(time.Microsecond); return now }
	if _, err := s.CreateQueue(b.Context(), &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: now}); err != nil {
		b.Fatal(err)
	}
	msgs := batchOf(batch)
	for range backlog / batch {
		send(b, s, msgs, tick())
	}
	walBefore := s.db.Metrics().WAL.BytesIn
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		send(b, s, msgs, tick())
		drain(b, s, batch, batch, tick)
	}
	b.StopTimer()
	// What a round trip writes, a figure that does not depend on the
	// machine's noise: every byte goes to the WAL and the memtable.
	b.ReportMetric(float64(s.db.Metrics().WAL.BytesIn-walBefore)/float64(b.N), "wal-B/msg")
}

// noSyncFS is fs whose files' syncs return at once, doing nothing.
type noSyncFS struct{ vfs.FS }

func (fs noSyncFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, cat)
	return noSyncFile{f}, err
}

func (fs noSyncFS) ReuseForWrite(old, name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, cat)
	return noSyncFile{f}, err
}

type noSyncFile struct{ vfs.File }

func (noSyncFile) Sync() error                             { return nil }
func (noSyncFile) SyncData() error                         { return nil }
func (noSyncFile) SyncTo(int64) (fullSync bool, err error) { return false, nil }
