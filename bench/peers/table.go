package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// comparison is one row of the table: courier's figure against a peer's,
// from the same run.
type comparison struct {
	workload, mode string
	courier, peer  string // Figure IDs
	// enqueue compares W2's enqueue rates instead of the burn-down's.
	enqueue bool
	// target is the ratio courier / peer the issue asks for; 0 if none.
	target float64
}

// comparisons are the table's rows, in order. Each target is one the
// issue states; rows without one are there for context.
var comparisons = []comparison{
	{workload: "W1 round trip", mode: "batched", courier: "courier-w1-batched", peer: "nats-always-w1-batched", target: 50},
	{workload: "W1 round trip", mode: "batched", courier: "courier-w1-batched", peer: "nats-default-w1-batched", target: 1},
	{workload: "W1 round trip", mode: "per-message", courier: "courier-w1-per-message", peer: "nats-always-w1-per-message", target: 3},
	{workload: "W1 round trip", mode: "per-message", courier: "courier-w1-per-message", peer: "nats-default-w1-per-message"},
	{workload: "W2 burn-down", mode: "jobs/s", courier: "courier-w2-pebble", peer: "river-w2", target: 10},
	{workload: "W2 burn-down", mode: "jobs/s", courier: "courier-w2-postgres", peer: "river-w2", target: 1.5},
	{workload: "W2 burn-down", mode: "tasks/s", courier: "courier-w2-pebble-tasks", peer: "river-w2"},
	{workload: "W2 burn-down", mode: "jobs/s", courier: "courier-w2-pebble", peer: "river-default-w2"},
	{workload: "W2 burn-down", mode: "jobs/s", courier: "courier-w2-postgres", peer: "river-default-w2"},
	{workload: "W2 burn-down", mode: "jobs/s", courier: "courier-w2-pebble", peer: "asynq-always-w2"},
	{workload: "W2 burn-down", mode: "jobs/s", courier: "courier-w2-pebble", peer: "asynq-everysec-w2"},
	{workload: "W2 enqueue", mode: "jobs/s", courier: "courier-w2-pebble", peer: "river-w2", enqueue: true},
	{workload: "W2 enqueue", mode: "jobs/s", courier: "courier-w2-postgres", peer: "river-w2", enqueue: true},
	{workload: "W2 enqueue", mode: "jobs/s", courier: "courier-w2-pebble", peer: "asynq-always-w2", enqueue: true},
	{workload: "W2 enqueue", mode: "jobs/s", courier: "courier-w2-pebble", peer: "asynq-everysec-w2", enqueue: true},
}

// report is everything one run produced.
type report struct {
	Date    string   `json:"date"`
	Machine string   `json:"machine"`
	Params  Params   `json:"params"`
	Note    string   `json:"note,omitempty"`
	Figures []Figure `json:"figures"`
}

func (r report) figure(id string) (Figure, bool) {
	for _, f := range r.Figures {
		if f.ID == id {
			return f, true
		}
	}
	return Figure{}, false
}

// writeTable prints the report as Markdown: a header with the date,
// machine and parameters, one table row per comparison whose peer was run,
// then what each system promised and why any figure is missing.
func writeTable(w io.Writer, r report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## courier and its peers, side by side\n\n")
	if r.Note != "" {
		fmt.Fprintf(&b, "%s\n\n", r.Note)
	}
	fmt.Fprintf(&b, "Date: %s · machine: %s\n\n", r.Date, r.Machine)
	fmt.Fprintf(&b, "Parameters: %s\n\n", r.Params)
	b.WriteString("| workload | mode | courier | peer | courier /s | peer /s | courier / peer | target |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, c := range comparisons {
		pf, ok := r.figure(c.peer)
		if !ok {
			continue // peer not selected (--only)
		}
		cf, _ := r.figure(c.courier)
		cv, pv := cf.PerSecond, pf.PerSecond
		if c.enqueue {
			cv, pv = cf.EnqueuePerSecond, pf.EnqueuePerSecond
		}
		if cf.Err != "" {
			cv = 0
		}
		if pf.Err != "" {
			pv = 0
		}
		mode := c.mode
		if c.workload == "W1 round trip" {
			mode = w1Mode(c.mode, r.Params)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", c.workload, mode,
			orDash(cf.System), pf.System, rate(cv), rate(pv), ratio(cv, pv), verdict(c.target, cv, pv))
	}
	b.WriteString("\nWhat a success answer promised:\n\n")
	seen := map[string]bool{}
	for _, f := range r.Figures {
		if f.Durability != "" && !seen[f.System] {
			seen[f.System] = true
			fmt.Fprintf(&b, "- %s: %s\n", f.System, f.Durability)
		}
	}
	var missing []string
	for _, f := range r.Figures {
		if f.Err != "" {
			missing = append(missing, fmt.Sprintf("- %s (%s %s): %s", f.System, f.Workload, f.Mode, f.Err))
		}
	}
	if len(missing) > 0 {
		b.WriteString("\nNo figure:\n\n" + strings.Join(missing, "\n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// w1Mode is W1's mode with its batch and message count.
func w1Mode(mode string, p Params) string {
	if mode == "batched" {
		return fmt.Sprintf("batched (B=%d, %d msgs)", p.Batch, p.Count)
	}
	return fmt.Sprintf("per-message (%d msgs)", p.PerMessageCount)
}

// rate is a per-second figure with thousands separators, or "—".
func rate(v float64) string {
	if v <= 0 {
		return "—"
	}
	s := strconv.FormatInt(int64(v+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// ratio is courier / peer, or "—" when either is missing.
func ratio(courier, peer float64) string {
	if courier <= 0 || peer <= 0 {
		return "—"
	}
	q := courier / peer
	if q < 10 {
		return fmt.Sprintf("%.2f×", q)
	}
	return fmt.Sprintf("%.1f×", q)
}

// verdict says whether the ratio meets target.
func verdict(target, courier, peer float64) string {
	switch {
	case target == 0:
		return "—"
	case courier <= 0 || peer <= 0:
		return fmt.Sprintf("≥ %g×: no figure", target)
	case courier/peer >= target:
		return fmt.Sprintf("≥ %g×: met", target)
	default:
		return fmt.Sprintf("≥ %g×: **not met**", target)
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
