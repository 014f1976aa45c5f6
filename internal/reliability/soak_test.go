package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSoak runs a steady load for COURIER_SOAK_DURATION (default 10m) with
// a kill -9 every one to two minutes, samples the server's resident memory
// every few seconds, and fails if it grows beyond twice the first minute's
// peak plus 64 MiB; then it drains and checks the history like the kill
// test. It is the opt-in soak tier: COURIER_SOAK=1 runs it, and it needs a
// go test -timeout above its duration.
func TestSoak(t *testing.T) {
	if os.Getenv("COURIER_SOAK") != "1" {
		t.Skip("soak tier, opt-in and not part of CI: COURIER_SOAK=1 [COURIER_SOAK_DURATION=10m] go test -race -run Soak -timeout 30m ./internal/reliability/")
	}
	duration := 10 * time.Minute
	if s := os.Getenv("COURIER_SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("COURIER_SOAK_DURATION=%q: want a positive duration like 10m", s)
		}
		duration = d
	}
	if dl, ok := t.Deadline(); ok && time.Until(dl) < duration+3*time.Minute {
		t.Fatalf("the soak runs %v plus a drain, but the test's deadline is in %v: raise go test -timeout",
			duration, time.Until(dl).Round(time.Second))
	}
	seed := seed(t)
	t.Logf("soak for %v", duration)
	const (
		vis        = 2 * time.Second
		sampleEach = 5 * time.Second
		window     = time.Minute // the baseline: the first minute's peak
		slack      = 64 << 20
	)
	h := newHarness(t, seed)
	h.setupQueue("soak", vis)
	// About 175 messages a second: 2 producers × 50 calls × 1.75 messages.
	w := &workload{h: h, queue: "soak", vis: vis, producers: 2, consumers: 2,
		interval: 20 * time.Millisecond, maxBatch: 3, leave: 10}
	rng := rand.New(rand.NewPCG(seed, 1))

	var samples []rssSample
	start := time.Now()
	end := time.NewTimer(duration)
	defer end.Stop()
	sample := time.NewTicker(sampleEach)
	defer sample.Stop()
	// Kills far enough apart that each process lives long enough for a leak
	// to show in its memory.
	killEvery := func() time.Duration { return between(rng, time.Minute, 2*time.Minute) }
	kill := time.NewTimer(killEvery())
	defer kill.Stop()
	kills := 0
	w.run()
loop:
	for {
		select {
		case <-end.C:
			break loop
		case <-sample.C:
			s := h.server()
			if rss, err := s.rss(); err == nil {
				samples = append(samples, rssSample{at: time.Since(start), rss: rss, gen: kills + 1})
			}
		case <-kill.C:
			if err := h.fault("kill -9").kill(); err != nil {
				t.Fatal(err)
			}
			kills++
			if err := h.restart(); err != nil {
				t.Fatalf("restart after kill -9 (seed %d): %v", seed, err)
			}
			kill.Reset(killEvery())
		}
	}
	w.halt()

	base, peak, report := rssReport(samples, window)
	t.Logf("server RSS over time (per minute: min–max, process generations):\n%s", report)
	bound := 2*base + slack
	h.conclude(w, 2*time.Minute, "soak", "kills", fmt.Sprintf(" duration=%v rss-first-minute-peak=%s rss-peak=%s bound=%s",
		duration, mib(base), mib(peak), mib(bound)))
	if len(samples) == 0 {
		t.Fatal("no RSS sample was taken")
	}
	if peak > bound {
		t.Errorf("server RSS grew to %s, beyond twice the first minute's peak plus 64 MiB (%s)", mib(peak), mib(bound))
	}
}

// rssSample is the server's resident memory at a moment of the soak.
type rssSample struct {
	at  time.Duration // since the start of the load
	rss int64
	gen int // which server process
}

// rssReport returns the peak within the first window, the peak overall,
// and a table of the samples minute by minute.
func rssReport(samples []rssSample, window time.Duration) (base, peak int64, table string) {
	var b strings.Builder
	for i := 0; i < len(samples); {
		minute := samples[i].at / time.Minute
		lo, hi := samples[i].rss, samples[i].rss
		gens := map[int]bool{}
		j := i
		for ; j < len(samples) && samples[j].at/time.Minute == minute; j++ {
			lo, hi = min(lo, samples[j].rss), max(hi, samples[j].rss)
			gens[samples[j].gen] = true
		}
		fmt.Fprintf(&b, "  minute %2d: %s – %s over %d samples, %d processes\n", minute+1, mib(lo), mib(hi), j-i, len(gens))
		i = j
	}
	for _, s := range samples {
		if s.at <= window {
			base = max(base, s.rss)
		}
		peak = max(peak, s.rss)
	}
	return base, peak, b.String()
}

func mib(n int64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }
