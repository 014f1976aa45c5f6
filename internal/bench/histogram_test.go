package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactPercentile is the nearest-rank percentile of sorted: the value of
// rank ⌈p·n⌉, as Histogram.Percentile defines it.
func exactPercentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// TestHistogramPercentiles compares the histogram's percentiles with those
// of the sorted samples, for distributions from nanoseconds to minutes:
// each must be within a bucket's precision (1/128) of the exact one.
func TestHistogramPercentiles(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() time.Duration{
		"tiny":      func() time.Duration { return time.Duration(rng.IntN(300)) },
		"uniform":   func() time.Duration { return time.Duration(rng.Int64N(int64(time.Second))) },
		"lognormal": func() time.Duration { return time.Duration(math.Exp(rng.NormFloat64()*2 + 14)) },
		"bimodal": func() time.Duration {
			if rng.IntN(100) == 0 {
				return 2*time.Minute + time.Duration(rng.Int64N(int64(time.Second)))
			}
			return time.Millisecond + time.Duration(rng.Int64N(int64(time.Millisecond)))
		},
		"constant": func() time.Duration { return 1234567 * time.Nanosecond },
	}
	for name, gen := range dists {
		var h Histogram
		samples := make([]time.Duration, 50_000)
		var sum float64
		for i := range samples {
			samples[i] = gen()
			sum += float64(samples[i])
			h.Record(samples[i])
		}
		slices.Sort(samples)
		if h.Count() != uint64(len(samples)) {
			t.Errorf("%s: count %d, want %d", name, h.Count(), len(samples))
		}
		for _, p := range []float64{0, 0.001, 0.5, 0.9, 0.99, 0.999, 1} {
			got, want := h.Percentile(p), exactPercentile(samples, p)
			if diff := math.Abs(float64(got - want)); diff > float64(want)/128+1 {
				t.Errorf("%s: p%g = %v, exact %v: off by %.3f%%", name, 100*p, got, want, 100*diff/float64(want))
			}
		}
		if h.Max() != samples[len(samples)-1] {
			t.Errorf("%s: max %v, want exactly %v", name, h.Max(), samples[len(samples)-1])
		}
		if mean := sum / float64(len(samples)); math.Abs(float64(h.Mean())-mean) > mean*1e-9+1 {
			t.Errorf("%s: mean %v, want %v", name, h.Mean(), time.Duration(mean))
		}
	}
}

// TestHistogramBuckets: every value falls in a bucket whose range holds it,
// buckets are ordered, and a bucket is at most 1/128 of its values wide.
func TestHistogramBuckets(t *testing.T) {
	t.Parallel()
	values := []int64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 1e9, 1<<40 + 12345, math.MaxInt64 / 3, math.MaxInt64}
	prev := -1
	for _, v := range values {
		i := bucketOf(v)
		if i < prev || i >= nBuckets {
			t.Errorf("bucketOf(%d) = %d: out of order or range (previous %d, %d buckets)", v, i, prev, nBuckets)
		}
		prev = i
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if lo >= subCount && float64(hi-lo+1)/float64(lo) > 1.0/128+1e-12 { // below: one value per bucket
			t.Errorf("bucket %d = [%d, %d] is wider than 1/128 of its values", i, lo, hi)
		}
	}
}

func TestHistogramMergeAndRecordN(t *testing.T) {
	t.Parallel()
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		all.Record(d)
	}
	var merged Histogram
	merged.Merge(&a)
	merged.Merge(&b)
	merged.Merge(&Histogram{}) // empty: changes nothing
	for _, p := range []float64{0, 0.5, 0.99, 1} {
		if merged.Percentile(p) != all.Percentile(p) {
			t.Errorf("p%g: merged %v, all %v", 100*p, merged.Percentile(p), all.Percentile(p))
		}
	}
	if merged.Count() != 1000 || merged.Max() != all.Max() || merged.Mean() != all.Mean() {
		t.Errorf("merged count %d max %v mean %v; want %d %v %v", merged.Count(), merged.Max(), merged.Mean(), 1000, all.Max(), all.Mean())
	}

	var n Histogram
	n.RecordN(3*time.Millisecond, 99)
	n.RecordN(time.Second, 1)
	n.RecordN(time.Hour, 0) // nothing
	if n.Count() != 100 || n.Percentile(0.99) > 3100*time.Microsecond || n.Max() != time.Second {
		t.Errorf("RecordN: count %d p99 %v max %v; want 100, ~3ms, 1s", n.Count(), n.Percentile(0.99), n.Max())
	}

	var empty Histogram
	if empty.Percentile(0.5) != 0 || empty.Max() != 0 || empty.Mean() != 0 || empty.Count() != 0 {
		t.Errorf("an empty histogram reports %v %v %v %d", empty.Percentile(0.5), empty.Max(), empty.Mean(), empty.Count())
	}
	var neg Histogram
	neg.Record(-time.Second)
	if neg.Max() != 0 || neg.Percentile(1) != 0 {
		t.Errorf("a negative sample counts as %v, want 0", neg.Max())
	}
}
