// Package bench is the engine of `courier bench`: it runs one of six
// workloads against a courier server through the Go SDK, over HTTP as any
// user would, and measures it: items per second, per-item latency,
// throughput over time, CPU seconds, peak RSS and bytes on disk.
//
// The server is started in this process on a temporary data directory
// (or a given one, or a PostgreSQL database), or is a running one named by
// URL; then only the client's resources can be measured, and the Result
// says so. Latencies go into a log-linear histogram of bounded size, and
// message bodies carry their own send time, so a run of twenty million
// messages keeps no state per message and its memory is the server's.
//
// Run takes a writer for a progress bar (nil for none) and returns a
// Result, which marshals to the JSON that `courier bench --json` prints
// (docs/cli.md describes it; its fields are a contract for scripts).
package bench

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/courierhq/courier/internal/server"
)

// Workload names a workload: "w1" … "w6".
type Workload string

// The workloads. docs/cli.md says what each measures.
const (
	W1 Workload = "w1" // durable round trip
	W2 Workload = "w2" // job burn-down
	W3 Workload = "w3" // latency at a fixed rate, open loop
	W4 Workload = "w4" // backlog
	W5 Workload = "w5" // churn
	W6 Workload = "w6" // task round trip through Await
)

// Workloads lists every workload, in order.
var Workloads = []Workload{W1, W2, W3, W4, W5, W6}

// ParseWorkload reads a workload's name (w1 … w6, case-insensitive) or
// alias (roundtrip, burndown, latency, backlog, churn, tasks).
func ParseWorkload(s string) (Workload, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, w := range Workloads {
		if s == string(w) || s == specs[w].alias {
			return w, nil
		}
	}
	return "", fmt.Errorf("unknown workload %q: want w1 (roundtrip), w2 (burndown), w3 (latency), w4 (backlog), w5 (churn) or w6 (tasks)", s)
}

// Uses reports whether w uses the parameter named param (as in Params'
// JSON: "producers", "rate", …). Count, size and windows apply to all.
func (w Workload) Uses(param string) bool {
	switch param {
	case "count", "size", "windows", "queue":
		return true
	}
	return strings.Contains(" "+specs[w].uses+" ", " "+param+" ")
}

// Params are a workload's knobs, named as the flags of `courier bench`.
// Zero means the workload's default (listed in docs/cli.md), except Size,
// which is taken as it is (0: empty bodies; the CLI's default is
// DefaultSize). A Result reports the values used, and 0 for those the
// workload does not use.
type Params struct {
	Count       int64   `json:"count"`                // messages, tasks or cycles
	Size        int     `json:"size"`                 // bytes of each message body
	Producers   int     `json:"producers"`            // goroutines sending
	Consumers   int     `json:"consumers"`            // goroutines receiving and acking
	Batch       int     `json:"batch"`                // messages per send, receive and ack request
	Concurrency int     `json:"concurrency"`          // handlers of a Worker (w2, w6); requesters (w6, closed loop)
	Rate        float64 `json:"rate"`                 // per second, open loop (w3, w6); 0 for w6: closed loop
	Windows     int     `json:"windows"`              // throughput windows reported
	Queue       string  `json:"queue"`                // the queue used; default bench-<workload>-<random>
	Baseline    int64   `json:"baseline,omitempty"`   // w4: messages of the empty-queue baseline and of the backlog's first chunk
	Backlog     int     `json:"backlog,omitempty"`    // w5: most messages sent and not yet acked
	Tasks       bool    `json:"tasks,omitempty"`      // w2: jobs are tasks (durable records with a result), not plain messages
	CarryAcks   bool    `json:"carry_acks,omitempty"` // consumers' receives carry the previous batch's acks
	Worker      bool    `json:"worker,omitempty"`     // w3: the consumer is one SDK Worker with Consumers handlers
}

// Defaults and limits of Params.
const (
	DefaultSize      = 128
	DefaultProducers = 4
	DefaultConsumers = 4
	DefaultBatch     = 100
	DefaultWindows   = 10
	DefaultRate      = 1000 // w3
	MaxBatch         = 1000 // the server's limit per request
	MaxSize          = 1 << 20
	maxBatchBytes    = 16 << 20 // of bodies per send: under the server's default 32 MiB request limit once base64-encoded
	maxWorkers       = 10_000
	maxBaseline      = 200_000
)

// Target says which server a run measures.
type Target struct {
	// URL of a running server; "" starts one in this process.
	URL string
	// Token is sent as a bearer token (with URL).
	Token string
	// DataDir is the in-process server's data directory, kept afterwards;
	// "" makes a temporary one, removed afterwards.
	DataDir string
	// Store is a postgres:// URL: the in-process server is a node over that
	// database (its schema is migrated if need be).
	Store string
	// AllowUnsafeDurability lets the in-process node use a PostgreSQL
	// server with fsync or synchronous_commit off; the Result says so.
	AllowUnsafeDurability bool
	// GCHeapFloor is the in-process server's garbage-collection floor, as
	// `courier serve --gc-heap-floor` (package gcfloor); 0 leaves Go's
	// collector at its defaults.
	GCHeapFloor uint64
	// Getenv reads the environment (GOGC, which the floor defers to); nil
	// is os.Getenv.
	Getenv func(string) string
}

