package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/courierhq/courier/internal/bench"
)

const benchLong = `Run a workload against a courier server and print what it measured:
throughput, latency percentiles, CPU seconds, peak RSS and bytes on disk,
as a table, or with --json as one JSON object for scripts.

By default the server runs in this process on a fresh temporary data
directory, removed afterwards (--data-dir keeps one; --store postgres://…
runs the node over a PostgreSQL database). With --url (or COURIER_URL) the
workload targets that running server instead, and only this client's CPU and
memory can be measured. The load goes through the Go SDK over HTTP, as any
client's would; every 2xx it counts is durable (fsynced, or committed).

Workloads (latency is per message or task):
  w1, roundtrip  durable round trip: --count messages of --size bytes, sent by
                 --producers and received and acked by --consumers, --batch
                 per request. Latency: send request start → ack's 2xx.
  w2, burndown   job burn-down: enqueue --count no-op jobs (batch sends, or
                 with --tasks batch submits of tasks), then a Worker with
                 --concurrency handlers works them off; the rate is the
                 burn-down's. Latency: the send (or submit) request.
  w3, latency    latency at a fixed --rate, open loop: single sends on a
                 schedule, never waiting for answers. Latency: the send's
                 scheduled time → its receive (late sends are charged).
  w4, backlog    backlog: receive rate of a nearly empty queue (--baseline
                 messages), then fill --count messages, read RSS, and drain;
                 compares the first --baseline of the drain with the empty
                 rate. Latency: the receive+ack round.
  w5, churn      churn: --count send+receive+ack cycles with at most --backlog
                 messages outstanding; throughput per window (--windows)
                 should stay flat. Latency: send request start → ack's 2xx.
  w6, tasks      task round trip: Submit, then the SDK's Await, with a Worker
                 of --concurrency handlers; closed loop with --concurrency
                 requesters, or open loop with --rate. Latency: submit (or
                 its scheduled time) → Await returns.

With --runs N the workload runs N times, each on a fresh server (or queue),
and the output gives every run and the median of each figure.

A progress bar is drawn on standard error when it is a terminal. Flags a
workload does not use are ignored, with a note on standard error.
See docs/cli.md for every figure of the output.`

// benchParams are the flags that set bench.Params; the others select the
// target.
var benchParams = []string{"count", "size", "producers", "consumers", "batch", "concurrency",
	"rate", "windows", "queue", "baseline", "backlog", "tasks", "carry-acks", "worker"}

type benchFlags struct {
	p       bench.Params
	dataDir string
	store   string
	unsafe  bool
	cpuProf string
	trace   string // execution trace file
	gcFloor string
	runs    int
}

