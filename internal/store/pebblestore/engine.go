package pebblestore

import "github.com/courierhq/courier/internal/store"

var _ store.EngineReporter = (*Store)(nil)

// EngineWork reports Pebble's flushes and compactions so far, from its
// metrics (which take its mutex: a call per phase of a benchmark, not per
// request).
func (s *Store) EngineWork() store.EngineWork {
	m := s.db.Metrics()
	w := store.EngineWork{
		Flushes:        m.Flush.Count,
		FlushTime:      m.Flush.WriteThroughput.WorkDuration,
		Compactions:    m.Compact.Count - m.Compact.MoveCount - m.Compact.DeleteOnlyCount,
		CompactionTime: m.Compact.Duration,
	}
	for i := range m.Levels {
		w.BytesWritten += m.Levels[i].TableBytesFlushed + m.Levels[i].TableBytesCompacted
	}
	return w
}
