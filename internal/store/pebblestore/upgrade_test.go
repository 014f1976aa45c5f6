package pebblestore

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// testdata/format3 is a data directory written by the last build of format
// 3 (commit cd0b948), before task leases wrote operands:
// queue "q" with six tasks t0..t5 sent at 2026-01-01 (body {"t":i}, header
// n=i, result TTL 24h), t0..t2 leased for an hour (their records rewritten
// running), the memtable flushed, t3 leased, t0 acked with result
// {"ok":0}, t1 nacked with no delay. So t2 and t3 are running (leases in
// fixture.json), t1 queued after attempt 1, t4 and t5 queued, t0
// succeeded; some records are in a table, some only in the log.
//
// testdata/format2 is a data directory written by the last build of format
// 2 (commit e822dfe), before leases wrote operands: queue "q" with eight
// messages sent at 2026-01-01 (bodies "m0".."m7", header n=0..7; m7 over
// the inline limit), m0..m2 leased for an hour, the memtable flushed, m3
// and m4 leased, m0 acked, m1 nacked with no delay. So m2..m4 are in
// flight (their leases in leases.json), m1 (attempt 1) and m5..m7 ready;
// some records are in a table, some only in the log.

// openFormat2 opens a copy of testdata/format2 in memory.
func openFormat2(t *testing.T) (*Store, vfs.FS, map[string]string, time.Time) {
	t.Helper()
	var fixture struct {
		Now    time.Time         `json:"now"`
		Leases map[string]string `json:"leases"`
	}
	s, fs := openFixture(t, "format2", "leases.json", &fixture)
	return s, fs, fixture.Leases, fixture.Now
}

// openFixture opens a copy of testdata/name/db in memory, and reads the
// JSON file fixture of testdata/name into v.
func openFixture(t *testing.T, name, fixture string, v any) (*Store, vfs.FS) {
	t.Helper()
	fs := vfs.NewMem()
	src := filepath.Join("testdata", name)
	names, err := os.ReadDir(filepath.Join(src, "db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.MkdirAll("db", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := vfs.CopyAcrossFS(vfs.Default, filepath.Join(src, "db", n.Name()), fs, fs.PathJoin("db", n.Name())); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(src, fixture))
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty})
	if err != nil {
		t.Fatalf("open of %s: %v", name, err)
	}
	return s, fs
}

// TestUpgradeFromFormat2 opens a directory of format 2, checks that it
// reads as it was written and is stamped 4, then works every message off
// with leases that now write operands, across a flush and a reopening.
func TestUpgradeFromFormat2(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, fs, old, t0 := openFormat2(t)
	defer s.Close()
	if v, closer, err := s.db.Get(metaKey("format")); err != nil || string(v) != formatVersion {
		t.Fatalf("format after open: %q, %v; want %q", v, err, formatVersion)
	} else {
		closer.Close()
	}
	wantStats(t, s, t0, store.Stats{Ready: 4, InFlight: 3, SentTotal: 8, AckedTotal: 1})

	// A lease of format 2 (a whole record in flight) is acked as before.
	if errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{old[`"m2"`]}, Now: t0}); err != nil || errs[0] != nil {
		t.Fatalf("ack of m2's lease from format 2: %v, %v", errs, err)
	}
	// The ready ones are leased the new way, over records of format 2.
	now := t0.Add(time.Minute)
	got := leaseAll(t, s, now)
	if want := []string{`"m1" n=1 attempt 2`, `"m5" n=5 attempt 1`, `"m6" n=6 attempt 1`, `"m7… n=7 attempt 1`}; !slices.Equal(describe(got), want) {
		t.Fatalf("leased after the upgrade: %q; want %q", describe(got), want)
	}
	wantStats(t, s, now, store.Stats{InFlight: 6, SentTotal: 8, AckedTotal: 2})

	// Flushed to a table and read back after a reopening, the operands
	// still say who holds each message.
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, fs)
	leases := []string{old[`"m3"`]}
	for _, m := range got {
		leases = append(leases, m.Lease)
	}
	leases = append(leases, got[0].Lease) // twice: the second is refused
	errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: leases, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if want := []error{nil, nil, nil, nil, nil, store.ErrLeaseExpired}; !slices.Equal(errs, want) {
		t.Fatalf("acks after reopening: %v; want %v", errs, want)
	}
	// m4's lease of format 2 runs out: it is delivered again.
	later := t0.Add(2 * time.Hour)
	if _, err := s.Tick(ctx, &store.TickParams{Now: later, Retry: retryNow}); err != nil {
		t.Fatal(err)
	}
	again := leaseAll(t, s, later)
	if want := []string{`"m4" n=4 attempt 2`}; !slices.Equal(describe(again), want) {
		t.Fatalf("after m4's lease ran out: %q; want %q", describe(again), want)
	}
	if errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{old[`"m4"`], again[0].Lease}, Now: later}); err != nil ||
		errs[0] != store.ErrLeaseExpired || errs[1] != nil {
		t.Fatalf("acks of m4's old and new leases: %v, %v", errs, err)
	}
	wantStats(t, s, later, store.Stats{SentTotal: 8, AckedTotal: 8})
}

