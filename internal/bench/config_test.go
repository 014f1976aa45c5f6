package bench

import (
	"strings"
	"testing"
)

func TestParseWorkload(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Workload{"w1": W1, "W2": W2, "latency": W3, "backlog": W4, " churn ": W5, "tasks": W6,
		"roundtrip": W1, "burndown": W2} {
		if got, err := ParseWorkload(in); err != nil || got != want {
			t.Errorf("ParseWorkload(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "w0", "w7", "round trip"} {
		if _, err := ParseWorkload(in); err == nil || !strings.Contains(err.Error(), "unknown workload") {
			t.Errorf("ParseWorkload(%q) = %v; want an unknown-workload error", in, err)
		}
	}
}

// TestConfigValidate: each parameter out of range is named, as its flag.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		w    Workload
		mod  func(*Config)
		want string
	}{
		{W1, func(c *Config) { c.Params.Count = -1 }, "--count -1"},
		{W1, func(c *Config) { c.Params.Size = -1 }, "--size -1"},
		{W1, func(c *Config) { c.Params.Size = MaxSize + 1 }, "--size"},
		{W1, func(c *Config) { c.Params.Batch = 1001 }, "--batch 1001"},
		{W1, func(c *Config) { c.Params.Producers = -2 }, "--producers -2"},
		{W1, func(c *Config) { c.Params.Consumers = maxWorkers + 1 }, "--consumers"},
		{W6, func(c *Config) { c.Params.Concurrency = -1 }, "--concurrency -1"},
		{W3, func(c *Config) { c.Params.Rate = -5 }, "--rate -5"},
		{W1, func(c *Config) { c.Params.Windows = 1001 }, "--windows 1001"},
		{W1, func(c *Config) { c.Params.Queue = "no/slash" }, "--queue no/slash"},
		{W4, func(c *Config) { c.Params.Count, c.Params.Baseline = 10, 11 }, "--baseline 11"},
		{W5, func(c *Config) { c.Params.Batch, c.Params.Backlog = 100, 50 }, "--backlog 50"},
		{W1, func(c *Config) { c.Params.Size, c.Params.Batch = 1<<20, 1000 }, "× --batch"},
		{W1, func(c *Config) { c.Target = Target{URL: "http://x", Store: "postgres://x"} }, "--url"},
		{W1, func(c *Config) { c.Target = Target{URL: "http://x", DataDir: "d"} }, "--url"},
		{W1, func(c *Config) { c.Target = Target{Store: "postgres://x", DataDir: "d"} }, "exclude"},
		{W1, func(c *Config) { c.Target = Target{Store: "mysql://x"} }, "postgres://"},
		{W1, func(c *Config) { c.Target = Target{AllowUnsafeDurability: true} }, "--store only"},
		{"w9", func(*Config) {}, "unknown workload"},
	}
	for _, tc := range cases {
		c := Config{Workload: tc.w, Params: Params{Size: DefaultSize}}
		tc.mod(&c)
		err := c.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v %+v: Validate = %v; want an error naming %q", tc.w, c.Params, c.Target, err, tc.want)
		}
	}
	for _, w := range Workloads {
		if err := (Config{Workload: w, Params: Params{Size: DefaultSize}}).WithDefaults().Validate(); err != nil {
			t.Errorf("%s with defaults: %v", w, err)
		}
	}
}

func TestDefaultsAndUse(t *testing.T) {
	t.Parallel()
	c := Config{Workload: W4, Params: Params{Count: 50}}.WithDefaults()
	p := c.Params
	if p.Baseline != 50 || p.Batch != DefaultBatch || p.Producers != DefaultProducers || p.Windows != DefaultWindows ||
		!strings.HasPrefix(p.Queue, "bench-w4-") {
		t.Errorf("w4 defaults: %+v", p)
	}
	if d := (Config{Workload: W3}).WithDefaults().Params; d.Rate != DefaultRate || d.Count != 10_000 {
		t.Errorf("w3 defaults: %+v", d)
	}
	if d := (Config{Workload: W6}).WithDefaults().Params; d.Rate != 0 || d.Concurrency != 32 {
		t.Errorf("w6 defaults: %+v; want closed loop with 32 requesters", d)
	}
	if d := (Config{Workload: W5, Params: Params{Batch: 10, Producers: 2, Consumers: 3}}).WithDefaults().Params; d.Backlog != 1000 {
		t.Errorf("w5 backlog default: %d", d.Backlog)
	}
	u := used(W1, Config{Workload: W1, Params: Params{Rate: 5, Concurrency: 3}}.WithDefaults().Params)
	if u.Rate != 0 || u.Concurrency != 0 || u.Producers == 0 || u.Consumers == 0 {
		t.Errorf("w1's params in effect: %+v", u)
	}
	if !W3.Uses("rate") || W1.Uses("rate") || !W1.Uses("count") || !W4.Uses("baseline") || W2.Uses("consumers") {
		t.Error("Uses does not match the workloads' parameters")
	}
}
