package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// Power-loss tests: workloads of mixed operations run against a store on
// Pebble's crashable in-memory filesystem, and at many moments a crash image
// is taken (vfs.MemFS.CrashClone: everything synced, plus a random share of
// what was not), reopened through Open and checked against the history
// (checkRecovered). Crash points are of two kinds: at a random moment, with
// operations in flight, and inside a WAL fsync, just before it — the moment
// at which a store that answered before its data was durable would be
// caught. Memtables are small, so flushes, compactions and WAL rotation run
// under the crash points.

// powerLossConfig sizes one workload.
type powerLossConfig struct {
	seed    uint64
	points  int      // crash points to check
	walSync syncMode // how the WAL's fsyncs behave
	workers int
}

// syncMode is how a test filesystem treats fsyncs of WAL files.
type syncMode int

const (
	syncHonest     syncMode = iota
	syncNever               // fsync does nothing: the store answers before anything is durable
	syncEveryOther          // every second fsync does nothing: some answers come before durability
)

// TestPowerLoss checks thousands of crash points: every send answered before
// a crash survives it, every ack answered before it stays acked, nothing
// appears that was not sent, and the stats agree with the messages.
// COURIER_CRASH_POINTS sets the number of crash points (default 2000);
// COURIER_SEED reproduces a run's operations and crash choices.
func TestPowerLoss(t *testing.T) {
	t.Parallel()
	seed := testSeed(t)
	total := envInt(t, "COURIER_CRASH_POINTS", 2000)
	const workloads = 16
	var mu sync.Mutex // guards sum, sent
	var sum crashReport
	var sent int64
	t.Cleanup(func() {
		t.Logf("SUMMARY power loss: seed %d, %d workloads, %d messages sent; %s", seed, workloads, sent, &sum)
		if sum.deferredAcks == 0 {
			t.Error("no ack was carried by a lease with a deferred sync: that path went unchecked")
		}
	})
	for w := range workloads {
		t.Run(fmt.Sprintf("workload%d", w), func(t *testing.T) {
			t.Parallel()
			r, n := runPowerLoss(t, powerLossConfig{seed: seed + uint64(w), points: total / workloads, workers: 3})
			mu.Lock()
			sum.add(r)
			sent += n
			mu.Unlock()
			if r.failures() > 0 {
				t.Errorf("seed %d: %s; e.g.\n%s", seed+uint64(w), &r, strings.Join(r.examples, "\n"))
			}
			if r.points != total/workloads {
				t.Errorf("checked %d crash points, want %d", r.points, total/workloads)
			}
		})
	}
}

// TestPowerLossControl is the negative control: the same workload and
// checker, on filesystems whose WAL fsync lies, must report acknowledged
// messages lost. If it did not, TestPowerLoss would prove nothing.
func TestPowerLossControl(t *testing.T) {
	t.Parallel()
	seed := testSeed(t)
	for _, tc := range []struct {
		name string
		mode syncMode
	}{{"fsync never", syncNever}, {"fsync every other", syncEveryOther}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// One worker, crash points inside fsyncs, nothing unsynced kept:
			// an answer given before its data was durable is caught at the
			// next fsync.
			r, _ := runPowerLoss(t, powerLossConfig{seed: seed, points: 40, walSync: tc.mode, workers: 1})
			t.Logf("SUMMARY power loss control (%s): %s", tc.name, &r)
			if r.lost == 0 {
				t.Errorf("the checker found no lost message on a filesystem whose fsync lies: %s", &r)
			}
		})
	}
}

