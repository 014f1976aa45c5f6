package pebblestore

import (
	"fmt"

	"github.com/courierhq/courier/internal/store"
)

// checkSpace refuses a send that would bring the disk's free space under
// MinFreeBytes. It asks the filesystem on every send: a statfs costs about a
// microsecond, far less than the fsync the send will wait for, and a cached
// answer could let a burst of large sends fill the disk between two checks.
func (s *Store) checkSpace(msgs []store.NewMessage) error {
	need := uint64(0)
	for i := range msgs {
		need += uint64(len(msgs[i].Body)) + 64
		for k, v := range msgs[i].Headers {
			need += uint64(len(k) + len(v))
		}
	}
	free, err := s.opts.FreeBytes()
	if err != nil {
		return fmt.Errorf("check free disk space: %w", err)
	}
	// The WAL and the memtable's later flush each write the data once.
	if free < s.opts.MinFreeBytes || free-s.opts.MinFreeBytes < 2*need {
		return fmt.Errorf("%w: %d bytes free, %d kept in reserve", store.ErrNoSpace, free, s.opts.MinFreeBytes)
	}
	return nil
}
