package main

import (
	"fmt"
	"io"
	"slices"
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
	// batch, when set, is the batch the target is read at: a run with
	// another shows the target without a verdict.
	batch int
}

// w1TargetBatch is the batch W1's batched targets are read at: the one at
// which its ≥ 100,000 msgs/s is (docs/benchmarks.md), since the issue puts
// that and the two ratios to NATS in one run.
const w1TargetBatch = 1000

// comparisons are the table's rows, in order. Each target is one the
// issue states; rows without one are there for context.
var comparisons = []comparison{
	{workload: "W1 round trip", mode: "batched", courier: "courier-w1-batched", peer: "nats-always-w1-batched", target: 50, batch: w1TargetBatch},
	{workload: "W1 round trip", mode: "batched", courier: "courier-w1-batched", peer: "nats-default-w1-batched", target: 1, batch: w1TargetBatch},
	{workload: "W1 round trip", mode: "batched", courier: "courier-w1-batched-carried", peer: "nats-always-w1-batched"},
	{workload: "W1 round trip", mode: "batched", courier: "courier-w1-batched-carried", peer: "nats-default-w1-batched"},
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

// byRound is the figures of id, by round.
func (r report) byRound(id string) map[int]Figure {
	out := map[int]Figure{}
	for _, f := range r.Figures {
		if f.ID == id {
			out[f.Round] = f
		}
	}
	return out
}

// compared is one comparison over the rounds: the medians of courier's and the
// peer's figures, and the rounds' ratios, each from figures of one round
// (taken minutes apart, so that a machine that is slower for a while
// weighs on both sides alike).
type compared struct {
	courierSys, peerSys string
	courier, peer       float64 // medians; 0 when none
	ratios              []float64
}

// compare gathers c's row; ok is false when its peer was not run.
func (r report) compare(c comparison) (compared, bool) {
	peers, courier := r.byRound(c.peer), r.byRound(c.courier)
	if len(peers) == 0 {
		return compared{}, false // peer not selected (--only)
	}
	var w compared
	var cvs, pvs []float64
	for round, pf := range peers {
		cf := courier[round]
		w.peerSys = pf.System
		if cf.System != "" {
			w.courierSys = cf.System
		}
		cv, pv := cf.value(c.enqueue), pf.value(c.enqueue)
		if cv > 0 {
			cvs = append(cvs, cv)
		}
		if pv > 0 {
			pvs = append(pvs, pv)
		}
		if cv > 0 && pv > 0 {
			w.ratios = append(w.ratios, cv/pv)
		}
	}
	w.courier, w.peer = median(cvs), median(pvs)
	return w, true
}

// value is the figure's rate (enqueue: W2's enqueue rate), 0 if it failed.
func (f Figure) value(enqueue bool) float64 {
	switch {
	case f.Err != "":
		return 0
	case enqueue:
		return f.EnqueuePerSecond
	default:
		return f.PerSecond
	}
}

// median of vs, 0 for none; vs is sorted in place.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
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
		cmp, ok := r.compare(c)
		if !ok {
			continue
		}
		mode := c.mode
		if c.workload == "W1 round trip" {
			mode = w1Mode(c.mode, r.Params)
		}
		q := median(cmp.ratios)
		rs := ratios(cmp.ratios)
		if n := len(cmp.ratios); n > 0 && n < r.Params.Rounds {
			rs += fmt.Sprintf(", %d of %d rounds", n, r.Params.Rounds) // the others lack a figure
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", c.workload, mode,
			orDash(cmp.courierSys), cmp.peerSys, rate(cmp.courier), rate(cmp.peer), rs, c.verdict(r.Params, q))
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
			in := ""
			if r.Params.Rounds > 1 {
				in = fmt.Sprintf(", round %d", f.Round)
			}
			missing = append(missing, fmt.Sprintf("- %s (%s %s%s): %s", f.System, f.Workload, f.Mode, in, f.Err))
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

// ratio is one ratio as the table gives it.
func ratio(q float64) string {
	if q < 10 {
		return fmt.Sprintf("%.2f×", q)
	}
	return fmt.Sprintf("%.1f×", q)
}

// ratios is the median of the rounds' ratios, with their range when there
// are several, or "—" when there is none.
func ratios(qs []float64) string {
	switch len(qs) {
	case 0:
		return "—"
	case 1:
		return ratio(qs[0])
	}
	m := median(qs) // sorts qs
	return fmt.Sprintf("%s (%s–%s)", ratio(m), ratio(qs[0]), ratio(qs[len(qs)-1]))
}

// verdict says whether the ratio q (0: none), measured with p, meets the
// comparison's target.
func (c comparison) verdict(p Params, q float64) string {
	if c.target != 0 && c.batch != 0 && p.Batch != c.batch {
		return fmt.Sprintf("≥ %g× at B=%d: not judged at B=%d", c.target, c.batch, p.Batch)
	}
	return verdict(c.target, q)
}

// verdict says whether the ratio q (0: none) meets target.
func verdict(target, q float64) string {
	switch {
	case target == 0:
		return "—"
	case q <= 0:
		return fmt.Sprintf("≥ %g×: no figure", target)
	case q >= target:
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
