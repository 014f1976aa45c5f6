// Package gcfloor keeps Go's garbage collector from running far more often
// than a server needs when its live heap is small.
//
// Go collects when the heap has grown by GOGC percent (100) of what the
// last collection found live. A courier server's live heap is a few
// mebibytes when its queues are short (Pebble keeps its memtables and block
// cache outside the Go heap), while every request allocates: at 1,000
// messages a second it collected five times a second, and each collection
// took a share of the two CPUs from the requests in flight. In a run of
// `courier bench w3` most answers over 2 ms that no slow fsync explained
// fell on a collection (docs/benchmarks-journal.md). So after each collection the
// collector is told to let the heap grow by at least a floor of bytes
// before the next one: GOGC is raised so that the collector's goal is the
// live heap plus the floor, and left at its own value once the live heap is
// larger than the floor, where the default rule already collects rarely
// enough. The price is memory: up to floor bytes of garbage held between
// collections. GOGC set after one collection holds until the next has
// ended, so a live heap that grows k-fold within one cycle may overshoot
// to about k×floor of garbage once; GOMEMLIMIT caps that, if memory is
// tight.
//
// The percent it starts from is the process's own: 400 in the courier
// binary (server.TuneGC), which a floor only ever raises. GOGC set in the
// environment is the operator's choice and is left alone; GOMEMLIMIT keeps
// working as a ceiling, as the runtime enforces it whatever GOGC is.
package gcfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultFloor is the floor of `courier serve` and `courier bench` unless
// told otherwise (--gc-heap-floor).
const DefaultFloor = 64 << 20

// heapMinimum is the runtime's least heap goal at GOGC 100, which it
// scales with GOGC: the goal is the larger of live×(1+GOGC/100) and
// heapMinimum×GOGC/100 (runtime/mgcpacer.go).
const heapMinimum = 4 << 20

// maxFloor bounds a floor, so that floor×100 cannot overflow and GOGC
// stays within the runtime's int32.
const maxFloor = 1 << 40

var (
	mu     sync.Mutex // guards active
	active *tuner     // the running tuner, if any: GOGC is one per process
)

// Start raises GOGC after every collection so that the heap may grow by
// about floor bytes before the next, until stop is called, which restores
// GOGC as it was; on reports whether it did. It does nothing (stop is a
// no-op) when floor is 0, when getenv("GOGC") is set, when collection is
// off, or when a tuner started before is still running: a process has one
// collector to tune.
func Start(floor uint64, getenv func(string) string) (stop func(), on bool) {
	if floor == 0 || getenv("GOGC") != "" {
		return func() {}, false
	}
	mu.Lock()
	defer mu.Unlock()
	if active != nil {
		return func() {}, false
	}
	base, ok := readGOGC()
	if !ok {
		return func() {}, false
	}
	t := &tuner{floor: floor, base: base, current: base}
	active = t
	t.arm()
	return t.stop, true
}

// readGOGC is the GOGC in effect, read without setting it (SetGCPercent
// would act on its argument); false when collection is off.
func readGOGC() (int, bool) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0, false
	}
	v := s[0].Value.Uint64()
	if v > math.MaxInt32 { // off: the runtime's -1, as unsigned
		return 0, false
	}
	return int(v), true
}

// Percent is the GOGC that makes the collector's goal about live+floor
// bytes, and never less than base.
func Percent(live, floor uint64, base int) int {
	floor = min(floor, maxFloor)
	var p uint64
	if live >= heapMinimum {
		p = (floor*100 + live - 1) / live // rounded up
	} else { // the minimum decides: heapMinimum×p/100 = live+floor
		p = ((live+floor)*100 + heapMinimum - 1) / heapMinimum
	}
	return max(base, int(p))
}

// tuner sets GOGC after each collection.
type tuner struct {
	floor   uint64
	base    int // GOGC when started, restored by stop
	mu      sync.Mutex
	stopped bool
	current int // the GOGC set last
	runs    int // collections seen, for tests
	sample  [1]metrics.Sample
}

// sentinel is garbage whose collection tells the tuner a cycle ended. It
// holds a pointer so that the runtime does not pack it with other small
// objects (whose slot would outlive it).
type sentinel struct{ _ *int }

// arm leaves a sentinel for the next collection to find.
func (t *tuner) arm() {
	runtime.AddCleanup(new(sentinel), (*tuner).collected, t)
}

// collected runs after a collection freed the sentinel: it sets GOGC from
// the live heap that collection found, and arms the next sentinel.
func (t *tuner) collected() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.runs++
	t.sample[0].Name = "/gc/heap/live:bytes"
	metrics.Read(t.sample[:])
	// Without the figure (a runtime that lacks it) GOGC stays as it is.
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		if p := Percent(t.sample[0].Value.Uint64(), t.floor, t.base); p != t.current {
			debug.SetGCPercent(p)
			t.current = p
		}
	}
	t.arm()
}

// stop ends the tuning and restores GOGC; later calls do nothing.
func (t *tuner) stop() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.stopped = true
	debug.SetGCPercent(t.base)
	t.mu.Unlock()
	mu.Lock()
	active = nil
	mu.Unlock()
}
