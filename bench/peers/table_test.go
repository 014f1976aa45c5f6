package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"strings"
	"testing"
)

func testReport() report {
	p := Params{Count: 20000}.WithDefaults()
	return report{Note: "Shared machine: not final.", Date: "2026-12-04 15:00 UTC", Machine: "2 CPUs", Params: p, Figures: []Figure{
		{ID: "courier-w1-batched", System: "courier (embedded store)", PerSecond: 48000, Durability: "every 2xx fsynced"},
		{ID: "courier-w1-per-message", System: "courier (embedded store)", PerSecond: 2700},
		{ID: "nats-always-w1-batched", System: "NATS always", PerSecond: 480},
		{ID: "nats-default-w1-batched", System: "NATS default", PerSecond: 60000},
		{ID: "nats-always-w1-per-message", System: "NATS always", PerSecond: 450},
		{ID: "nats-default-w1-per-message", System: "NATS default", Workload: "w1", Mode: "per-message", Err: "boom"},
		{ID: "courier-w2-pebble", System: "courier (embedded store)", PerSecond: 80000, EnqueuePerSecond: 100000},
		{ID: "courier-w2-postgres", System: "courier (PostgreSQL store)", Err: "no courier binary"},
		{ID: "river-w2", System: "River", PerSecond: 8000, EnqueuePerSecond: 16000},
	}}
}

// row is the table line that mentions both a and b.
func row(t *testing.T, table, a, b string) string {
	t.Helper()
	for _, l := range strings.Split(table, "\n") {
		if strings.Contains(l, a) && strings.Contains(l, b) {
			return l
		}
	}
	t.Fatalf("no row with %q and %q in:\n%s", a, b, table)
	return ""
}

func TestWriteTable(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	if err := writeTable(&b, testReport()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Shared machine: not final.\n\nDate: 2026-12-04 15:00 UTC",
		"count 20000 (W1 per-message: 2000), size 128 B",
		"| W1 round trip | batched (B=100, 20000 msgs) | courier (embedded store) | NATS always | 48,000 | 480 | 100.0× | ≥ 50× at B=1000: not judged at B=100 |",
		"| W1 round trip | batched (B=100, 20000 msgs) | courier (embedded store) | NATS default | 48,000 | 60,000 | 0.80× | ≥ 1× at B=1000: not judged at B=100 |",
		"| W1 round trip | per-message (2000 msgs) | courier (embedded store) | NATS always | 2,700 | 450 | 6.00× | ≥ 3×: met |",
		"| W1 round trip | per-message (2000 msgs) | courier (embedded store) | NATS default | 2,700 | — | — | — |",
		"| W2 burn-down | jobs/s | courier (embedded store) | River | 80,000 | 8,000 | 10.0× | ≥ 10×: met |",
		"| W2 burn-down | jobs/s | courier (PostgreSQL store) | River | — | 8,000 | — | ≥ 1.5×: no figure |",
		"| W2 enqueue | jobs/s | courier (embedded store) | River | 100,000 | 16,000 | 6.25× | — |",
		"- courier (embedded store): every 2xx fsynced",
		"- NATS default (w1 per-message): boom",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Asynq was not run (as with --only nats,river): no rows for it.
	if strings.Contains(out, "asynq") || strings.Contains(out, "Asynq") {
		t.Errorf("rows for a peer that did not run:\n%s", out)
	}
	if r := row(t, out, "NATS default", "per-message"); !strings.Contains(r, "| 2,700 | — | — | — |") {
		t.Errorf("a failed peer figure shows as a dash: %s", r)
	}
}

func TestRateAndRatio(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "—"}, {7.4, "7"}, {999.5, "1,000"}, {1234567, "1,234,567"}} {
		if got := rate(tc.v); got != tc.want {
			t.Errorf("rate(%g) = %q, want %q", tc.v, got, tc.want)
		}
	}
	if got := ratios(nil); got != "—" {
		t.Errorf("ratio with no peer figure: %q", got)
	}
	if got := verdict(50, 49.9); got != "≥ 50×: **not met**" {
		t.Errorf("verdict just below target: %q", got)
	}
}

