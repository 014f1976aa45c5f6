package bench

import "github.com/courierhq/courier/internal/store"

// engineReader reads the background work (flushes, compactions) of the
// storage engine of an in-process server's store: false when the store
// does not report it (PostgreSQL); nil with no server in this process.
// That work shares the CPUs and the disk with the requests, and where it
// falls explains much of a run's spread: W4's two compared phases are each
// about a second long.
type engineReader func() (store.EngineWork, bool)

// read is the engine's work so far; false with no engine to read.
func (e engineReader) read() (store.EngineWork, bool) {
	if e == nil {
		return store.EngineWork{}, false
	}
	return e()
}

func engineOf(tg *target) engineReader {
	if tg.srv == nil {
		return nil
	}
	return tg.srv.EngineWork
}

// noteEngineWork adds w, the engine's work over a run, to extra.
func noteEngineWork(extra map[string]any, w store.EngineWork) {
	extra["engine_flushes"] = w.Flushes
	extra["engine_flush_seconds"] = w.FlushTime.Seconds()
	extra["engine_compactions"] = w.Compactions
	extra["engine_compaction_seconds"] = w.CompactionTime.Seconds()
	extra["engine_bytes_written"] = w.BytesWritten
}