// runPowerLoss runs one workload with cfg.points crash points and returns
// what the checker found and how many messages were sent.
func runPowerLoss(t *testing.T, cfg powerLossConfig) (crashReport, int64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(cfg.seed, 1))
	mem := vfs.NewCrashableMem()
	fs := &crashFS{FS: mem, mem: mem, mode: cfg.walSync, clones: make(chan crashImage, 1),
		rng: rand.New(rand.NewPCG(cfg.seed, 2))}
	opts := Options{Dir: "db", FS: fs, FreeBytes: plenty, MemTableBytes: 128 << 10, CacheBytes: 1 << 20}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := newHistory()
	fs.hist.Store(h)
	wl := &workload{s: s, h: h}
	for _, q := range []struct {
		name string
		cfg  store.QueueConfig
	}{{"q", unlimited("q")}, {"q2", retried("q2")}} {
		if _, err := s.CreateQueue(t.Context(), &store.CreateQueueParams{Name: q.name, Config: q.cfg, Now: crashBase}); err != nil {
			t.Fatal(err)
		}
	}
	tokens := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, cfg.workers)
	for i := range cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{workload: wl, id: i, rng: rand.New(rand.NewPCG(cfg.seed, uint64(10+i)))}
			for range tokens {
				if err := w.step(); err != nil {
					errs <- fmt.Errorf("worker %d: %w", i, err)
					for range tokens { // keep taking tokens so the test can end
					}
					return
				}
			}
		}()
	}
	var r crashReport
	check := func(img crashImage) {
		c, err := Open(Options{Dir: "db", FS: img.fs, FreeBytes: plenty, MemTableBytes: 128 << 10, CacheBytes: 1 << 20})
		if err != nil {
			r.add(crashReport{points: 1, refused: 1, examples: []string{fmt.Sprintf("reopen after the crash at event %d: %v", img.start, err)}})
			return
		}
		r.add(checkRecovered(c, h, img.start, img.end))
		if err := c.Close(); err != nil {
			t.Errorf("close the recovered store: %v", err)
		}
	}
	lying := cfg.walSync != syncHonest
	for range cfg.points {
		pct := unsyncedShare(rng)
		if lying {
			pct = 0 // exactly what a lying fsync left durable
		}
		if lying || rng.IntN(2) == 0 {
			// Crash inside the next WAL fsync, with operations running.
			fs.arm(pct)
			img := func() crashImage {
				for {
					select {
					case img := <-fs.clones:
						return img
					case tokens <- struct{}{}:
					}
				}
			}()
			check(img)
			continue
		}
		for range 1 + rng.IntN(4) {
			tokens <- struct{}{}
		}
		start := h.tick()
		img := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rng})
		check(crashImage{fs: img, start: start, end: h.tick()})
	}
	close(tokens)
	wg.Wait()
	if cfg.walSync == syncHonest {
		checkSingleDeletes(t, s, true) // after many flushes and compactions
	}
	m := s.db.Metrics()
	t.Logf("%d flushes, %d compactions, %d WAL files, %d messages sent", m.Flush.Count, m.Compact.Count, m.WAL.Files, h.sent.Load())
	close(errs)
	for err := range errs {
		if cfg.walSync == syncHonest {
			t.Error(err)
		}
	}
	if err := s.Close(); err != nil && cfg.walSync == syncHonest {
		t.Errorf("close: %v", err)
	}
	r.deferredAcks = int(wl.deferredAcks.Load())
	return r, h.sent.Load()
}

// unsyncedShare picks the share of unsynced data a crash image keeps: often
// none or all (the extremes find the most), else anything between.
func unsyncedShare(rng *rand.Rand) int {
	switch rng.IntN(4) {
	case 0:
		return 0
	case 1:
		return 100
	default:
		return rng.IntN(101)
	}
}

// retried is a queue whose messages are dead-lettered on their second
// failed delivery, with retries a few milliseconds apart.
func retried(name string) store.QueueConfig {
	c := store.DefaultConfig(name)
	c.MaxAttempts = 2
	c.Backoff.Initial, c.Backoff.Max = 5*time.Millisecond, 50*time.Millisecond
	return c
}

// workload is the store and history its workers share.
type workload struct {
	s *Store
	h *history
	// deferredAcks counts the acks the workers' leases carried with their
	// sync deferred (store.SyncDeferrer): TestPowerLoss checks it saw some.
	deferredAcks atomic.Int64
}

// now is the workload's clock: a millisecond per event, so leases expire
// and delays come due as the workload runs.
func (wl *workload) now() time.Time {
	return crashBase.Add(time.Duration(wl.h.clock.Load()) * time.Millisecond)
}

// worker issues one operation per token: send batches (delayed, grouped,
// deduplicated, prioritized), lease, ack, nack (a third of them releases),
// extend, redrive, tick. It holds leases across operations, abandoning some
// to expire.
type worker struct {
	*workload
	id   int
	rng  *rand.Rand
	n    int
	held []heldLease
}

type heldLease struct {
	queue, lease, body string
}

