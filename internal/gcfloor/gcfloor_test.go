package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		live, floor uint64
		base, want  int
	}{
		{live: 8 << 20, floor: 64 << 20, base: 100, want: 800},     // goal 8+64 MiB
		{live: 6 << 20, floor: 64 << 20, base: 100, want: 1067},    // rounded up: never below the floor
		{live: 3 << 20, floor: 64 << 20, base: 100, want: 1675},    // below the runtime's minimum: 4 MiB × 16.75 = 3+64
		{live: 0, floor: 64 << 20, base: 100, want: 1600},          // no live heap: the floor
		{live: 64 << 20, floor: 64 << 20, base: 100, want: 100},    // the default rule already grows by the floor
		{live: 1 << 30, floor: 64 << 20, base: 100, want: 100},     // a large heap: as Go would
		{live: 1 << 30, floor: 64 << 20, base: 300, want: 300},     // never below the base
		{live: 4 << 20, floor: 1 << 62, base: 100, want: 26214400}, // bounded: no overflow of floor×100
	} {
		if got := Percent(c.live, c.floor, c.base); got != c.want {
			t.Errorf("Percent(%d, %d, %d) = %d, want %d", c.live, c.floor, c.base, got, c.want)
		}
	}
}

// gogc is the collector's GOGC now.
func gogc(t *testing.T) int {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatal("runtime/metrics has no /gc/gogc:percent")
	}
	return int(s[0].Value.Uint64())
}

// collectUntil runs collections until cond holds, or fails after a while:
// the tuner runs after a collection, on the runtime's cleanup goroutine.
func collectUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("after collections for 5s: %s", what)
}

func noEnv(string) string { return "" }

func TestStartRaisesGOGCAndStopRestoresIt(t *testing.T) {
	before := gogc(t)
	// A floor far above this test's live heap (a few MiB): GOGC goes up to
	// about floor/live, as Percent says.
	const floor = 1 << 30
	stop, on := Start(floor, noEnv)
	if !on {
		t.Fatal("Start: not on")
	}
	defer stop()
	collectUntil(t, "GOGC not raised", func() bool { return gogc(t) > 1000 })
	tn := active
	collectUntil(t, "the tuner ran once only: not re-armed", func() bool {
		tn.mu.Lock()
		defer tn.mu.Unlock()
		return tn.runs >= 3
	})
	// The collector's goal is then about the live heap plus the floor (the
	// goal also counts stacks and globals, a few KiB here).
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	if live, goal := s[0].Value.Uint64(), s[1].Value.Uint64(); goal < floor || goal > live+floor+live/2+(1<<20) {
		t.Errorf("heap goal %d with %d live; want about live + floor (%d)", goal, live, floor)
	}

	// A second tuner in the same process does nothing: there is one GOGC.
	stop2, on2 := Start(floor, noEnv)
	if on2 {
		t.Error("a second Start while one runs: on")
	}
	stop2()
	if gogc(t) == before {
		t.Error("the second tuner's stop restored GOGC; the first still runs")
	}

	stop()
	if got := gogc(t); got != before {
		t.Errorf("after stop, GOGC %d, want %d as before", got, before)
	}
	// Collections after stop leave GOGC alone.
	runtime.GC()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if got := gogc(t); got != before {
		t.Errorf("collections after stop set GOGC %d, want %d", got, before)
	}
	stop() // a second stop does nothing
	if got := gogc(t); got != before {
		t.Errorf("after a second stop, GOGC %d, want %d", got, before)
	}

	// And a tuner can start again once the first has stopped.
	stop3, on3 := Start(floor, noEnv)
	if !on3 {
		t.Error("Start after stop: not on")
	}
	stop3()
}

func TestStartDefersToGOGCAndZero(t *testing.T) {
	before := gogc(t)
	env := func(k string) string {
		if k == "GOGC" {
			return "200"
		}
		return ""
	}
	for _, c := range []struct {
		name   string
		floor  uint64
		getenv func(string) string
	}{{"GOGC set", 1 << 30, env}, {"floor 0", 0, noEnv}} {
		stop, on := Start(c.floor, c.getenv)
		if on {
			t.Errorf("%s: on", c.name)
		}
		for range 3 {
			runtime.GC()
		}
		time.Sleep(20 * time.Millisecond)
		if got := gogc(t); got != before {
			t.Errorf("%s: GOGC %d, want %d untouched", c.name, got, before)
		}
		stop()
	}
}

func TestStartLeavesCollectionOff(t *testing.T) {
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	stop, on := Start(1<<30, noEnv)
	defer stop()
	if on {
		t.Error("GOGC off: the tuner started")
	}
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("GOGC %d after Start with collection off, want it still off", got)
	}
}
