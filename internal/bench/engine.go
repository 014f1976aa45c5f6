package bench

import "github.com/courierhq/courier/internal/store"

// engineReader reads the background work (flushes, compactions) of the
// storage engine of an in-process embedded store; nil when there is none
// to read (PostgreSQL, or a server elsewhere). That work shares the CPUs
// and the disk with the requests, and where it falls explains much of a
// run's spread: W4's two compared phases are each about a second long.
type engineReader func() store.EngineWork

// read is the engine's work so far; false with no engine to read.
func (e engineReader) read() (store.EngineWork, bool) {
	if e == nil {
		return store.EngineWork{}, false
	}
	return e(), true
}

func engineOf(tg *target) engineReader {
	if tg.srv == nil {
		return nil
	}
	if _, ok := tg.srv.EngineWork(); !ok {
		return nil
	}
	return func() store.EngineWork {
		w, _ := tg.srv.EngineWork()
		return w
	}
}

// noteEngineWork adds w, the engine's work over a run, to extra.
func noteEngineWork(extra map[string]any, w store.EngineWork) {
	extra["engine_flushes"] = w.Flushes
	extra["engine_flush_seconds"] = w.FlushTime.Seconds()
	extra["engine_compactions"] = w.Compactions
	extra["engine_compaction_seconds"] = w.CompactionTime.Seconds()
	extra["engine_bytes_written"] = w.BytesWritten
}
