package bench

import (
	"strings"
	"testing"
)

func TestMeterWindows(t *testing.T) {
	t.Parallel()
	m := newMeter("x", 100, 4)
	if got := m.windows(); len(got) != 0 {
		t.Fatalf("windows before any item: %v", got)
	}
	m.add(10)
	m.add(20) // crosses 25
	if got := m.windows(); len(got) != 1 || got[0].Count != 25 {
		t.Fatalf("after 30 of 100 in 4 windows: %+v; want one window of 25", got)
	}
	m.add(70) // crosses 50, 75 and 100 at once
	ws := m.windows()
	if len(ws) != 4 {
		t.Fatalf("after 100: %d windows, want 4", len(ws))
	}
	var sum int64
	for i, w := range ws {
		sum += w.Count
		if w.PerSecond <= 0 || i > 0 && w.EndSeconds < ws[i-1].EndSeconds {
			t.Errorf("window %d = %+v: not positive or out of order", i, w)
		}
	}
	if sum != 100 || m.count() != 100 || m.elapsed() <= 0 {
		t.Errorf("windows count %d, meter %d, elapsed %v", sum, m.count(), m.elapsed())
	}
	if m.reachedAt(25) <= 0 || m.reachedAt(25) > m.reachedAt(100) {
		t.Errorf("reachedAt(25) = %v, reachedAt(100) = %v", m.reachedAt(25), m.reachedAt(100))
	}
}

func TestMeterEnds(t *testing.T) {
	t.Parallel()
	if got := windowEnds(10, 20); len(got) != 10 || got[9] != 10 {
		t.Errorf("10 items in 20 windows: ends %v, want 10 windows of one", got)
	}
	ends := withEnd(windowEnds(1000, 4), 100)
	want := []int64{100, 250, 500, 750, 1000}
	if len(ends) != len(want) {
		t.Fatalf("ends %v, want %v", ends, want)
	}
	for i := range want {
		if ends[i] != want[i] {
			t.Fatalf("ends %v, want %v", ends, want)
		}
	}
	if got := withEnd([]int64{5, 10}, 5); len(got) != 2 {
		t.Errorf("withEnd repeated an end: %v", got)
	}
	m := newMeterAt("drain", ends)
	m.add(100)
	if m.reachedAt(100) <= 0 || m.reachedAt(1000) != 0 {
		t.Errorf("reachedAt(100) = %v, reachedAt(1000) = %v before the end", m.reachedAt(100), m.reachedAt(1000))
	}
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	got := progressLine("w1: round trip", 42, 100, 2e9)
	for _, want := range []string{"w1: round trip [########·", "42%", "42/100", "21/s", "2.0s"} {
		if !strings.Contains(got, want) {
			t.Errorf("progressLine = %q; want it to contain %q", got, want)
		}
	}
	if full := progressLine("x", 150, 100, 1e9); !strings.Contains(full, "100%") || strings.Contains(full, "·") {
		t.Errorf("past the total: %q", full)
	}
	long := progressLine("w4: baseline: receive+ack, and a name much longer than that", 123456789, 987654321, 1e9)
	if n := len([]rune(long)); n > progressMax {
		t.Errorf("a line of %d characters (%q) would wrap on a terminal of 80", n, long)
	}
	// Without a writer there is no progress bar, and its methods do nothing.
	var p *progress = startProgress(nil, "w1")
	p.show(newMeter("x", 1, 1))
	p.stop()
}
