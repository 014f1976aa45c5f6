package pebblestore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// crashHistory records, per message body, the event numbers at which its
// send returned and its ack was issued and returned (0 = not yet). Event
// numbers come from one counter, so they order operations against clones.
type crashHistory struct {
	clock  atomic.Int64
	mu     sync.Mutex // guards msgs
	msgs   map[string]*crashRecord
	cycles atomic.Int64
	open   atomic.Int64 // messages sent and not yet acked: producers pause above a bound
}

type crashRecord struct{ sent, ackStart, acked int64 }

func (h *crashHistory) tick() int64 { return h.clock.Add(1) }

func (h *crashHistory) update(body string, fn func(r *crashRecord)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.msgs[body]
	if !ok {
		r = &crashRecord{}
		h.msgs[body] = r
	}
	fn(r)
}

// TestCrashNoAckLost runs producers and consumers against a store on
// Pebble's crashable in-memory filesystem and, at many moments, takes a crash
// clone that keeps a random share of the unsynced writes (a power cut). Each
// clone is reopened and checked: every send answered before the clone began
// is there unless its ack began before the clone ended; no message whose ack
// was answered before the clone began is there; nothing unsent appears.
func TestCrashNoAckLost(t *testing.T) {
	t.Parallel()
	const clones = 40
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	fs := vfs.NewCrashableMem()
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty, MemTableBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &crashHistory{msgs: map[string]*crashRecord{}}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return base.Add(time.Duration(h.clock.Load()) * time.Microsecond) }
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: unlimited("q"), Now: base}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); crashProducer(ctx, t, s, h, p, now) }()
	}
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); crashConsumer(ctx, t, s, h, now) }()
	}
	for i := range clones {
		for target := h.cycles.Load() + 20; h.cycles.Load() < target && !t.Failed(); {
			runtimeYield()
		}
		start := h.tick()
		clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		end := h.tick()
		checkClone(t, i, clone, h, start, end)
	}
	cancel()
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func crashProducer(ctx context.Context, t *testing.T, s *Store, h *crashHistory, p int, now func() time.Time) {
	for n := 0; ctx.Err() == nil; n++ {
		if h.open.Load() > 300 {
			runtimeYield()
			continue
		}
		msgs := make([]store.NewMessage, 1+n%7)
		for i := range msgs {
			msgs[i] = store.NewMessage{Body: []byte(fmt.Sprintf("p%d-%d-%d", p, n, i)), Kind: store.BodyBinary}
			h.update(string(msgs[i].Body), func(*crashRecord) {}) // known before it can appear
		}
		if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: now()}); err != nil {
			t.Errorf("send: %v", err)
			return
		}
		ev := h.tick()
		for _, m := range msgs {
			h.update(string(m.Body), func(r *crashRecord) { r.sent = ev })
		}
		h.open.Add(int64(len(msgs)))
		h.cycles.Add(1)
	}
}

func crashConsumer(ctx context.Context, t *testing.T, s *Store, h *crashHistory, now func() time.Time) {
	for ctx.Err() == nil {
		res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 5, Visibility: time.Hour, Now: now(), Retry: retryNow})
		if err != nil {
			t.Errorf("lease: %v", err)
			return
		}
		if len(res.Messages) == 0 {
			runtimeYield()
			continue
		}
		leases := make([]string, len(res.Messages))
		ev := h.tick()
		for i, m := range res.Messages {
			leases[i] = m.Lease
			h.update(string(m.Body), func(r *crashRecord) { r.ackStart = ev })
		}
		errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: leases, Now: now()})
		if err != nil {
			t.Errorf("ack: %v", err)
			return
		}
		ev = h.tick()
		for i, m := range res.Messages {
			if errs[i] != nil {
				t.Errorf("ack %s: %v", m.Body, errs[i])
			}
			h.update(string(m.Body), func(r *crashRecord) { r.acked = ev })
		}
		h.open.Add(-int64(len(res.Messages)))
		h.cycles.Add(1)
	}
}

// checkClone reopens a crash clone and compares its messages with history.
func checkClone(t *testing.T, i int, fs *vfs.MemFS, h *crashHistory, start, end int64) {
	t.Helper()
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty, MemTableBytes: 1 << 20})
	if err != nil {
		t.Fatalf("clone %d: reopen: %v", i, err)
	}
	defer s.Close()
	present := map[string]bool{}
	later := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC) // every lease has expired, no retention has
	for {
		res, err := s.Lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 1000, Visibility: time.Hour, Now: later, Retry: retryNow})
		if err != nil {
			t.Fatalf("clone %d: lease: %v", i, err)
		}
		if len(res.Messages) == 0 {
			break
		}
		for _, m := range res.Messages {
			if present[string(m.Body)] {
				t.Errorf("clone %d: %s handed out twice in one recovery", i, m.Body)
			}
			present[string(m.Body)] = true
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for body := range present {
		r, ok := h.msgs[body]
		if !ok {
			t.Errorf("clone %d: phantom message %s", i, body)
		} else if r.acked != 0 && r.acked < start {
			t.Errorf("clone %d: %s came back after its ack was answered", i, body)
		}
	}
	for body, r := range h.msgs {
		if r.sent != 0 && r.sent < start && (r.ackStart == 0 || r.ackStart > end) && !present[body] {
			t.Errorf("clone %d: %s lost: its send was answered before the crash", i, body)
		}
	}
	t.Logf("clone %d: %d messages present, %d in history", i, len(present), len(h.msgs))
}

func unlimited(name string) store.QueueConfig {
	c := store.DefaultConfig(name)
	c.MaxAttempts = 0
	return c
}

func plenty() (uint64, error) { return 1 << 40, nil }

func runtimeYield() { runtime.Gosched() }
