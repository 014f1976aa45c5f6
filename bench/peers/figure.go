package main

import "time"

// Figure is one measurement: one workload in one mode on one system.
type Figure struct {
	// ID names the measurement for the table's rows ("courier-w1-batched").
	ID string `json:"id"`
	// Round is the round of the run it was made in, from 1.
	Round int `json:"round"`
	// System names what was measured: "courier (pebble)", "NATS JetStream
	// (sync_interval: always)", …
	System string `json:"system"`
	// Workload is "w1" or "w2"; Mode is "batched", "per-message" or
	// "burn-down".
	Workload string `json:"workload"`
	Mode     string `json:"mode"`
	// Count is the items completed, Seconds the wall time of the measured
	// phase, PerSecond their quotient.
	Count     int     `json:"count"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	// EnqueuePerSecond is W2's enqueue rate (0 when unknown).
	EnqueuePerSecond float64 `json:"enqueue_per_second,omitempty"`
	// Durability says what a success answer promised, in the peer's terms.
	Durability string `json:"durability,omitempty"`
	// Err is why there is no figure; empty when there is one.
	Err string `json:"error,omitempty"`
}

// ok reports whether f holds a figure.
func (f Figure) ok() bool { return f.Err == "" && f.PerSecond > 0 }

// measured makes a figure of count items completed in d.
func measured(system, workload, mode string, count int, d time.Duration) Figure {
	f := Figure{System: system, Workload: workload, Mode: mode, Count: count, Seconds: d.Seconds()}
	if d > 0 {
		f.PerSecond = float64(count) / d.Seconds()
	}
	return f
}

// failed makes a figure that records why the measurement failed.
func failed(system, workload, mode string, err error) Figure {
	return Figure{System: system, Workload: workload, Mode: mode, Err: err.Error()}
}
