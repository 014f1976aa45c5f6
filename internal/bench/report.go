package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable writes r for people: the figures of the JSON, one per line.
func (r *Result) WriteTable(w io.Writer) error {
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(t, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	l := r.LatencyMS
	row("workload", "%s: %s", r.Workload, r.Title)
	row("target", "%s", r.Target)
	row("durability", "%s", r.Durability)
	row("params", "%s", r.Params.String())
	row("completed", "%s %s in %.3f s", thousands(float64(r.Count)), r.Unit, r.Seconds)
	row("throughput", "%s %s/s", thousands(r.PerSecond), r.Unit)
	row("latency", "p50 %s · p90 %s · p99 %s · p99.9 %s · max %s · mean %s",
		millis(l.P50), millis(l.P90), millis(l.P99), millis(l.P999), millis(l.Max), millis(l.Mean))
	row("latency is", "%s", r.LatencyIs)
	row("cpu", "%.2f s", r.CPUSeconds)
	row("peak rss", "%s", bytesOrUnknown(r.PeakRSSBytes))
	row("disk", "%s", bytesOrUnknown(r.DiskBytes))
	for i, win := range r.Windows {
		k := ""
		if i == 0 {
			k = "windows"
		}
		row(k, "to %7.2f s: %s %s/s", win.EndSeconds, thousands(win.PerSecond), r.Unit)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Extra)) {
		row(k, "%s", extraValue(k, r.Extra[k]))
	}
	return t.Flush()
}

// String is the parameters that took effect, as flags would set them.
func (p Params) String() string {
	var parts []string
	add := func(name string, v int64) {
		if v != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, v))
		}
	}
	add("count", p.Count)
	parts = append(parts, fmt.Sprintf("size %d", p.Size))
	add("producers", int64(p.Producers))
	add("consumers", int64(p.Consumers))
	add("batch", int64(p.Batch))
	add("concurrency", int64(p.Concurrency))
	if p.Rate != 0 {
		parts = append(parts, "rate "+strconv.FormatFloat(p.Rate, 'f', -1, 64)+"/s")
	}
	add("baseline", p.Baseline)
	add("backlog", int64(p.Backlog))
	add("windows", int64(p.Windows))
	parts = append(parts, "queue "+p.Queue)
	return strings.Join(parts, " · ")
}

func extraValue(k string, v any) string {
	switch v := v.(type) {
	case float64:
		if strings.HasSuffix(k, "_ms") {
			return millis(v)
		}
		if v != 0 && (v < 10 && v > -10) {
			return strconv.FormatFloat(v, 'f', 3, 64)
		}
		return thousands(v)
	case int64:
		if strings.HasSuffix(k, "_bytes") {
			return bytesOrUnknown(v)
		}
		return thousands(float64(v))
	case map[string]int64: // counts by name, as the params line: "ack 20 · receive 23"
		parts := make([]string, 0, len(v))
		for _, name := range slices.Sorted(maps.Keys(v)) {
			parts = append(parts, name+" "+thousands(float64(v[name])))
		}
		return strings.Join(parts, " · ")
	}
	return fmt.Sprint(v)
}

func millis(ms float64) string {
	return strconv.FormatFloat(ms, 'f', 3, 64) + " ms"
}

// thousands rounds f and groups its digits: 1234567.8 → "1,234,568".
func thousands(f float64) string {
	s := strconv.FormatFloat(f, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func bytesOrUnknown(n int64) string {
	if n <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f MiB (%s bytes)", float64(n)/(1<<20), thousands(float64(n)))
}