func (w *worker) step() error {
	ctx := context.Background()
	switch p := w.rng.IntN(100); {
	case p < 35 && w.h.live.Load() < 30:
		return w.send(ctx)
	case p < 60:
		return w.lease(ctx)
	case p < 80:
		return w.ack(ctx)
	case p < 88:
		return w.nack(ctx)
	case p < 95:
		return w.extend(ctx)
	case p < 98:
		_, err := w.s.Redrive(ctx, &store.RedriveParams{Queue: "q2", Max: 5, Now: w.now()})
		return err
	default:
		_, err := w.s.Tick(ctx, &store.TickParams{Now: w.now(), Retry: retryNow})
		return err
	}
}

func (w *worker) send(ctx context.Context) error {
	queue := []string{"q", "q2"}[w.rng.IntN(2)]
	msgs := make([]store.NewMessage, 1+w.rng.IntN(6))
	bodies := make([]string, len(msgs))
	now := w.now()
	for i := range msgs {
		w.n++
		bodies[i] = fmt.Sprintf("w%d-%d", w.id, w.n)
		m := store.NewMessage{Body: []byte(bodies[i]), Kind: store.BodyBinary, Priority: w.rng.IntN(5) - 2}
		if w.rng.IntN(4) == 0 {
			m.NotBefore = now.Add(time.Duration(w.rng.IntN(300)) * time.Millisecond)
		}
		if w.rng.IntN(4) == 0 {
			m.Group = fmt.Sprintf("g%d", w.rng.IntN(4))
		}
		if w.rng.IntN(6) == 0 {
			m.DedupKey = fmt.Sprintf("d%d", w.rng.IntN(40))
		}
		msgs[i] = m
	}
	w.h.sending(bodies)
	res, err := w.s.Send(ctx, &store.SendParams{Queue: queue, Messages: msgs, Now: now})
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	w.h.sendAnswered(bodies, res)
	return nil
}

func (w *worker) lease(ctx context.Context) error {
	queue := []string{"q", "q2", "q2.dead"}[w.rng.IntN(3)]
	vis := time.Duration(20+w.rng.IntN(480)) * time.Millisecond
	res, err := w.s.Lease(ctx, &store.LeaseParams{Queue: queue, Max: 1 + w.rng.IntN(5), Visibility: vis, Now: w.now(), Retry: retryNow})
	if errors.Is(err, store.ErrQueueNotFound) && queue == "q2.dead" {
		return nil // nothing has been dead-lettered yet
	}
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	for _, m := range res.Messages {
		w.held = append(w.held, heldLease{queue: queue, lease: m.Lease, body: string(m.Body)})
	}
	if len(w.held) > 12 { // abandon the oldest: their leases will expire
		w.held = append(w.held[:0], w.held[len(w.held)-12:]...)
	}
	return nil
}

// take removes up to n held leases of one queue.
func (w *worker) take(n int) []heldLease {
	if len(w.held) == 0 {
		return nil
	}
	queue := w.held[w.rng.IntN(len(w.held))].queue
	var out, keep []heldLease
	for _, l := range w.held {
		if l.queue == queue && len(out) < n {
			out = append(out, l)
		} else {
			keep = append(keep, l)
		}
	}
	w.held = keep
	return out
}

func (w *worker) ack(ctx context.Context) error {
	ls := w.take(1 + w.rng.IntN(4))
	if len(ls) == 0 {
		return nil
	}
	bodies, leases := make([]string, len(ls)), make([]string, len(ls))
	for i, l := range ls {
		bodies[i], leases[i] = l.body, l.lease
	}
	idx := w.h.acking(bodies)
	errs, err := w.ackOrCarry(ctx, ls[0].queue, leases)
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	for i, e := range errs {
		if e != nil && !errors.Is(e, store.ErrLeaseExpired) {
			return fmt.Errorf("ack %s: %w", bodies[i], e)
		}
	}
	w.h.ackAnswered(bodies, idx, errs)
	return nil
}

