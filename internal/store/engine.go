package store

import "time"

// EngineReporter is an optional capability of a Store: the background work
// of its storage engine (flushes of memtables to tables, compactions of
// tables), which takes CPU and disk from the requests it runs beside. The
// embedded store has one; PostgreSQL's is the database's own.
type EngineReporter interface {
	EngineWork() EngineWork
}

// EngineWork counts a storage engine's background work since it opened.
// Durations are wall time, an upper bound on the CPU time: a flush or a
// compaction runs on one goroutine, which also waits for its writes, its
// fsyncs and, on busy CPUs, its turn.
type EngineWork struct {
	Flushes   int64
	FlushTime time.Duration // of the flushes that have ended
	// Compactions other than those that only moved whole tables to another
	// level or deleted them (which change metadata alone); cancelled and
	// failed ones count.
	Compactions int64
	// CompactionTime is every compaction's, the running ones' so far.
	CompactionTime time.Duration
	// BytesWritten is what flushes and compactions wrote to tables.
	BytesWritten uint64
}

// Since is w less before: the work between two snapshots of one engine. A
// before that is not an earlier snapshot (some count larger than w's)
// counted none of w's: w is returned whole.
func (w EngineWork) Since(before EngineWork) EngineWork {
	if before.Flushes > w.Flushes || before.FlushTime > w.FlushTime || before.Compactions > w.Compactions ||
		before.CompactionTime > w.CompactionTime || before.BytesWritten > w.BytesWritten {
		return w
	}
	return EngineWork{
		Flushes:        w.Flushes - before.Flushes,
		FlushTime:      w.FlushTime - before.FlushTime,
		Compactions:    w.Compactions - before.Compactions,
		CompactionTime: w.CompactionTime - before.CompactionTime,
		BytesWritten:   w.BytesWritten - before.BytesWritten,
	}
}

// Time is the flushes' and compactions' time together.
func (w EngineWork) Time() time.Duration { return w.FlushTime + w.CompactionTime }
