package bench

import (
	"context"
	"errors"
	"fmt"
	"github.com/courierhq/courier/internal/server"
	"github.com/courierhq/courier/internal/store"
	"os"
	"path/filepath"
	"time"
)

// The disk's own sync latency, for reading w3. A message's send→receive
// latency on the embedded store contains at least the fdatasync of its
// send (and its lease's), so its p99 cannot be below the disk's; on a
// shared virtual disk that alone varies from well under a millisecond to
// several over a day. syncProbe measures it in the data directory, with
// writes like the WAL's: a small block overwritten in a file whose size
// does not change, synced, at most one per pace.

const (
	syncProbeSamples = 1000
	syncProbePace    = time.Millisecond
	syncProbeBlock   = 4096
)

// syncProbe writes and syncs a block samples times in a temporary file of
// dir, one write per pace at most, and returns the sync latencies.
func syncProbe(ctx context.Context, dir string, samples int, pace time.Duration) (_ *Histogram, err error) {
	f, err := os.CreateTemp(dir, "sync-probe-*")
	if err != nil {
		return nil, err
	}
	defer func() {
		err = errors.Join(err, f.Close(), os.Remove(f.Name()))
	}()
	block := make([]byte, syncProbeBlock)
	// The file is written out and synced first (not truncated to size,
	// which leaves holes): the probe's syncs then allocate no block and
	// change no size, as those of courier's zero-filled WAL do not.
	for i := range samples {
		if _, err := f.WriteAt(block, int64(i)*syncProbeBlock); err != nil {
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	h := &Histogram{}
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for i := range samples {
		start := time.Now()
		if _, err := f.WriteAt(block, int64(i)*syncProbeBlock); err != nil {
			return nil, err
		}
		if err := datasync(f); err != nil {
			return nil, err
		}
		h.Record(time.Since(start))
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h, nil
}

// noteSyncProbe measures the disk of dir after a w3 run, outside its
// measured window, and notes its sync latency, or why it could not.
func noteSyncProbe(ctx context.Context, extra map[string]any, dir string) {
	if dir == "" {
		return // not an embedded store of this process
	}
	h, err := syncProbe(ctx, filepath.Clean(dir), syncProbeSamples, syncProbePace)
	if err != nil {
		extra["disk_sync"] = fmt.Sprintf("not measured: %v", err)
		return
	}
	extra["disk_sync_p50_ms"] = ms(h.Percentile(0.5))
	extra["disk_sync_p99_ms"] = ms(h.Percentile(0.99))
	extra["disk_sync_max_ms"] = ms(h.Max())
}

// walSyncs follows the fsyncs of an in-process embedded store's WAL during
// a run. Unlike the probe above, they are the run's own: their latency
// includes what the load does to the disk, and their count, against the
// requests', shows how well group commit shared them.
type walSyncs struct {
	srv    *server.Server // nil: nothing to follow
	before store.SyncHistogram
}

func startWALSyncs(tg *target) walSyncs {
	if tg.srv == nil {
		return walSyncs{}
	}
	h, ok := tg.srv.WALSyncs()
	if !ok {
		return walSyncs{}
	}
	return walSyncs{srv: tg.srv, before: h}
}

// note adds the run's WAL fsyncs to extra: how many, their p50 and p99,
// how many took over 2 ms (every answer waiting for one of those is late
// by W3's measure) and the slowest's bucket (Pebble's buckets: every
// 0.1 ms up to 5 ms, then exponential).
func (w walSyncs) note(extra map[string]any) {
	if w.srv == nil {
		return
	}
	now, _ := w.srv.WALSyncs()
	h := now.Since(w.before)
	extra["wal_syncs"] = h.Count
	if h.Count > 0 {
		extra["wal_sync_p50_ms"] = ms(h.Quantile(0.5))
		extra["wal_sync_p99_ms"] = ms(h.Quantile(0.99))
		extra["wal_sync_max_ms"] = ms(h.Max())
		extra["wal_syncs_over_2ms"] = h.Over(2 * time.Millisecond)
	}
}