func newBenchCmd(e *env) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench WORKLOAD",
		Short: "Measure a workload (w1 … w6): throughput, latency, CPU, memory, disk",
		Long:  benchLong,
		Example: `  courier bench w1 --count 200000 --batch 1000
  courier bench w3 --rate 1000 --count 20000 --json
  courier bench w1 --batch 1 --count 20000 --runs 5
  courier --url http://10.0.0.5:7070 bench tasks --concurrency 64`,
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !urlGiven(cmd, e) && f.store == "" {
				e.openingStore() // first: config prints notes
			}
			cfg, err := f.config(cmd, e, args[0])
			if err != nil {
				return err
			}
			rs, err := f.run(cmd, e, cfg)
			if err != nil {
				return err
			}
			if len(rs) > 1 {
				sum := bench.Summarize(rs)
				if e.json {
					return e.printJSON(sum)
				}
				return sum.WriteTable(e.stdout)
			}
			if e.json {
				return e.printJSON(rs[0])
			}
			return rs[0].WriteTable(e.stdout)
		},
	}
	fl := cmd.Flags()
	fl.Int64Var(&f.p.Count, "count", 0, "messages (w1, w3, w4's backlog), jobs (w2), tasks (w6) or cycles (w5); default 100000 (w1, w2), 10000 (w3, w6), 1000000 (w4, w5)")
	fl.IntVar(&f.p.Size, "size", bench.DefaultSize, "bytes of each message body")
	fl.IntVar(&f.p.Producers, "producers", bench.DefaultProducers, "goroutines sending (w1, w2's submits, w4's fill, w5)")
	fl.IntVar(&f.p.Consumers, "consumers", bench.DefaultConsumers, "goroutines receiving and acking (w1, w3, w4, w5)")
	fl.IntVar(&f.p.Batch, "batch", bench.DefaultBatch, "messages per send, receive and ack request, 1 to 1000 (1: a request per message)")
	fl.IntVar(&f.p.Concurrency, "concurrency", 0, "a Worker's handlers (w2, w6) and w6's closed-loop requesters; default 100 (w2), 32 (w6)")
	fl.Float64Var(&f.p.Rate, "rate", 0, "per second, open loop: w3 (default 1000), w6 (default none: closed loop)")
	fl.IntVar(&f.p.Windows, "windows", bench.DefaultWindows, "throughput windows reported over the measured phase")
	fl.StringVar(&f.p.Queue, "queue", "", "the queue to use (default bench-WORKLOAD-RANDOM; deleted afterwards on a --url server)")
	fl.Int64Var(&f.p.Baseline, "baseline", 0, "w4: messages of the empty-queue baseline and of the backlog's first chunk (default min(count, 200000))")
	fl.IntVar(&f.p.Backlog, "backlog", 0, "w5: most messages sent and not yet acked (default max(1000, 2 × batch × max(producers, consumers)))")
	fl.BoolVar(&f.p.Tasks, "tasks", false, "w2: the jobs are tasks (durable records finished with a result) rather than plain messages")
	fl.BoolVar(&f.p.CarryAcks, "carry-acks", false, "w1, w3, w4, w5 with --batch above 1: each consumer's receive carries the acks of its previous batch (one request per batch, as the SDK's Worker does) instead of a separate ack request")
	fl.BoolVar(&f.p.Worker, "worker", false, "w3: the consumer is one SDK Worker with --consumers handlers and --batch messages per receive at most (it carries acks on its receives), instead of --consumers receive loops")
	fl.IntVar(&f.runs, "runs", 1, "run the workload this many times, each on a fresh server (or queue), and print every run and the medians")
	fl.StringVar(&f.dataDir, "data-dir", "", "run the in-process server on this data directory, and keep it (default: a temporary one)")
	fl.StringVar(&f.store, "store", "", "run the in-process server as a node over this postgres:// database (migrated if need be)")
	fl.BoolVar(&f.unsafe, "allow-unsafe-durability", false, "with --store: accept a database with fsync or synchronous_commit off (the result says so)")
	fl.StringVar(&f.gcFloor, "gc-heap-floor", gcFloorDefault, gcFloorUsage)
	fl.StringVar(&f.cpuProf, "cpuprofile", "", "write a CPU profile of this process over the run to this file (go tool pprof reads it); with an in-process server it covers server and client")
	fl.StringVar(&f.trace, "trace", "", "write an execution trace of this process over the run to this file (go tool trace reads it; its regions time each HTTP handler and the store's commit and fsync wait); with an in-process server it covers server and client")
	return cmd
}

// run runs the workload --runs times, under a CPU profile with --cpuprofile
// and an execution trace with --trace (of all the runs). Between runs, a
// line on standard error says how the last went.
func (f *benchFlags) run(cmd *cobra.Command, e *env, cfg bench.Config) ([]*bench.Result, error) {
	var stops []func() error
	for _, r := range []struct {
		path  string
		start func(string) (func() error, error)
	}{{f.cpuProf, cpuProfile}, {f.trace, executionTrace}} {
		if r.path == "" {
			continue
		}
		stop, err := r.start(r.path)
		if err != nil {
			return nil, errors.Join(err, stopAll(stops))
		}
		stops = append(stops, stop)
	}
	var rs []*bench.Result
	for i := range f.runs {
		res, err := bench.Run(cmd.Context(), cfg)
		if err != nil {
			if f.runs > 1 { // first: the error's own line may be rewritten (unreachable, interrupted)
				fmt.Fprintf(e.stderr, "courier: run %d of %d failed\n", i+1, f.runs)
			}
			return nil, errors.Join(err, stopAll(stops))
		}
		rs = append(rs, res)
		if f.runs > 1 {
			fmt.Fprintf(e.stderr, "courier: run %d of %d: %.0f %s/s\n", i+1, f.runs, res.PerSecond, res.Unit)
		}
	}
	return rs, stopAll(stops)
}

