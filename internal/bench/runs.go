package bench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"text/tabwriter"
)

// Runs is what several runs of one workload measured, each on a fresh
// server (or queue): every run's Result, and the median of each figure
// over them, since one run on a shared machine says little about the
// next. It marshals to the JSON of `courier bench --runs N --json`.
type Runs struct {
	Runs   []*Result `json:"runs"`
	Median Median    `json:"median"`
	// PerSecondMin and PerSecondMax bound the runs' throughputs.
	PerSecondMin float64 `json:"per_second_min"`
	PerSecondMax float64 `json:"per_second_max"`
}

// Median holds the median over the runs of each figure, taken figure by
// figure (the median p99 need not be the median run's p99).
type Median struct {
	PerSecond    float64 `json:"per_second"`
	LatencyMS    Latency `json:"latency_ms"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	DiskBytes    int64   `json:"disk_bytes"`
	// Extra holds the medians of the numeric extras that every run
	// reported (a W4 ratio, the WAL's slow fsyncs, …): an int64 where the
	// runs' were integers (counts, bytes; the median of an even number of
	// runs rounded), so that a key's type does not depend on N; else a
	// float64.
	Extra map[string]any `json:"extra"`
}

// Summarize takes the medians of rs, which must not be empty.
func Summarize(rs []*Result) *Runs {
	of := func(f func(r *Result) float64) float64 {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = f(r)
		}
		return median(vs)
	}
	m := Median{
		PerSecond: of(func(r *Result) float64 { return r.PerSecond }),
		LatencyMS: Latency{
			P50:  of(func(r *Result) float64 { return r.LatencyMS.P50 }),
			P90:  of(func(r *Result) float64 { return r.LatencyMS.P90 }),
			P99:  of(func(r *Result) float64 { return r.LatencyMS.P99 }),
			P999: of(func(r *Result) float64 { return r.LatencyMS.P999 }),
			Max:  of(func(r *Result) float64 { return r.LatencyMS.Max }),
			Mean: of(func(r *Result) float64 { return r.LatencyMS.Mean }),
		},
		CPUSeconds:   of(func(r *Result) float64 { return r.CPUSeconds }),
		PeakRSSBytes: int64(of(func(r *Result) float64 { return float64(r.PeakRSSBytes) })),
		DiskBytes:    int64(of(func(r *Result) float64 { return float64(r.DiskBytes) })),
		Extra:        map[string]any{},
	}
	for k := range rs[0].Extra {
		vs := make([]float64, 0, len(rs))
		whole := true
		for _, r := range rs {
			if v, isInt, ok := number(r.Extra[k]); ok {
				vs = append(vs, v)
				whole = whole && isInt
			}
		}
		if len(vs) < len(rs) {
			continue // not a number, or not in every run
		}
		if v := median(vs); whole {
			m.Extra[k] = int64(math.Round(v))
		} else {
			m.Extra[k] = v
		}
	}
	out := &Runs{Runs: rs, Median: m, PerSecondMin: rs[0].PerSecond, PerSecondMax: rs[0].PerSecond}
	for _, r := range rs {
		out.PerSecondMin = min(out.PerSecondMin, r.PerSecond)
		out.PerSecondMax = max(out.PerSecondMax, r.PerSecond)
	}
	return out
}

// number is v as a float64, if it is a number, and whether it is an
// integer's.
func number(v any) (f float64, isInt, ok bool) {
	switch v := v.(type) {
	case float64:
		return v, false, true
	case int:
		return float64(v), true, true
	case int64:
		return float64(v), true, true
	case uint64:
		return float64(v), true, true
	}
	return 0, false, false
}

// median of vs (not empty); of an even count, the mean of the middle two.
func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// WriteTable writes the runs for people: what ran, a line per run, the
// medians, then the medians of the extras.
func (rs *Runs) WriteTable(w io.Writer) error {
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(t, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	first := rs.Runs[0]
	p := first.Params
	p.Queue = "a fresh one per run"
	row("workload", "%s: %s", first.Workload, first.Title)
	row("target", "%s", first.Target)
	row("durability", "%s", first.Durability)
	row("params", "%s", p.String())
	row("latency is", "%s", first.LatencyIs)
	line := func(perSecond float64, l Latency, cpu float64, rss int64) string {
		return fmt.Sprintf("%s %s/s · p50 %s · p99 %s · max %s · cpu %.2f s · peak rss %s",
			thousands(perSecond), first.Unit, millis(l.P50), millis(l.P99), millis(l.Max), cpu, mib(rss))
	}
	for i, r := range rs.Runs {
		row(fmt.Sprintf("run %d", i+1), "%s", line(r.PerSecond, r.LatencyMS, r.CPUSeconds, r.PeakRSSBytes))
	}
	m := rs.Median
	row("median", "%s", line(m.PerSecond, m.LatencyMS, m.CPUSeconds, m.PeakRSSBytes))
	row("range", "%s–%s %s/s", thousands(rs.PerSecondMin), thousands(rs.PerSecondMax), first.Unit)
	for _, k := range slices.Sorted(maps.Keys(m.Extra)) {
		v := extraValue(k, m.Extra[k])
		if m.Extra[k] == int64(0) {
			v = "0" // not "unknown": a count or a size of 0 (a floor of none)
		}
		row(k, "%s (median)", v)
	}
	return t.Flush()
}

// mib is n bytes in MiB, or "unknown" for 0.
func mib(n int64) string {
	if n <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