func leaseAll(t *testing.T, s *Store, now time.Time) []store.Message {
	t.Helper()
	r, err := s.Lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 10, Visibility: time.Hour, Now: now, Retry: retryNow})
	if err != nil {
		t.Fatal(err)
	}
	return r.Messages
}

// describe names each message by body (cut at 4 bytes), header n and attempt.
func describe(ms []store.Message) []string {
	var out []string
	for _, m := range ms {
		b := string(m.Body)
		if len(b) > 4 {
			b = b[:3] + "…"
		}
		out = append(out, b+" n="+m.Headers["n"]+" attempt "+strconv.Itoa(m.Attempt))
	}
	return out
}

func wantStats(t *testing.T, s *Store, now time.Time, want store.Stats) {
	t.Helper()
	q, err := s.GetQueue(context.Background(), &store.GetQueueParams{Name: "q", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	got := q.Stats
	got.OldestReady = time.Time{}
	if got != want {
		t.Fatalf("stats %+v; want %+v", got, want)
	}
}

// TestUpgradeFromFormat3 opens a directory of format 3, checks that its
// tasks read as they were written and that it is stamped 4, then works
// them off with leases that now merge task operands, across a flush and a
// reopening.
func TestUpgradeFromFormat3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var fx struct {
		Now    time.Time         `json:"now"`
		Tasks  map[string]string `json:"tasks"`
		Leases map[string]string `json:"leases"`
	}
	s, fs := openFixture(t, "format3", "fixture.json", &fx)
	defer func() { s.Close() }()
	if v, closer, err := s.db.Get(metaKey("format")); err != nil || string(v) != formatVersion {
		t.Fatalf("format after open: %q, %v; want %q", v, err, formatVersion)
	} else {
		closer.Close()
	}
	t0 := fx.Now
	states := func(when string, at time.Time, want map[string]string) {
		t.Helper()
		for name, w := range want {
			tk, err := s.GetTask(ctx, &store.GetTaskParams{ID: fx.Tasks[name], Now: at})
			if got := string(tk.State) + " " + strconv.Itoa(tk.Attempt); err != nil || got != w {
				t.Fatalf("%s: task %s = %q, %v; want %q", when, name, got, err, w)
			}
		}
	}
	states("as written", t0, map[string]string{"t0": "succeeded 1", "t1": "queued 1", "t2": "running 1",
		"t3": "running 1", "t4": "queued 0", "t5": "queued 0"})
	wantStats(t, s, t0, store.Stats{Ready: 3, InFlight: 2, SentTotal: 6, AckedTotal: 1})

	now := t0.Add(time.Minute)
	got := leaseAll(t, s, now)
	if want := []string{`{"t… n=1 attempt 2`, `{"t… n=4 attempt 1`, `{"t… n=5 attempt 1`}; !slices.Equal(describe(got), want) {
		t.Fatalf("leased after the upgrade: %q; want %q", describe(got), want)
	}
	states("leased the new way", now, map[string]string{"t1": "running 2", "t4": "running 1", "t5": "running 1"})
	// Read (and so cached) above, each record got an operand, not a rewrite.
	for _, name := range []string{"t1", "t4", "t5"} {
		seq, _ := parseID(fx.Tasks[name])
		raw := rawTask(t, s, seq)
		if r, err := decodeTaskRecord(raw); err != nil || len(raw) <= len(r.encode()) {
			t.Fatalf("task %s after its lease: %x (%v); want its record and an operand", name, raw, err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, fs)
	states("reopened", now, map[string]string{"t1": "running 2", "t2": "running 1", "t3": "running 1", "t4": "running 1"})
	leases := []string{fx.Leases["t2"], fx.Leases["t3"]}
	for _, m := range got {
		leases = append(leases, m.Lease)
	}
	errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: leases, Now: now})
	if err != nil || !slices.Equal(errs, make([]error, len(leases))) {
		t.Fatalf("acks after reopening: %v, %v", errs, err)
	}
	states("acked", now, map[string]string{"t0": "succeeded 1", "t1": "succeeded 2", "t2": "succeeded 1",
		"t3": "succeeded 1", "t4": "succeeded 1", "t5": "succeeded 1"})
	wantStats(t, s, now, store.Stats{SentTotal: 6, AckedTotal: 6})
}
