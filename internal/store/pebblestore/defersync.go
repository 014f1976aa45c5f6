package pebblestore

import (
	"context"

	"github.com/cockroachdb/pebble/v2"

	"github.com/courierhq/courier/internal/store"
)

var _ store.SyncDeferrer = (*Store)(nil)

// A lease with DeferSync that hands out nothing (a long-poll about to wait,
// carrying acks) is applied without a sync request: run marks it deferred
// and answers its batch number as LeaseResult.SyncMark. The next synced
// batch covers it, since Pebble syncs its log in order and syncs a log it
// rotates away from before it starts the next (DB.rotateWAL). A wait for a
// deferred batch (WaitSynced, or any read that may have seen it) kicks
// syncSoon, so that none waits for a write that may never come.

// WaitSynced returns once batch mark is synced; see store.SyncDeferrer.
func (s *Store) WaitSynced(ctx context.Context, mark uint64) error {
	return s.dur.wait(ctx, mark)
}

// syncSoon syncs the log on a goroutine of its own, unless one is already
// at it; that one then syncs again, so no request goes unserved.
func (s *Store) syncSoon() {
	if s.syncReqs.Add(1) > 1 {
		return
	}
	go func() {
		for {
			req := s.syncReqs.Load()
			s.syncLog()
			if s.syncReqs.CompareAndSwap(req, 0) {
				return
			}
		}
	}()
}

// syncLog syncs every batch applied so far, by an empty log record written
// with a sync, and notes them synced.
func (s *Store) syncLog() {
	s.mu.Lock()
	if err := s.usable(); err != nil {
		closed := s.closed
		s.mu.Unlock()
		if !closed { // closed: Close notes the log synced, or failed
			s.dur.noteFailed(err)
		}
		return
	}
	n := s.dur.mark()
	s.ops.Add(1) // Close waits for it before closing the engine
	s.mu.Unlock()
	defer s.ops.Done()
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		s.syncFailed(err)
		return
	}
	s.dur.noteSynced(n)
}
