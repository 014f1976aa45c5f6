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
		{"w2", 10, "postgres://x", "--count 500 --size 64 --batch 10 --concurrency 7 --store postgres://x"},
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
