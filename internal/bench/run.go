package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/courierhq/courier"
)

// runner is what a workload runs with: its parameters, a client of the
// target, message bodies, the progress bar, and figures to report beyond
// the common ones.
type runner struct {
	p      Params
	c      *courier.Client
	bodies *bodies
	prog   *progress
	extra  map[string]any
	// ownQueue: the run named the queue itself (no --queue).
	ownQueue bool
	engine   engineReader // nil: no engine of this process to read
}

// phase starts a meter of total items and shows it on the progress bar.
func (r *runner) phase(name string, total int64) *meter {
	m := newMeter(name, total, r.p.Windows)
	r.prog.show(m)
	return m
}

// phaseAt is phase with windows ending at the counts ends.
func (r *runner) phaseAt(name string, ends []int64) *meter {
	m := newMeterAt(name, ends)
	r.prog.show(m)
	return m
}

// Run runs the workload cfg names against its target and returns what it
// measured. An in-process server is stopped, and a temporary data directory
// removed, before Run returns, whatever happened. Canceling ctx stops the
// run; its error then wraps ctx's.
//
// Run applies the defaults itself: pass cfg without them, so that it can
// tell a queue it named (and deletes from an external server afterwards)
// from one it was given.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	ownQueue := cfg.Params.Queue == ""
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tg, err := startTarget(ctx, cfg.Target)
	if err != nil {
		return nil, err
	}
	res, err := runOn(ctx, cfg, tg, ownQueue)
	if serr := tg.stop(ctx); serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// runOn runs the workload on a started target and measures it.
func runOn(ctx context.Context, cfg Config, tg *target, ownQueue bool) (*Result, error) {
	s := specs[cfg.Workload]
	var opts []courier.Option
	if cfg.Target.Token != "" {
		opts = append(opts, courier.WithToken(cfg.Target.Token))
	}
	// The SDK's own transport settings (a transport per client, many idle
	// connections), under a counter of the requests.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = maxIdleConns, maxIdleConns
	reqs := &requestCounter{next: t}
	opts = append(opts, courier.WithHTTPClient(&http.Client{Transport: reqs}))
	c := courier.NewClient(tg.url, opts...)
	defer c.CloseIdleConnections()
	r := &runner{p: used(cfg.Workload, cfg.Params), c: c,
		bodies: newBodies(cfg.Params.Size, time.Now()), extra: map[string]any{}, ownQueue: ownQueue,
		engine: engineOf(tg)}
	r.prog = startProgress(cfg.Progress, string(cfg.Workload))

	syncs := startWALSyncs(tg)
	engineBefore, engineOK := r.engine.read()
	res := startResources()
	out, err := s.run(ctx, r)
	cpu, cpuOK, peak := res.finish()
	syncs.note(r.extra)
	if now, ok := r.engine.read(); ok && engineOK {
		noteEngineWork(r.extra, now.Since(engineBefore))
	}
	reqs.note(r.extra)
	r.prog.stop()
	if err != nil {
		return nil, fmt.Errorf("bench %s: %w", cfg.Workload, err)
	}
	if cfg.Workload == W3 {
		noteSyncProbe(ctx, r.extra, tg.dataDir) // "" unless an embedded store of this process
	}
	disk, err := tg.diskBytes()
	if err != nil {
		return nil, fmt.Errorf("bench: size of the data directory: %w", err)
	}
	for k, v := range tg.notes {
		r.extra[k] = v
	}
	// The Ps as well as the CPUs: figures move with GOMAXPROCS (docs/configuration.md).
	r.extra["cpus"], r.extra["gomaxprocs"] = runtime.NumCPU(), runtime.GOMAXPROCS(0)
	if !cpuOK {
		r.extra["cpu"] = "unknown on this system (cpu_seconds 0)"
	}
	if peak == 0 {
		r.extra["peak_rss"] = "unknown on this system (peak_rss_bytes 0)"
	} else if !res.peakIsRuns {
		r.extra["peak_rss_scope"] = "the whole process (the kernel's high-water mark could not be reset)"
	}
	if out.lat.Count() > 0 {
		r.extra["latency_samples"] = out.lat.Count()
	}
	r.queueStats(ctx, tg)

	result := &Result{
		Workload: string(cfg.Workload), Title: s.title, Target: tg.kind, Durability: tg.durability,
		Params: r.p, Count: out.count, Seconds: out.elapsed.Seconds(), Unit: s.unit,
		LatencyMS: latencyOf(out.lat), LatencyIs: s.latency,
		CPUSeconds: cpu, PeakRSSBytes: peak, DiskBytes: disk,
		Windows: out.windows, Extra: r.extra,
	}
	if s.latencyOpen != "" && r.p.Rate > 0 {
		result.LatencyIs = s.latencyOpen
	}
	if s.latencyWorker != "" && r.p.Worker {
		result.LatencyIs = s.latencyWorker
	}
	if result.Windows == nil {
		result.Windows = []Window{}
	}
	if out.elapsed > 0 {
		result.PerSecond = float64(out.count) / out.elapsed.Seconds()
	}
	return result, nil
}

// queueStats notes the queue's counters after the run (acked_total counts
// every ack the queue has seen), then, on an external server, deletes a
// queue the run named itself, so that runs leave no clutter.
func (r *runner) queueStats(ctx context.Context, tg *target) {
	q, err := r.c.GetQueue(ctx, r.p.Queue)
	if err != nil {
		r.extra["queue_stats_error"] = err.Error()
		return
	}
	r.extra["queue_acked_total"] = q.Stats.AckedTotal
	r.extra["queue_ready"] = q.Stats.Ready
	r.extra["queue_in_flight"] = q.Stats.InFlight
	if tg.kind == "url" && r.ownQueue {
		if err := r.c.DeleteQueue(ctx, r.p.Queue); err != nil {
			r.extra["queue_delete_error"] = err.Error()
		}
	}
}

// used is p with the parameters w does not use set to zero, so that a
// Result shows what took effect.
func used(w Workload, p Params) Params {
	zero := func(name string, v *int) {
		if !w.Uses(name) {
			*v = 0
		}
	}
	zero("producers", &p.Producers)
	zero("consumers", &p.Consumers)
	zero("batch", &p.Batch)
	zero("concurrency", &p.Concurrency)
	zero("backlog", &p.Backlog)
	if !w.Uses("rate") {
		p.Rate = 0
	}
	if !w.Uses("baseline") {
		p.Baseline = 0
	}
	p.Tasks = p.Tasks && w.Uses("tasks")
	p.Worker = p.Worker && w.Uses("worker")
	p.CarryAcks = p.CarryAcks && w.Uses("carry-acks") && p.Batch > 1 && !p.Worker
	return p
}
