package pebblestore

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/courierhq/courier/internal/store"
)

var _ store.SyncReporter = (*Store)(nil)

// WALSyncs reports the WAL's fsyncs so far, from the latency histogram
// Pebble keeps of them (100 µs buckets up to 5 ms, then exponential);
// none once the store is closed.
func (s *Store) WALSyncs() store.SyncHistogram {
	m := &dto.Metric{}
	var h prometheus.Histogram
	s.whileOpen(func() { h = s.db.Metrics().LogWriter.FsyncLatency })
	if h == nil || h.Write(m) != nil || m.Histogram == nil {
		return store.SyncHistogram{}
	}
	var out store.SyncHistogram
	for _, b := range m.Histogram.Bucket {
		out.Upper = append(out.Upper, time.Duration(b.GetUpperBound())) // observed in nanoseconds
		out.Cumulative = append(out.Cumulative, b.GetCumulativeCount())
	}
	out.Count = m.Histogram.GetSampleCount()
	out.Sum = time.Duration(m.Histogram.GetSampleSum()) // nanoseconds, as the buckets
	return out
}
