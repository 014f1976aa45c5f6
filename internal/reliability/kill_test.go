package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/history"
)

// TestKill9UnderLoad kills the server with SIGKILL at random moments while
// producers and consumers run, restarts it on the same data directory each
// time, then drains the queue and checks the history: every send answered
// 2xx was received and acked, nothing acked came back, no two leases of a
// message overlapped, every duplicate has a cause, nothing came from nowhere.
//
// COURIER_KILLS sets the number of kills (default 25).
func TestKill9UnderLoad(t *testing.T) {
	seed := seed(t)
	kills := 25
	if s := os.Getenv("COURIER_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("COURIER_KILLS=%q: want a positive integer", s)
		}
		kills = n
	}
	const vis = 2 * time.Second
	h := newHarness(t, seed)
	h.setupQueue("kill9", vis)
	w := &workload{h: h, queue: "kill9", vis: vis, producers: 3, consumers: 3,
		interval: 10 * time.Millisecond, maxBatch: 16, leave: 10}
	rng := rand.New(rand.NewPCG(seed, 1))

	start := time.Now()
	w.run()
	var down time.Duration
	for range kills {
		// The load runs for a random while: from a moment just after the
		// restart (recovery may still be settling) to a second of traffic.
		timer := time.NewTimer(between(rng, 5*time.Millisecond, time.Second))
		<-timer.C
		s := h.fault("kill -9")
		t0 := time.Now()
		if err := s.kill(); err != nil {
			t.Fatal(err)
		}
		if err := h.restart(); err != nil {
			t.Fatalf("restart after kill -9 (seed %d): %v", seed, err)
		}
		down += time.Since(t0)
	}
	// A last stretch of traffic on the final server, so that messages whose
	// leases the kills left behind come back under load.
	timer := time.NewTimer(vis)
	<-timer.C
	w.halt()
	load := time.Since(start)

	r := h.conclude(w, time.Minute, "kill9", "kills", fmt.Sprintf(" load=%v mean-downtime=%v",
		load.Round(time.Millisecond), (down/time.Duration(kills)).Round(time.Millisecond)))
	if r.SendsOK == 0 || r.Deliveries == 0 || r.Crashes != kills || r.Restarts != kills ||
		r.Explained[history.CauseRelease] == 0 || r.SameAttempt == 0 {
		t.Errorf("the test did not exercise the server: %v", r)
	}
}
