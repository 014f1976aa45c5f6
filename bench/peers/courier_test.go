package main

import (
	"os"
	"strings"
	"testing"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseCourierW1(t *testing.T) {
	t.Parallel()
	r, err := parseCourier(readFixture(t, "courier_w1.json"), "w1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Count != 20000 || r.PerSecond != 50000 || r.Durability != "every 2xx fsynced" || r.Target != "pebble" {
		t.Errorf("parsed %+v", r)
	}
	if got := r.enqueueRate(); got != 0 {
		t.Errorf("enqueue rate %g, want 0 (W1 has none)", got)
	}
}

// A report without per_second gets it from count and seconds; W2's
// enqueue rate comes from extra.
func TestParseCourierW2(t *testing.T) {
	t.Parallel()
	r, err := parseCourier(readFixture(t, "courier_w2.json"), "w2")
	if err != nil {
		t.Fatal(err)
	}
	if r.PerSecond != 8000 {
		t.Errorf("per_second %g, want 8000 (count/seconds)", r.PerSecond)
	}
	if got := r.enqueueRate(); got != 40000.5 {
		t.Errorf("enqueue rate %g, want 40000.5", got)
	}
}

func TestParseCourierRejects(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ out, workload, want string }{
		"other workload": {string(readFixture(t, "courier_w1.json")), "w2", `workload "w1", want "w2"`},
		"not json":       {"Error: unknown command \"bench\"", "w1", "courier bench output"},
		"no figure":      {`{"workload":"w1","count":0,"seconds":0}`, "w1", "no figure"},
		"empty":          {"", "w1", "EOF"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := parseCourier([]byte(tc.out), tc.workload)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCourierArgs(t *testing.T) {
	t.Parallel()
	p := Params{Count: 500, Size: 64, Producers: 2, Consumers: 3, Batch: 10, Concurrency: 7}.WithDefaults()
	for _, tc := range []struct {
		workload string
		batch    int
		store    string
		want     string
	}{
		{"w1", 10, "", "--count 500 --size 64 --batch 10 --producers 2 --consumers 3"},
		{"w1", 1, "", "--count 500 --size 64 --batch 1 --producers 2 --consumers 3"},
		{"w2", 10, "postgres://x", "--count 500 --size 64 --batch 10 --producers 2 --concurrency 7 --store postgres://x"},
	} {
		if got := strings.Join(courierArgs(tc.workload, p, tc.batch, p.Count, tc.store), " "); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.workload, got, tc.want)
		}
	}
}

func TestWithoutEnv(t *testing.T) {
	t.Parallel()
	got := withoutEnv([]string{"A=1", "COURIER_URL=http://x", "COURIER_URLX=2"}, "COURIER_URL")
	if strings.Join(got, " ") != "A=1 COURIER_URLX=2" {
		t.Errorf("got %q", got)
	}
}

// fakeCourier writes a script that answers `bench WORKLOAD … --json` as
// courier bench would, with the fixture of that workload, and records its
// arguments; anything else fails as an unknown command does.
func fakeCourier(t *testing.T) (bin, argsFile string) {
	t.Helper()
	dir := t.TempDir()
	bin, argsFile = dir+"/courier", dir+"/args"
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho \"$@\" > " + argsFile + "\n" +
		"if [ \"$1\" = bench ] && [ -n \"$COURIER_URL\" ]; then echo 'COURIER_URL leaked' >&2; exit 1; fi\n" +
		"if [ \"$1\" = bench ]; then exec cat " + wd + "/testdata/courier_$2.json; fi\n" +
		"echo 'Error: unknown command' >&2; exit 2\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, argsFile
}

func TestRunCourier(t *testing.T) {
	t.Setenv("COURIER_URL", "http://127.0.0.1:1") // must not reach courier bench
	bin, argsFile := fakeCourier(t)
	f := runCourier(t.Context(), bin, courierRun{system: "courier", workload: "w2", mode: "burn-down",
		args: []string{"--count", "20000"}})
	if f.Err != "" || f.PerSecond != 8000 || f.EnqueuePerSecond != 40000.5 || f.Durability != "every 2xx committed" {
		t.Fatalf("figure %+v", f)
	}
	args, _ := os.ReadFile(argsFile)
	if got := strings.TrimSpace(string(args)); got != "bench w2 --count 20000 --json" {
		t.Errorf("courier ran with %q", got)
	}
	// A failing command gives a figure with the reason.
	f = runCourier(t.Context(), bin, courierRun{system: "courier", workload: "w9", mode: "x"})
	if !strings.Contains(f.Err, "courier bench w9") {
		t.Errorf("no reason for a failed run: %+v", f)
	}
	if err := runCourierMigrate(t.Context(), bin, "postgres://x"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("migrate error: %v", err)
	}
}
