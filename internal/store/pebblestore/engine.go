package pebblestore

import "github.com/courierhq/courier/internal/store"

var _ store.EngineReporter = (*Store)(nil)

// EngineWork reports Pebble's flushes and compactions so far, from its
// metrics (which take its mutex: a call per phase of a benchmark, not per
// request); nothing once the store is closed.
func (s *Store) EngineWork() store.EngineWork {
	var w store.EngineWork
	s.whileOpen(func() {
		m := s.db.Metrics()
		w = store.EngineWork{
			Flushes:        m.Flush.Count,
			FlushTime:      m.Flush.WriteThroughput.WorkDuration,
			Compactions:    m.Compact.Count - m.Compact.MoveCount - m.Compact.DeleteOnlyCount,
			CompactionTime: m.Compact.Duration,
		}
		for i := range m.Levels {
			w.BytesWritten += m.Levels[i].TableBytesFlushed + m.Levels[i].TableBytesCompacted
		}
	})
	return w
}

// whileOpen runs f unless the store is closed, and keeps Close from
// closing the engine until f has returned: a report may be asked for at
// any moment (a benchmark's phase ends on a goroutine of its own), and
// must not read an engine that is closing.
func (s *Store) whileOpen(f func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.ops.Add(1)
	s.mu.Unlock()
	defer s.ops.Done()
	f()
}