// stopAll stops what run started, and reports what failed.
func stopAll(stops []func() error) error {
	var errs []error
	for _, stop := range stops {
		errs = append(errs, stop())
	}
	return errors.Join(errs...)
}

// config turns the flags into a bench.Config, or a usage error: nothing is
// run with a flag out of range.
func (f *benchFlags) config(cmd *cobra.Command, e *env, name string) (bench.Config, error) {
	w, err := bench.ParseWorkload(name)
	if err != nil {
		return bench.Config{}, usageError{err}
	}
	fs := cmd.Flags()
	// A 0 in the engine means "the workload's default": given on the
	// command line it is a mistake, not a request for the default.
	for _, n := range []string{"count", "producers", "consumers", "batch", "concurrency", "windows", "baseline", "backlog"} {
		if fl := fs.Lookup(n); fl.Changed && fl.Value.String() == "0" {
			return bench.Config{}, usageErrorf("--%s 0: want at least 1", n)
		}
	}
	switch {
	case f.runs < 1:
		return bench.Config{}, usageErrorf("--runs %d: want at least 1", f.runs)
	case f.runs > 1 && f.dataDir != "":
		return bench.Config{}, usageErrorf("--runs %d: each run needs a fresh data directory; it cannot go with --data-dir", f.runs)
	case f.runs > 1 && f.p.Queue != "":
		// A second run would find the first's counts in the queue's.
		return bench.Config{}, usageErrorf("--runs %d: each run needs a fresh queue; it cannot go with --queue", f.runs)
	}
	if fs.Changed("rate") && f.p.Rate == 0 && w == bench.W3 {
		return bench.Config{}, usageErrorf("--rate 0: w3 needs a rate above 0")
	}
	fs.Visit(func(fl *pflag.Flag) {
		if isBenchParam(fl.Name) && !w.Uses(fl.Name) {
			fmt.Fprintf(e.stderr, "courier: note: --%s does not apply to %s; ignored\n", fl.Name, w)
		}
	})
	switch {
	case f.p.CarryAcks && f.p.Worker && w.Uses("worker"):
		fmt.Fprintf(e.stderr, "courier: note: --carry-acks does not apply with --worker (the Worker carries its acks its own way); ignored\n")
	case f.p.CarryAcks && f.p.Batch == 1 && w.Uses("carry-acks"):
		fmt.Fprintf(e.stderr, "courier: note: --carry-acks does not apply with --batch 1 (a request per message); ignored\n")
	}
	floor, err := parseBytes("--gc-heap-floor", f.gcFloor)
	if err != nil {
		return bench.Config{}, usageError{err}
	}
	t := bench.Target{Token: e.token, DataDir: f.dataDir, Store: f.store, AllowUnsafeDurability: f.unsafe,
		GCHeapFloor: floor, Getenv: e.getenv}
	if urlGiven(cmd, e) {
		if _, err := e.client(); err != nil { // checks the URL
			return bench.Config{}, err
		}
		if fs.Changed("gc-heap-floor") {
			return bench.Config{}, usageErrorf("--gc-heap-floor is for a server in this process; it cannot go with --url")
		}
		t.URL, t.GCHeapFloor = e.url, 0
	}
	cfg := bench.Config{Workload: w, Params: f.p, Target: t}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return bench.Config{}, usageError{err}
	}
	if isTerminal(e.stderr) {
		cfg.Progress = e.stderr
	}
	return cfg, nil
}

func isBenchParam(name string) bool {
	for _, p := range benchParams {
		if p == name {
			return true
		}
	}
	return false
}

// isTerminal reports whether w is a terminal (a character device): the
// progress bar is drawn there only, never into a pipe or a file.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// urlGiven tells whether bench targets a running server (--url or
// COURIER_URL) rather than one in this process.
func urlGiven(cmd *cobra.Command, e *env) bool {
	return cmd.Flags().Changed("url") || e.getenv("COURIER_URL") != ""
}