// ackOrCarry acks leases by Ack, or, half the time, by a lease of the same
// queue that carries them and may defer its sync (when it hands out
// nothing); the acks count as answered only once WaitSynced says so, as a
// receive's answer waits for it.
func (w *worker) ackOrCarry(ctx context.Context, queue string, leases []string) ([]error, error) {
	if w.rng.IntN(2) == 0 {
		return w.s.Ack(ctx, &store.AckParams{Queue: queue, Leases: leases, Now: w.now()})
	}
	vis := time.Duration(20+w.rng.IntN(480)) * time.Millisecond
	res, err := w.s.Lease(ctx, &store.LeaseParams{Queue: queue, Max: 1, Visibility: vis, Now: w.now(), Retry: retryNow,
		Acks: leases, DeferSync: true})
	if err != nil {
		return nil, err
	}
	for _, m := range res.Messages {
		w.held = append(w.held, heldLease{queue: queue, lease: m.Lease, body: string(m.Body)})
	}
	if res.SyncMark != 0 {
		w.deferredAcks.Add(int64(len(leases)))
		if err := w.s.WaitSynced(ctx, res.SyncMark); err != nil {
			return nil, err
		}
	}
	return res.Acked, nil
}

func (w *worker) nack(ctx context.Context) error {
	ls := w.take(1)
	if len(ls) == 0 {
		return nil
	}
	var delay *time.Duration
	if w.rng.IntN(2) == 0 {
		d := time.Duration(w.rng.IntN(100)) * time.Millisecond
		delay = &d
	}
	// A third are releases: handed back without counting the attempt.
	release := w.rng.IntN(3) == 0
	_, err := w.s.Nack(ctx, &store.NackParams{Queue: ls[0].queue, Lease: ls[0].lease, Delay: delay, Now: w.now(),
		Retry: retryNow, Release: release})
	if err != nil && !errors.Is(err, store.ErrLeaseExpired) {
		return fmt.Errorf("nack (release %v): %w", release, err)
	}
	return nil
}

func (w *worker) extend(ctx context.Context) error {
	ls := w.take(1)
	if len(ls) == 0 {
		return nil
	}
	vis := time.Duration(100+w.rng.IntN(900)) * time.Millisecond
	_, err := w.s.Extend(ctx, &store.ExtendParams{Queue: ls[0].queue, Lease: ls[0].lease, Visibility: vis, Now: w.now()})
	if errors.Is(err, store.ErrLeaseExpired) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("extend: %w", err)
	}
	w.held = append(w.held, ls[0])
	return nil
}

// crashImage is a crash clone taken between two history events.
type crashImage struct {
	fs         *vfs.MemFS
	start, end int64
}

// crashFS wraps a crashable MemFS. Armed, it takes a crash image inside the
// next WAL fsync, before the fsync, and sends it on clones. Its mode can make
// WAL fsyncs lie, for the negative control.
type crashFS struct {
	vfs.FS
	mem    *vfs.MemFS
	mode   syncMode
	armed  atomic.Int32
	pct    atomic.Int32
	rng    *rand.Rand // used only by the goroutine that disarms: ordered by armed and clones
	syncs  atomic.Int64
	clones chan crashImage
	hist   atomic.Pointer[history]
}

// arm makes the next WAL fsync take a crash image keeping pct% of unsynced data.
func (fs *crashFS) arm(pct int) {
	fs.pct.Store(int32(pct))
	fs.armed.Store(1)
}

// Unwrap is the MemFS under the crashes (the embedded FS's Unwrap would
// answer nil, hiding it).
func (fs *crashFS) Unwrap() vfs.FS { return fs.FS }

func (fs *crashFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, cat)
	return fs.wrap(name, f, err)
}

func (fs *crashFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, cat)
	return fs.wrap(newname, f, err)
}

func (fs *crashFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, cat, opts...)
	return fs.wrap(name, f, err)
}

func (fs *crashFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &walFile{File: f, fs: fs}, nil
}

// walFile is a WAL file of a crashFS.
type walFile struct {
	vfs.File
	fs *crashFS
}

func (f *walFile) Sync() error     { return f.sync(f.File.Sync) }
func (f *walFile) SyncData() error { return f.sync(f.File.SyncData) }

func (f *walFile) sync(inner func() error) error {
	fs := f.fs
	if fs.armed.CompareAndSwap(1, 0) {
		h := fs.hist.Load()
		start := h.tick()
		img := fs.mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: int(fs.pct.Load()), RNG: fs.rng})
		fs.clones <- crashImage{fs: img, start: start, end: h.tick()}
	}
	switch n := fs.syncs.Add(1); {
	case fs.mode == syncNever, fs.mode == syncEveryOther && n%2 == 0:
		return nil
	}
	return inner()
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
