package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/courierhq/courier/internal/store"
)

// walCollector exposes the embedded store's WAL fsync latencies, which
// every answer that changes state waits for.
type walCollector struct {
	syncs func() store.SyncHistogram
	desc  *prometheus.Desc
}

func newWALCollector(syncs func() store.SyncHistogram) *walCollector {
	return &walCollector{syncs: syncs, desc: prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "store", "wal_fsync_duration_seconds"),
		"Latency of the embedded store's write-ahead log fsyncs (one serves every write waiting for it): the floor of each answer that changes state.",
		nil, nil)}
}

// Describe sends the one descriptor.
func (c *walCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// walBuckets are the upper bounds, in seconds, of the exposed histogram:
// the store keeps some hundred finer ones (100 µs apart up to 5 ms, then
// growing), too many to store at every scrape.
var walBuckets = []float64{.0002, .0005, .001, .002, .003, .005, .01, .025, .05, .1, .25, .5, 1}

// Collect sends the histogram as the store reports it, in walBuckets;
// nothing once the store is closed.
func (c *walCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.syncs()
	if len(h.Upper) == 0 || len(h.Upper) != len(h.Cumulative) {
		return
	}
	ch <- prometheus.MustNewConstHistogram(c.desc, h.Count, h.Sum.Seconds(), rebucket(h, walBuckets))
}

// rebucket counts h's fsyncs at most each of bounds (seconds) took: the
// cumulative count of h's largest bucket within the bound, exact where a
// bound is one of h's and otherwise never more than the true count.
func rebucket(h store.SyncHistogram, bounds []float64) map[float64]uint64 {
	out := make(map[float64]uint64, len(bounds))
	i := 0
	var n uint64
	for _, b := range bounds {
		for i < len(h.Upper) && h.Upper[i].Seconds() <= b {
			n = h.Cumulative[i]
			i++
		}
		out[b] = n
	}
	return out
}