// Config is everything a run needs.
type Config struct {
	Workload Workload
	Params   Params
	Target   Target
	// Progress receives a live progress bar (carriage returns, a line
	// redrawn a few times a second); nil for none.
	Progress io.Writer
}

// WithDefaults returns c with its zero parameters set to the workload's
// defaults.
func (c Config) WithDefaults() Config {
	p := &c.Params
	s, ok := specs[c.Workload]
	if !ok {
		return c
	}
	p.Count = or(p.Count, s.count)
	p.Producers = or(p.Producers, DefaultProducers)
	p.Consumers = or(p.Consumers, DefaultConsumers)
	p.Batch = or(p.Batch, DefaultBatch)
	p.Concurrency = or(p.Concurrency, s.concurrency)
	p.Rate = or(p.Rate, s.rate)
	p.Windows = or(p.Windows, DefaultWindows)
	if p.Queue == "" {
		p.Queue = fmt.Sprintf("bench-%s-%s", c.Workload, randomHex(4))
	}
	if c.Workload == W4 {
		p.Baseline = or(p.Baseline, min(p.Count, maxBaseline))
	}
	if c.Workload == W5 {
		p.Backlog = or(p.Backlog, max(1000, 2*p.Batch*max(p.Producers, p.Consumers)))
	}
	return c
}

func or[T int | int64 | float64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

var queueName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,80}$`)

// Validate names the first parameter that is out of range, as its flag.
// Call it on a Config with defaults.
func (c Config) Validate() error {
	if _, ok := specs[c.Workload]; !ok {
		_, err := ParseWorkload(string(c.Workload))
		return err
	}
	p := c.Params
	checks := []struct {
		bad  bool
		flag string
		v    any
		want string
	}{
		{p.Count < 1, "count", p.Count, "at least 1"},
		{p.Size < 0 || p.Size > MaxSize, "size", p.Size, fmt.Sprintf("0 to %d bytes", MaxSize)},
		{p.Batch < 1 || p.Batch > MaxBatch, "batch", p.Batch, fmt.Sprintf("1 to %d (the server's limit per request)", MaxBatch)},
		{p.Producers < 1 || p.Producers > maxWorkers, "producers", p.Producers, fmt.Sprintf("1 to %d", maxWorkers)},
		{p.Consumers < 1 || p.Consumers > maxWorkers, "consumers", p.Consumers, fmt.Sprintf("1 to %d", maxWorkers)},
		{p.Concurrency < 0 || p.Concurrency > maxWorkers, "concurrency", p.Concurrency, fmt.Sprintf("1 to %d", maxWorkers)},
		{p.Rate < 0 || p.Rate > 10_000_000, "rate", p.Rate, "0 to 10000000 per second"},
		{c.Workload == W3 && p.Rate == 0, "rate", p.Rate, "a rate above 0 for w3"},
		{p.Windows < 1 || p.Windows > 1000, "windows", p.Windows, "1 to 1000"},
		{!queueName.MatchString(p.Queue), "queue", p.Queue, "1 to 80 characters of A-Z a-z 0-9 _ - ."},
		{p.Baseline < 0 || p.Baseline > p.Count, "baseline", p.Baseline, "1 to --count"},
		{p.Backlog < 0 || c.Workload == W5 && p.Backlog < p.Batch, "backlog", p.Backlog, "at least --batch"},
	}
	for _, ck := range checks {
		if ck.bad {
			return fmt.Errorf("--%s %v: want %s", ck.flag, ck.v, ck.want)
		}
	}
	if int64(p.Size)*int64(p.Batch) > maxBatchBytes && c.Workload.Uses("batch") {
		return fmt.Errorf("--size %d × --batch %d: a send request would carry more than %d MiB; lower one", p.Size, p.Batch, maxBatchBytes>>20)
	}
	return c.Target.validate()
}

func (t Target) validate() error {
	switch {
	case t.URL != "" && t.Store != "":
		return errors.New("--store starts a server in this process; it cannot go with --url")
	case t.URL != "" && t.DataDir != "":
		return errors.New("--data-dir is for a server in this process; it cannot go with --url")
	case t.Store != "" && t.DataDir != "":
		return errors.New("--data-dir and --store exclude each other")
	case t.Store != "" && !server.IsPostgres(t.Store):
		return errors.New("--store: want a postgres:// URL")
	case t.URL == "" && t.AllowUnsafeDurability && t.Store == "":
		return errors.New("--allow-unsafe-durability applies to --store only")
	}
	return nil
}
