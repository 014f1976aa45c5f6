package bench

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear, as HdrHistogram's: values below 2^subBits
// have a bucket each; above, every power of two is split into
// 2^(subBits-1) equal buckets, so a bucket is at most 1/2^(subBits-1) of
// its values wide (0.8% with subBits 8). Any duration fits in about 7,300
// counters (58 KiB), however many samples are recorded: twenty million
// latencies do not need twenty million slots, and no sample is dropped
// (a reservoir would lose exactly the rare slow ones that p99 and max are
// about).
const (
	subBits  = 8
	subCount = 1 << subBits     // buckets below 2^subBits, one per value
	subHalf  = subCount / 2     // buckets per power of two above it
	expCount = 64 - subBits + 1 // powers of two above 2^subBits, with room
	nBuckets = subCount + expCount*subHalf
)

// Histogram counts durations (in nanoseconds) in log-linear buckets. Its
// percentiles are within 0.8% of the exact ones. The zero value is empty
// and ready; it is not safe for concurrent use: give each goroutine its
// own and Merge them.
type Histogram struct {
	counts   []uint64 // made on first Record
	n        uint64
	min, max int64
	sum      float64
}

// bucketOf is the index of v's bucket (v ≥ 0).
func bucketOf(v int64) int {
	u := uint64(v)
	if u < subCount {
		return int(u)
	}
	e := bits.Len64(u) - subBits // ≥ 1: u>>e is in [subHalf, subCount)
	return subCount + (e-1)*subHalf + int(u>>e) - subHalf
}

// bucketRange is the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < subCount {
		return int64(i), int64(i)
	}
	e := (i-subCount)/subHalf + 1
	m := uint64((i-subCount)%subHalf + subHalf)
	lo64 := m << e
	hi64 := lo64 + (1 << e) - 1
	if hi64 > math.MaxInt64 || hi64 < lo64 {
		hi64 = math.MaxInt64
	}
	return int64(lo64), int64(hi64)
}

// Record counts one duration; a negative one counts as 0.
func (h *Histogram) Record(d time.Duration) { h.RecordN(d, 1) }

// RecordN counts n samples of duration d, as for the messages of one
// request, which share its latency.
func (h *Histogram) RecordN(d time.Duration, n int) {
	if n <= 0 {
		return
	}
	v := max(int64(d), 0)
	if h.counts == nil {
		h.counts = make([]uint64, nBuckets)
		h.min = v
	}
	h.counts[bucketOf(v)] += uint64(n)
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.n += uint64(n)
	h.sum += float64(v) * float64(n)
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, nBuckets)
		h.min = o.min
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count is how many samples were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest sample, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the samples' average, exactly (0 without samples).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Percentile is the sample of nearest rank ⌈p·n⌉ (p in [0, 1]) within the
// bucket's precision: the middle of its bucket, kept within the smallest
// and largest sample. 0 without samples.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		lo, hi := bucketRange(i)
		mid := lo + (hi-lo)/2
		return time.Duration(min(max(mid, h.min), h.max))
	}
	return time.Duration(h.max)
}

// ms is d in milliseconds, the unit of every latency figure of a result.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
