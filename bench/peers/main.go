// Command peers runs courier's W1 and W2 workloads against NATS JetStream,
// River and Asynq on this machine, and prints one table of courier's
// figure, the peer's, and their ratio, all from the same run.
//
// It is its own module so that courier never depends on a peer: the main
// module's `go test ./...` and `go list ./...` do not see it. run.sh
// installs the servers it needs (redis-server, PostgreSQL), builds courier
// and runs this program; README.md says how each workload maps onto each
// peer and why the comparison is fair.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command's flags besides the workload parameters.
type options struct {
	courier  string        // courier binary; empty: courier's side is not measured
	jsonPath string        // where to write the raw figures; empty: nowhere
	timeout  time.Duration // bound of each measurement
	note     string        // a line for the table's header ("shared machine")
}

// run is the command: 0 when every figure was measured, 1 when some
// failed (the table is printed all the same), 2 for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	p, o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "peers:", err)
		return 2
	}
	tmp, err := os.MkdirTemp("", "courier-peers-")
	if err != nil {
		fmt.Fprintln(stderr, "peers:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	r := report{
		Date:    time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Machine: fmt.Sprintf("%d CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version()),
		Params:  p,
		Note:    o.note,
	}
	u := &runner{p: p, o: o, tmp: tmp, log: stderr, r: &r}
	for u.round = 1; u.round <= p.Rounds && ctx.Err() == nil; u.round++ {
		u.all(ctx)
	}

	if err := writeTable(stdout, r); err != nil {
		fmt.Fprintln(stderr, "peers:", err)
		return 1
	}
	if o.jsonPath != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(o.jsonPath, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "peers:", err)
			return 1
		}
	}
	for _, f := range r.Figures {
		if f.Err != "" {
			return 1
		}
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (Params, options, error) {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var p Params
	var o options
	var only string
	fs.StringVar(&o.courier, "courier", "", "courier binary to measure (run.sh builds it); empty: peers only")
	fs.IntVar(&p.Count, "count", 0, "messages of W1 batched and jobs of W2 (default 20000)")
	fs.IntVar(&p.PerMessageCount, "per-message-count", 0, "messages of W1 per-message (default count/10, at least 1000)")
	fs.IntVar(&p.Size, "size", 0, "message body and job payload in bytes (default 128)")
	fs.IntVar(&p.Producers, "producers", 0, "W1 producers, W2 enqueuers (default 4)")
	fs.IntVar(&p.Consumers, "consumers", 0, "W1 consumers (default 4)")
	fs.IntVar(&p.Batch, "batch", 0, "W1 batched: messages per send, receive and ack; W2: jobs per insert (default 100)")
	fs.IntVar(&p.Concurrency, "concurrency", 0, "W2 worker concurrency (default 100)")
	fs.IntVar(&p.Rounds, "rounds", 0, "times every measurement is made, courier's and the peers' in turn; the table gives medians (default 1)")
	fs.StringVar(&only, "only", "", "comma-separated peers to run: "+strings.Join(peerNames, ",")+" (default all)")
	fs.StringVar(&o.jsonPath, "json", "", "also write the raw figures as JSON to this file")
	fs.StringVar(&o.note, "note", "", "a line to print under the table's heading, such as \"shared machine: not final\"")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound of each measurement")
	if err := fs.Parse(args); err != nil {
		return p, o, err
	}
	if fs.NArg() > 0 {
		return p, o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if only != "" {
		p.Only = strings.Split(only, ",")
	}
	p = p.WithDefaults()
	return p, o, p.Validate()
}
