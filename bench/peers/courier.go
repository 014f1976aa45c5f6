package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// courierReport is the part of `courier bench … --json` that the table
// uses (the interface is in docs/cli.md and the bench command's
// help); other fields are ignored.
type courierReport struct {
	Workload   string         `json:"workload"`
	Target     string         `json:"target"`
	Durability string         `json:"durability"`
	Count      int            `json:"count"`
	Seconds    float64        `json:"seconds"`
	PerSecond  float64        `json:"per_second"`
	Extra      map[string]any `json:"extra"`
}

// parseCourier reads the one JSON object that `courier bench --json`
// prints, checking that it is the workload asked for and holds a figure.
func parseCourier(out []byte, workload string) (courierReport, error) {
	var r courierReport
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("courier bench output: %w", err)
	}
	if r.Workload != workload {
		return r, fmt.Errorf("courier bench output: workload %q, want %q", r.Workload, workload)
	}
	if r.Count <= 0 || r.Seconds <= 0 {
		return r, fmt.Errorf("courier bench output: no figure (count %d, seconds %g)", r.Count, r.Seconds)
	}
	if r.PerSecond <= 0 {
		r.PerSecond = float64(r.Count) / r.Seconds
	}
	return r, nil
}

// enqueueRate is W2's enqueue rate, extra.enqueue_per_second, or 0.
func (r courierReport) enqueueRate() float64 {
	v, _ := r.Extra["enqueue_per_second"].(float64)
	return v
}

// courierRun is one invocation of `courier bench`.
type courierRun struct {
	system, workload, mode string
	args                   []string // after "bench WORKLOAD"
}

// courierArgs are the flags of one courier bench run, from the run's
// parameters.
func courierArgs(workload string, p Params, batch, count int, store string) []string {
	a := []string{"--count", strconv.Itoa(count), "--size", strconv.Itoa(p.Size), "--batch", strconv.Itoa(batch)}
	switch workload {
	case "w1":
		a = append(a, "--producers", strconv.Itoa(p.Producers), "--consumers", strconv.Itoa(p.Consumers))
	case "w2":
		// Producers submit W2's tasks, as they enqueue the peers' jobs.
		a = append(a, "--producers", strconv.Itoa(p.Producers), "--concurrency", strconv.Itoa(p.Concurrency))
	}
	if store != "" {
		a = append(a, "--store", store)
	}
	return a
}

// runCourier runs courier bench with bin and makes a figure of its
// report. COURIER_URL is removed from the environment, so the command
// measures its own in-process server and not some server it points at.
func runCourier(ctx context.Context, bin string, r courierRun) Figure {
	args := append([]string{"bench", r.workload}, r.args...)
	args = append(args, "--json")
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = withoutEnv(os.Environ(), "COURIER_URL")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return failed(r.system, r.workload, r.mode, fmt.Errorf("courier %s: %v: %s", strings.Join(args, " "), err, firstLine(stderr.String())))
	}
	rep, err := parseCourier(stdout.Bytes(), r.workload)
	if err != nil {
		return failed(r.system, r.workload, r.mode, err)
	}
	return Figure{System: r.system, Workload: r.workload, Mode: r.mode, Count: rep.Count, Seconds: rep.Seconds,
		PerSecond: rep.PerSecond, EnqueuePerSecond: rep.enqueueRate(), Durability: rep.Durability}
}

// runCourierMigrate applies courier's schema to a PostgreSQL database, so
// that W2's measured phase does not include it.
func runCourierMigrate(ctx context.Context, bin, dsn string) error {
	out, err := exec.CommandContext(ctx, bin, "migrate", "--store", dsn).CombinedOutput()
	if err != nil {
		return fmt.Errorf("courier migrate: %v: %s", err, firstLine(string(out)))
	}
	return nil
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// firstLine is the first non-empty line of s, for error messages.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return "(no output)"
}

// errNoCourier is the figure of every courier run when no binary is given.
var errNoCourier = errors.New("no courier binary (--courier)")
