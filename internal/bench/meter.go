package bench

import (
	"sort"
	"sync/atomic"
	"time"
)

// A meter counts the items of one phase of a workload as they complete,
// for the progress bar and for throughput windows: it notes the moment the
// count crosses each window's end. Windows are count-based (each holds
// total/windows items), so noting them costs an atomic add and, rarely, a
// clock read; nothing grows with the count.
type meter struct {
	name  string
	total int64
	start time.Time

	done atomic.Int64
	ends []int64        // the count at which each window ends; the last is total
	at   []atomic.Int64 // ns after start when the count reached ends[k]; 0: not yet
	last atomic.Int64   // ns after start of the latest add
}

// newMeter starts a meter of total items (≥ 1) split into windows windows.
func newMeter(name string, total int64, windows int) *meter {
	return newMeterAt(name, windowEnds(total, windows))
}

// newMeterAt starts a meter whose windows end at the counts ends, which
// ascend; the last is the total.
func newMeterAt(name string, ends []int64) *meter {
	return &meter{name: name, total: ends[len(ends)-1], start: time.Now(),
		ends: ends, at: make([]atomic.Int64, len(ends))}
}

// add counts n more items done, and returns the count so far.
func (m *meter) add(n int64) int64 {
	if n <= 0 {
		return m.done.Load()
	}
	now := m.done.Add(n)
	old := now - n
	k := sort.Search(len(m.ends), func(i int) bool { return m.ends[i] > old })
	if k < len(m.ends) && m.ends[k] <= now {
		t := int64(time.Since(m.start))
		for ; k < len(m.ends) && m.ends[k] <= now; k++ {
			m.at[k].Store(max(t, 1))
		}
	}
	m.last.Store(int64(time.Since(m.start)))
	return now
}

// count is how many items are done.
func (m *meter) count() int64 { return m.done.Load() }

// elapsed is the time from the meter's start to the moment the count
// reached its total, or to the latest add if it never did.
func (m *meter) elapsed() time.Duration {
	if t := m.at[len(m.at)-1].Load(); t > 0 {
		return time.Duration(t)
	}
	return time.Duration(m.last.Load())
}

// reachedAt is when the count reached n, exactly if n ends a window, else
// when the first window ending beyond n ended. 0 if not yet.
func (m *meter) reachedAt(n int64) time.Duration {
	k := sort.Search(len(m.ends), func(i int) bool { return m.ends[i] >= n })
	if k == len(m.ends) {
		return 0
	}
	return time.Duration(m.at[k].Load())
}

// windows reports the throughput of each window that has ended. Clocks read
// by different goroutines can be a hair out of order; a window's time is
// never taken as less than a microsecond.
func (m *meter) windows() []Window {
	out := make([]Window, 0, len(m.ends))
	var prevN, prevT int64
	for k, end := range m.ends {
		t := m.at[k].Load()
		if t == 0 {
			break
		}
		t = max(t, prevT)
		dt := max(t-prevT, int64(time.Microsecond))
		out = append(out, Window{
			EndSeconds: time.Duration(t).Seconds(),
			Count:      end - prevN,
			PerSecond:  float64(end-prevN) / time.Duration(dt).Seconds(),
		})
		prevN, prevT = end, t
	}
	return out
}
