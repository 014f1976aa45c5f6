package pebblestore

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/courierhq/courier/internal/store"
)

// engineHealth follows the storage engine's flushes, compactions and
// write stalls, and is read without the store's mutex. When they fail (a
// full disk under an undersized reserve, docs/reliability.md) the engine
// stalls writes — too many memtables waiting for a flush, or too many
// level-0 files waiting for a compaction — and a commit then waits,
// holding the store's mutex, until the stall ends; every call behind it
// waited too, /readyz included. While writes are stalled and the last
// flush or compaction failed, or a stall has lasted stallLimit, calls are
// refused at once instead (refused), and Ready says why.
type engineHealth struct {
	stalls     atomic.Int32          // commits waiting in a write stall
	stalledAt  atomic.Int64          // unix nanoseconds when the current stall began
	flushErr   atomic.Pointer[error] // the last flush's error; nil after a success
	compactErr atomic.Pointer[error] // the last compaction's error; nil after a success
	// Pebble's reports on single deletes (see unindex): one that met two
	// writes of its key (the rule broken), or none (harmless when a queue's
	// range deletion got there first; else a delete of a key never written).
	nondeterministic, ineffectual atomic.Int64
}

// stallLimit is how long a stall without a failed flush or compaction is
// waited out before calls are refused: after a full disk, a stall can
// outlive the errors that caused it.
const stallLimit = 10 * time.Second

// listener is the Pebble event listener that keeps h; log hears what
// must never happen.
func (h *engineHealth) listener(log *slog.Logger) pebble.EventListener {
	return pebble.EventListener{
		// A single delete that met two writes of its key would let the older
		// come back: an index key was written twice, a bug of the store's.
		PossibleAPIMisuse: func(i pebble.PossibleAPIMisuseInfo) {
			switch i.Kind {
			case pebble.NondeterministicSingleDelete:
				h.nondeterministic.Add(1)
				log.Error("storage engine: "+i.String()+" (a bug in courier: please report it)", "component", "pebble")
			case pebble.IneffectualSingleDelete:
				h.ineffectual.Add(1)
				log.Debug("storage engine: "+i.String(), "component", "pebble")
			default:
				log.Warn("storage engine: "+i.String(), "component", "pebble")
			}
		},
		FlushEnd: func(i pebble.FlushInfo) {
			err := i.Err
			if err != nil && strings.Contains(err.Error(), "empty table") {
				err = nil // Pebble's report of a flush that had nothing to write
			}
			note(&h.flushErr, err)
		},
		CompactionEnd: func(i pebble.CompactionInfo) {
			if !errors.Is(i.Err, pebble.ErrCancelledCompaction) { // a cancelled one says nothing
				note(&h.compactErr, i.Err)
			}
		},
		WriteStallBegin: func(pebble.WriteStallBeginInfo) {
			if h.stalls.Add(1) == 1 {
				h.stalledAt.Store(time.Now().UnixNano())
			}
		},
		WriteStallEnd: func() { h.stalls.Add(-1) },
	}
}

// note records err (nil: a success) as the last outcome.
func note(last *atomic.Pointer[error], err error) {
	if err == nil {
		last.Store(nil)
		return
	}
	last.Store(&err)
}

// stuck reports why writes cannot go on now, or nil.
func (h *engineHealth) stuck() error {
	if h.stalls.Load() <= 0 {
		return nil
	}
	p := h.flushErr.Load()
	if p == nil {
		p = h.compactErr.Load()
	}
	if p != nil {
		return fmt.Errorf("%w: writes are stalled because the storage engine cannot write its files (%w): free disk space, then restart",
			store.ErrUnavailable, *p)
	}
	if d := time.Duration(time.Now().UnixNano() - h.stalledAt.Load()); d > stallLimit {
		return fmt.Errorf("%w: the storage engine has stalled writes for %v", store.ErrUnavailable, d.Round(time.Second))
	}
	return nil // an ordinary stall: flushes and compactions end it
}

// refused is why the store refuses work now, read without the mutex (a
// stalled commit may hold it): closed or failed, else a stuck engine.
func (s *Store) refused() error {
	if p := s.down.Load(); p != nil {
		return *p
	}
	return s.health.stuck()
}
