package httpapi_test

import (
	"bytes"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestE2EMetricsWAL: a server on the embedded store reports its WAL's
// fsyncs in GET /metrics: a histogram that counts the fsync a send waited
// for.
func TestE2EMetricsWAL(t *testing.T) {
	t.Parallel()
	c := start(t)
	c.must("POST", "/v1/queues/q/messages", `{"body":1}`, 201, nil)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(c.must("GET", "/metrics", nil, 200, nil)))
	if err != nil {
		t.Fatal(err)
	}
	fam := fams["courier_store_wal_fsync_duration_seconds"]
	if fam == nil || len(fam.GetMetric()) != 1 {
		t.Fatalf("no WAL fsync histogram: %v", fam)
	}
	h := fam.GetMetric()[0].GetHistogram()
	if h.GetSampleCount() < 1 || h.GetSampleSum() <= 0 || len(h.GetBucket()) < 10 {
		t.Fatalf("WAL fsync histogram after a send: count %d, sum %v, %d buckets", h.GetSampleCount(), h.GetSampleSum(), len(h.GetBucket()))
	}
	last := h.GetBucket()[len(h.GetBucket())-1]
	if last.GetCumulativeCount() > h.GetSampleCount() {
		t.Errorf("bucket counts %d beyond the count %d", last.GetCumulativeCount(), h.GetSampleCount())
	}
}
