package bench

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// runBacklog is w4, the backlog. Its baseline: Baseline messages are sent
// into the empty queue and then received and acked (Consumers goroutines,
// Batch per request), which gives the rate of a queue that holds little.
// Then Count messages are sent (Producers, Batch per request) and the
// process's RSS is read; then the backlog is drained, and the first
// Baseline messages of the drain give the rate of a full queue, to compare
// with the baseline. The measured phase is the whole drain; a message's
// latency is the receive+ack round that took it.
func runBacklog(ctx context.Context, r *runner) (outcome, error) {
	if err := r.putQueue(ctx); err != nil {
		return outcome{}, err
	}
	q, base := r.p.Count, r.p.Baseline
	p, c, b := r.p.Producers, r.p.Consumers, r.p.Batch

	if err := r.sendAll(ctx, base, p, b, false, nil, r.phase("baseline: fill", base), nil); err != nil {
		return outcome{}, err
	}
	// Each phase's cost starts before its meter: reading the engine takes
	// Pebble's mutex, which must not count in the rate.
	emptyCost := r.startCost()
	empty := r.phase("baseline: receive+ack", base)
	if _, _, err := r.receiveAll(ctx, empty, base, c, b, noLatency, nil); err != nil {
		return outcome{}, err
	}
	emptyCost.stop()

	fill := r.phase("fill the backlog", q)
	if err := r.sendAll(ctx, q, p, b, false, nil, fill, nil); err != nil {
		return outcome{}, err
	}
	r.extra["fill_seconds"] = fill.elapsed().Seconds()
	r.extra["fill_per_second"] = perSecond(q, fill.elapsed())
	r.extra["rss_after_fill_bytes"] = currentRSS()
	r.extra["go_heap_after_fill_bytes"] = heapInUse()

	fullCost := r.startCost()
	drain := r.phaseAt("drain the backlog", withEnd(windowEnds(q, r.p.Windows), base))
	var settled atomic.Int64
	lat, refused, err := r.receiveAll(ctx, drain, q, c, b, receiveAckRound, func(n int) {
		if settled.Add(int64(n)) >= base {
			fullCost.stop() // the first call past base counts; later ones do nothing
		}
	})
	if err != nil {
		return outcome{}, err
	}
	emptyRate := perSecond(base, empty.elapsed())
	fullRate := perSecond(base, drain.reachedAt(base))
	r.extra["empty_receive_per_second"] = emptyRate
	r.extra["backlog_receive_per_second"] = fullRate
	r.extra["ratio"] = 0.0
	if emptyRate > 0 {
		r.extra["ratio"] = fullRate / emptyRate
	}
	r.extra["acks_refused_lease_expired"] = refused
	// CPU per message of the same two phases, which tells a machine that
	// was slower in one phase (same CPU, different rates) from a backlog
	// that cost more (compactions of what the drain deletes, table reads);
	// and the engine's flushes and compactions in each, which tell whose.
	if e, ok := emptyCost.perMessage(base); ok {
		r.extra["empty_cpu_us_per_message"] = e
	}
	if f, ok := fullCost.perMessage(base); ok {
		r.extra["backlog_cpu_us_per_message"] = f
	}
	if e, ok := emptyCost.engineSeconds(); ok {
		r.extra["empty_engine_seconds"] = e
	}
	if f, ok := fullCost.engineSeconds(); ok {
		r.extra["backlog_engine_seconds"] = f
	}
	return outcome{count: drain.count(), elapsed: drain.elapsed(), lat: lat, windows: drain.windows()}, nil
}

// phaseCost is the process's CPU time over a phase, and the storage
// engine's flushes and compactions in it when there is an engine to read.
type phaseCost struct {
	start   time.Duration
	ok      bool
	engine  engineReader // nil: no engine to read
	before  store.EngineWork
	stopped atomic.Bool
	elapsed time.Duration
	work    chan store.EngineWork // the phase's engine work; nil without an engine
}

func (r *runner) startCost() *phaseCost {
	p := &phaseCost{}
	if before, ok := r.engine.read(); ok {
		p.engine, p.before = r.engine, before
	}
	p.start, p.ok = cpuTime()
	return p
}

// stop ends the phase at its first call; later calls, from other
// goroutines too, return at once. It may run inside a measured window (the
// drain's, from a consumer), so the engine is read on a goroutine of its
// own: its metrics take Pebble's mutex, which a manifest write can hold.
func (p *phaseCost) stop() {
	if !p.stopped.CompareAndSwap(false, true) {
		return
	}
	t, ok := cpuTime()
	p.ok, p.elapsed = p.ok && ok, t-p.start
	if p.engine != nil {
		p.work = make(chan store.EngineWork, 1)
		go func() {
			w, _ := p.engine.read()
			p.work <- w.Since(p.before)
		}()
	}
}

// perMessage is the phase's CPU in microseconds per message; false if the
// CPU time is unknown here or the phase never ended. Call it once every
// stop has returned.
func (p *phaseCost) perMessage(n int64) (float64, bool) {
	if !p.ok || !p.stopped.Load() || n <= 0 {
		return 0, false
	}
	return float64(p.elapsed.Nanoseconds()) / 1e3 / float64(n), true
}

// engineSeconds is the time of the flushes and compactions in the phase
// (of a flush in the phase it ended in, of a compaction as far as it got);
// false without an engine to read or if the phase never ended. Call it
// once every stop has returned.
func (p *phaseCost) engineSeconds() (float64, bool) {
	if !p.stopped.Load() || p.work == nil {
		return 0, false
	}
	w := <-p.work
	p.work <- w // for a later call
	return w.Time().Seconds(), true
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// windowEnds are the counts at which windows windows of total items end.
func windowEnds(total int64, windows int) []int64 {
	windows = int(max(min(int64(windows), total), 1))
	ends := make([]int64, windows)
	for k := range ends {
		ends[k] = total * int64(k+1) / int64(windows)
	}
	return ends
}

// withEnd adds the end n to ends, kept ascending and without repeats.
func withEnd(ends []int64, n int64) []int64 {
	i, found := slices.BinarySearch(ends, n)
	if found {
		return ends
	}
	return slices.Insert(ends, i, n)
}
