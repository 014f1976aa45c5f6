package pebblestore

import (
	"testing"
	"time"
)

// BenchmarkBacklogWrites fills a queue with b.N messages of 128 bytes, then
// drains it (lease + ack, batches of 1000), and reports what the storage
// engine wrote to its tables for each message, apart from the WAL: the
// fill's flushes and compactions, and the drain's. The store is left to
// finish its compactions after each phase, so each is charged its own.
// Bytes written are a measure of the compaction work a backlog costs that
// does not move with the machine's noise, as a rate does.
//
//	go test -run '^$' -bench BacklogWrites -benchtime 1000000x ./internal/store/pebblestore/
func BenchmarkBacklogWrites(b *testing.B) {
	s, tick := openWithQueue(b, Options{Dir: b.TempDir()})
	defer s.Close()
	b.ResetTimer()
	w0 := tableBytesWritten(b, s)
	for left := b.N; left > 0; left -= 1000 {
		send(b, s, batchOf(min(left, 1000)), tick())
	}
	w1 := tableBytesWritten(b, s)
	t0 := time.Now()
	drain(b, s, b.N, 1000, tick)
	d := time.Since(t0)
	w2 := tableBytesWritten(b, s)
	b.ReportMetric(float64(w1-w0)/float64(b.N), "fill-B/msg")
	b.ReportMetric(float64(w2-w1)/float64(b.N), "drain-B/msg")
	b.ReportMetric(float64(b.N)/d.Seconds(), "drain-msgs/s")
}

// tableBytesWritten flushes s, waits until no compaction has run for a
// while, and returns the bytes its flushes and compactions have written.
func tableBytesWritten(b *testing.B, s *Store) uint64 {
	b.Helper()
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	const quiet = 2 * time.Second
	last, since := int64(-1), time.Now()
	for time.Since(since) < quiet {
		m := s.db.Metrics()
		if n := m.Compact.Count; n != last || m.Compact.NumInProgress > 0 {
			last, since = n, time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t := s.db.Metrics().Total()
	return t.TableBytesFlushed + t.TableBytesCompacted
}
