package pebblestore

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

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
// flush or compaction failed, calls are refused at once instead, and Ready
// says why.
type engineHealth struct {
	stalls     atomic.Int32          // commits waiting in a write stall
	flushErr   atomic.Pointer[error] // the last flush's error; nil after a success
	compactErr atomic.Pointer[error] // the last compaction's error; nil after a success
}

// listener is the Pebble event listener that keeps h.
func (h *engineHealth) listener() pebble.EventListener {
	return pebble.EventListener{
		FlushEnd: func(i pebble.FlushInfo) {
			// Pebble reports a flush that wrote no table with an error of
			// its own ("empty table"), though nothing failed.
			h.note(&h.flushErr, i.Err, i.Err != nil && strings.Contains(i.Err.Error(), "empty table"))
		},
		CompactionEnd: func(i pebble.CompactionInfo) {
			h.note(&h.compactErr, i.Err, errors.Is(i.Err, pebble.ErrCancelledCompaction))
		},
		WriteStallBegin: func(pebble.WriteStallBeginInfo) { h.stalls.Add(1) },
		WriteStallEnd:   func() { h.stalls.Add(-1) },
	}
}

// note records err (nil: success) in last, unless benign.
func (h *engineHealth) note(last *atomic.Pointer[error], err error, benign bool) {
	switch {
	case err == nil:
		last.Store(nil)
	case !benign:
		last.Store(&err)
	}
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
	if p == nil {
		return nil // a stall that flushes and compactions will end: wait for it
	}
	return fmt.Errorf("%w: writes are stalled because the storage engine cannot write its files (%w): free disk space, then restart",
		store.ErrUnavailable, *p)
}