func TestParamsValidate(t *testing.T) {
	t.Parallel()
	if err := (Params{Only: []string{"nats", "kafka"}}).WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "kafka") {
		t.Errorf("unknown peer: %v", err)
	}
	if err := (Params{Batch: -1}).WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "--batch") {
		t.Errorf("bad batch: %v", err)
	}
	p := Params{Only: []string{"river"}}.WithDefaults()
	if err := p.Validate(); err != nil || !p.Runs("river") || p.Runs("nats") {
		t.Errorf("--only river: err %v, runs river %v, runs nats %v", err, p.Runs("river"), p.Runs("nats"))
	}
}

func TestNATSConfig(t *testing.T) {
	t.Parallel()
	got := natsConfig("/tmp/x", "always")
	want := "host: 127.0.0.1\nport: -1\njetstream {\n  store_dir: \"/tmp/x\"\n  sync_interval: always\n}\n"
	if got != want {
		t.Errorf("config:\n%s\nwant:\n%s", got, want)
	}
}

// TestWriteTableRounds: with several rounds the rates are medians, and the
// ratio is the median of the rounds' own ratios (each from figures of one
// round), with their range; the verdict goes by that median. A round where
// one side failed gives no ratio.
func TestWriteTableRounds(t *testing.T) {
	t.Parallel()
	p := Params{Count: 20000, Rounds: 4, Only: []string{"river"}}.WithDefaults()
	r := report{Date: "d", Machine: "m", Params: p}
	for i, v := range []struct{ courier, river float64 }{{15000, 10000}, {20000, 10000}, {16000, 8000}, {0, 9000}} {
		c := Figure{ID: "courier-w2-postgres", Round: i + 1, System: "courier (PostgreSQL store)", PerSecond: v.courier}
		if v.courier == 0 {
			c.Err, c.Workload, c.Mode = "timeout", "w2", "burn-down"
		}
		r.Figures = append(r.Figures, c,
			Figure{ID: "river-w2", Round: i + 1, System: "River", PerSecond: v.river})
	}
	var b strings.Builder
	if err := writeTable(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// courier: median of 15k, 20k, 16k; River: of 10k, 10k, 8k, 9k; ratios 1.5, 2, 2.
	want := "| W2 burn-down | jobs/s | courier (PostgreSQL store) | River | 16,000 | 9,500 | 2.00× (1.50×–2.00×), 3 of 4 rounds | ≥ 1.5×: met |"
	if !strings.Contains(out, want) {
		t.Errorf("table lacks %q:\n%s", want, out)
	}
	for _, want := range []string{"4 rounds", "(w2 burn-down, round 4): timeout"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if got := median([]float64{3, 1, 2, 10}); got != 2.5 {
		t.Errorf("median of an even count = %v, want 2.5", got)
	}
}

// TestWriteTableW1TargetBatch: W1's batched ratios are judged only at the
// batch W1's own throughput target is read at.
func TestWriteTableW1TargetBatch(t *testing.T) {
	t.Parallel()
	r := testReport()
	r.Params.Batch = w1TargetBatch
	var b strings.Builder
	if err := writeTable(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| W1 round trip | batched (B=1000, 20000 msgs) | courier (embedded store) | NATS always | 48,000 | 480 | 100.0× | ≥ 50×: met |",
		"| W1 round trip | batched (B=1000, 20000 msgs) | courier (embedded store) | NATS default | 48,000 | 60,000 | 0.80× | ≥ 1×: **not met** |",
		"| W1 round trip | per-message (2000 msgs) | courier (embedded store) | NATS always | 2,700 | 450 | 6.00× | ≥ 3×: met |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestPayload: the peers' bodies are of the run's size, incompressible
// (as courier bench's are) and the same from run to run; the text form
// for River's JSON too.
func TestPayload(t *testing.T) {
	t.Parallel()
	p := Params{Size: 4096}
	b := p.payload()
	if len(b) != 4096 || !bytes.Equal(b, p.payload()) {
		t.Fatalf("payload of %d bytes, same twice: %v; want 4096, true", len(b), bytes.Equal(b, p.payload()))
	}
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	_, _ = w.Write(b)
	_ = w.Close()
	if z.Len() < len(b) {
		t.Errorf("payload compresses from %d to %d bytes: want random bytes", len(b), z.Len())
	}
	s := p.textPayload()
	if len(s) != 4096 || strings.Count(s, s[:1]) == len(s) {
		t.Errorf("text payload of %d bytes, starting %q: want 4096 varied characters", len(s), s[:min(len(s), 16)])
	}
	if _, err := base64.StdEncoding.DecodeString(s[:len(s)/4*4]); err != nil {
		t.Errorf("text payload is not base64 text: %v", err)
	}
}
