package bench

import "time"

// Result is what a run measured. It marshals to the JSON of
// `courier bench --json`, whose fields scripts rely on: fields may be
// added, never renamed or removed.
type Result struct {
	Workload   string `json:"workload"`
	Title      string `json:"title"`
	Target     string `json:"target"` // "pebble", "postgres" or "url"
	Durability string `json:"durability"`
	Params     Params `json:"params"`
	// Count items completed in the measured phase, in Seconds of wall time.
	Count     int64   `json:"count"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	Unit      string  `json:"unit"` // what Count counts: messages, tasks or cycles
	LatencyMS Latency `json:"latency_ms"`
	LatencyIs string  `json:"latency_is"` // what a latency sample measures
	// CPUSeconds (user + system) and PeakRSSBytes are this process's over
	// the workload: server and client together when the server runs
	// in-process, the client alone with a URL.
	CPUSeconds   float64 `json:"cpu_seconds"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	// DiskBytes is the data directory's size at the end; 0 when unknown
	// (a URL, PostgreSQL).
	DiskBytes int64          `json:"disk_bytes"`
	Windows   []Window       `json:"windows"`
	Extra     map[string]any `json:"extra"`
}

// Latency is a summary of latency samples, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Window is the throughput of one stretch of the measured phase: Count
// items completed, the last of them EndSeconds after the phase began.
type Window struct {
	EndSeconds float64 `json:"end_seconds"`
	PerSecond  float64 `json:"per_second"`
	Count      int64   `json:"count"`
}

func latencyOf(h *Histogram) Latency {
	return Latency{P50: ms(h.Percentile(0.50)), P90: ms(h.Percentile(0.90)), P99: ms(h.Percentile(0.99)),
		P999: ms(h.Percentile(0.999)), Max: ms(h.Max()), Mean: ms(h.Mean())}
}

// outcome is what a workload hands back to the runner.
type outcome struct {
	count   int64
	elapsed time.Duration
	lat     *Histogram
	windows []Window
}
