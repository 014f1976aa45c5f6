package reliability

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/history"
)

// TestGracefulStopUnderLoad stops the server with SIGTERM while producers
// and consumers run, several times: it must exit with status 0 within its
// shutdown timeout, print that it stopped, and answer the calls in flight
// with a 2xx or a clean error (a refused connection, 503) — never a 2xx that
// a restart then takes back, which the final history check would show.
func TestGracefulStopUnderLoad(t *testing.T) {
	seed := seed(t)
	const (
		vis    = 2 * time.Second
		rounds = 4
		margin = 2 * time.Second // beyond the grace period: process exit, the test's own latency
	)
	h := newHarness(t, seed)
	h.setupQueue("graceful", vis)
	w := &workload{h: h, queue: "graceful", vis: vis, producers: 3, consumers: 3,
		interval: 10 * time.Millisecond, maxBatch: 16, leave: 10}
	rng := rand.New(rand.NewPCG(seed, 1))

	w.run()
	var slowest time.Duration
	for range rounds {
		timer := time.NewTimer(between(rng, 200*time.Millisecond, 1500*time.Millisecond))
		<-timer.C
		s := h.fault("SIGTERM")
		took, err := s.terminate(shutdownTimeout + margin)
		if err != nil {
			t.Errorf("seed %d: %v", seed, err)
		}
		slowest = max(slowest, took)
		if lines := s.stdout.Lines(); !slices.Contains(lines, "courier stopped") {
			t.Errorf("stdout after SIGTERM: %q, want a line \"courier stopped\"", lines)
		}
		if err := h.restart(); err != nil {
			t.Fatalf("restart after SIGTERM (seed %d): %v", seed, err)
		}
	}
	timer := time.NewTimer(vis)
	<-timer.C
	w.halt()

	inflight := inFlightAtFaults(h.log.Events())
	r := h.conclude(w, time.Minute, "graceful", "stops", fmt.Sprintf(" slowest-stop=%v in-flight-at-SIGTERM: ok=%d failed=%d unknown=%d",
		slowest.Round(time.Millisecond), inflight[history.OK], inflight[history.Failed], inflight[history.Unknown]))
	if r.SendsOK == 0 || r.Deliveries == 0 || r.Crashes != rounds {
		t.Errorf("the test did not exercise the server: %v", r)
	}
	if inflight[history.OK] == 0 {
		t.Errorf("no call in flight at a SIGTERM was answered 2xx: %v", inflight)
	}
}

// inFlightAtFaults counts the outcomes of the calls that were in flight at a
// fault: invoked before it, ended after it.
func inFlightAtFaults(events []history.Event) map[history.Outcome]int {
	counts := make(map[history.Outcome]int)
	var faults []int64
	for _, e := range events {
		if e.Op == history.OpCrash {
			faults = append(faults, e.Seq)
		}
	}
	for _, e := range events {
		if e.Outcome == history.Invoked || e.Op == history.OpCrash || e.Op == history.OpRestart {
			continue
		}
		if slices.ContainsFunc(faults, func(f int64) bool { return e.Call < f && f < e.Seq }) {
			counts[e.Outcome]++
		}
	}
	return counts
}
