package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/atomicfs"

	"github.com/courierhq/courier/internal/store"
)

// Corruption tests: with the store closed, flip bytes in its files and
// reopen. The store must refuse to open with an error naming the damaged
// file, or open and serve every message it should (the flipped byte was
// one no read depends on); with SkipVerify it may also open and then fail
// the damaged read with an error naming the file. It must never open and
// serve with messages missing or back.

// TestCorruptFiles flips bytes at seeded random offsets of the newest WAL,
// the MANIFEST and every table of a store closed after flushes and
// compactions.
func TestCorruptFiles(t *testing.T) {
	t.Parallel()
	seed := testSeed(t)
	img, live := corruptFixture(t)
	files := corruptTargets(t, img)
	var mu sync.Mutex // guards summary
	summary := map[string]map[string]int{}
	t.Cleanup(func() {
		for _, f := range slices.Sorted(maps.Keys(summary)) {
			t.Logf("SUMMARY corruption %s: %v", f, summary[f])
		}
	})
	for i, f := range files {
		t.Run(f.kind, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for _, skip := range []bool{false, true} {
				offsets := f.offsets(rng)
				counts := map[string]int{}
				for _, off := range offsets {
					if f.kind == "WAL" && looksLost(t, img, f.name, off) {
						counts["skipped: a lost write's image"]++
						continue
					}
					got := corruptAndOpen(t, img, live, f.name, off, skip)
					counts[got]++
				}
				// A table of queue counters alone is, in this fixture,
				// shadowed by the newer counters each later change wrote
				// (in the WAL or a newer table): no read opens it, so
				// without the check at open its damage shows only when a
				// compaction reads it. Every flip must still leave the
				// store correct.
				noticeable := !skip || !f.countersOnly
				if noticeable && counts["refused"]+counts["read failed"] == 0 {
					t.Errorf("%s (SkipVerify %v): no flip was noticed: %v", f.name, skip, counts)
				}
				key := fmt.Sprintf("%s (%s, SkipVerify %v)", f.kind, f.name, skip)
				mu.Lock()
				summary[key] = counts
				mu.Unlock()
			}
		})
	}
}

// looksLost reports whether flip at off would leave what a lost write
// leaves when the bytes it lost held one set bit: a zero byte with only
// zeros after it to the end of its sector. verify.go takes that for a torn
// write, rightly, and no check can tell it from damage (see there).
func looksLost(t *testing.T, fs *vfs.MemFS, name string, off int) bool {
	t.Helper()
	b, err := fs.UnsafeGetFileDataBuffer("db/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b[off]^flipMask == 0 && allZero(b[off+1:min(len(b), off|511+1)])
}

// TestCorruptWALMiddle: a flipped byte early in the newest WAL, which
// Pebble takes for a torn tail (dropping every write after it), makes the
// store refuse to open, naming the WAL. Pebble alone opens the same files
// with acknowledged writes missing and no error: the check is needed.
func TestCorruptWALMiddle(t *testing.T) {
	t.Parallel()
	img, live := corruptFixture(t)
	wal := newestWAL(t, img)
	// The payload of the WAL's first chunk (a header is 19 bytes).
	damaged := copyMem(t, img)
	flip(t, damaged, wal, 40)
	_, err := Open(Options{Dir: "db", FS: copyMem(t, damaged), FreeBytes: plenty})
	if err == nil || !errors.Is(err, errCorruptFile) || !strings.Contains(err.Error(), wal) {
		t.Fatalf("open with a damaged WAL: %v; want an error naming %s", err, wal)
	}
	t.Logf("refused: %v", err)

	whole, cut := pebbleKeys(t, img), pebbleKeys(t, damaged)
	if cut >= whole {
		t.Fatalf("Pebble alone read %d keys from the damaged store, %d from the whole one: the control proves nothing", cut, whole)
	}
	t.Logf("Pebble alone: %d of %d keys, no error (%d messages live)", cut, whole, len(live))
}

// TestCorruptTableSkipVerify: with the check at open skipped, a damaged
// table makes the read that meets it fail with an error naming the file,
// instead of Pebble's default of stopping the process.
func TestCorruptTableSkipVerify(t *testing.T) {
	t.Parallel()
	img, _ := corruptFixture(t)
	var table string
	var size int
	for _, f := range corruptTargets(t, img) {
		if strings.HasPrefix(f.kind, "table") && f.size > size {
			table, size = f.name, f.size
		}
	}
	damaged := copyMem(t, img)
	flip(t, damaged, table, size/3)
	// Pebble names a table by its number ("file 000015: block …").
	num, _, _ := strings.Cut(table, ".")
	s, err := Open(Options{Dir: "db", FS: damaged, FreeBytes: plenty, SkipVerify: true})
	if err != nil {
		if !strings.Contains(err.Error(), num) {
			t.Fatalf("open: %v; want it to name %s", err, table)
		}
		return // the damaged block holds what load reads
	}
	defer s.Close()
	_, err = drainQueue(s, "q", func(store.Message) {})
	if err == nil || !strings.Contains(err.Error(), num) {
		t.Fatalf("drain of a store with a damaged table: %v; want an error naming %s", err, table)
	}
	t.Logf("read failed: %.200s", err)
}

// corruptFixture builds a store with flushed, compacted and unflushed data
// (some messages acked) and returns the files a power cut right after the
// last answer leaves (everything answered is synced; the WAL has no
// clean-close trailer), with the bodies of the messages it holds.
func corruptFixture(t *testing.T) (*vfs.MemFS, map[string]bool) {
	t.Helper()
	fs := vfs.NewCrashableMem()
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty, MemTableBytes: 32 << 10, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: unlimited("q"), Now: crashBase}); err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	for i := range 200 {
		msgs := make([]store.NewMessage, 4)
		for j := range msgs {
			b := fmt.Sprintf("m%d-%d-%s", i, j, strings.Repeat("x", 60))
			msgs[j] = store.NewMessage{Body: []byte(b), Kind: store.BodyBinary}
			live[b] = true
		}
		if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: crashBase}); err != nil {
			t.Fatal(err)
		}
		if i%3 > 0 {
			continue
		}
		res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 3, Visibility: time.Hour, Now: crashBase, Retry: retryNow})
		if err != nil {
			t.Fatal(err)
		}
		var leases []string
		for _, m := range res.Messages {
			leases = append(leases, m.Lease)
			delete(live, string(m.Body))
		}
		if _, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: leases, Now: crashBase}); err != nil {
			t.Fatal(err)
		}
	}
	return fs.CrashClone(vfs.CrashCloneCfg{}), live
}

// corruptTarget is a file to damage.
type corruptTarget struct {
	kind, name   string
	size         int
	countersOnly bool // a table of queue counters ('S') only
}

// offsets picks the offsets to flip: 30 at random, and for the MANIFEST 5
// in its last record, which Pebble reads as a possible torn tail.
func (c corruptTarget) offsets(rng *rand.Rand) []int {
	n := min(30, c.size)
	out := make([]int, 0, n+5)
	for range n {
		out = append(out, rng.IntN(c.size))
	}
	if c.kind == "MANIFEST" {
		for range 5 {
			out = append(out, c.size-1-rng.IntN(min(60, c.size)))
		}
	}
	return out
}

// corruptTargets lists the newest WAL, the MANIFEST and the live tables of
// a store's files (a crash can leave obsolete tables behind, which no read
// touches).
func corruptTargets(t *testing.T, fs *vfs.MemFS) []corruptTarget {
	t.Helper()
	manifest, err := atomicfs.ReadMarker(fs, "db", "manifest")
	if err != nil {
		t.Fatal(err)
	}
	// A WAL's size is that of its records: the zeros it is filled with
	// ahead of them (walfill.go), or a recycled file's records of an older
	// log, hold nothing a flip could damage.
	size := func(name string) int {
		b, err := fs.UnsafeGetFileDataBuffer("db/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if num, ok := strings.CutSuffix(name, ".log"); ok {
			n, err := strconv.ParseUint(num, 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			return walRecordsEnd(b, walChunks(uint32(n)))
		}
		return len(b)
	}
	out := []corruptTarget{
		{kind: "WAL", name: newestWAL(t, fs)},
		{kind: "MANIFEST", name: manifest},
	}
	for _, tb := range liveTables(t, fs) {
		out = append(out, corruptTarget{kind: "table", name: tb.name, countersOnly: tb.lo == tagStats && tb.hi == tagStats})
	}
	for i := range out {
		out[i].size = size(out[i].name)
		if out[i].kind == "table" {
			out[i].kind = "table " + out[i].name
		}
	}
	return out
}

// liveTable is a table of the store's current version: its file name and
// the tags of its first and last keys.
type liveTable struct {
	name   string
	lo, hi byte
}

// liveTables lists the tables of the store's current version, by name.
func liveTables(t *testing.T, fs *vfs.MemFS) []liveTable {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: copyMem(t, fs), ReadOnly: true, Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	levels, err := db.SSTables()
	if err != nil {
		t.Fatal(err)
	}
	var out []liveTable
	for _, level := range levels {
		for _, table := range level {
			out = append(out, liveTable{name: fmt.Sprintf("%s.sst", table.FileNum),
				lo: table.Smallest.UserKey[0], hi: table.Largest.UserKey[0]})
		}
	}
	slices.SortFunc(out, func(a, b liveTable) int { return strings.Compare(a.name, b.name) })
	return out
}

func newestWAL(t *testing.T, fs *vfs.MemFS) string {
	t.Helper()
	names, err := fs.List("db")
	if err != nil {
		t.Fatal(err)
	}
	newest := ""
	for _, name := range names {
		if strings.HasSuffix(name, ".log") && name > newest { // zero-padded numbers sort as numbers
			newest = name
		}
	}
	if newest == "" {
		t.Fatal("no WAL")
	}
	return newest
}

// corruptAndOpen flips the byte at off of a copy of the store's file name,
// opens the copy and drains it. It returns "refused" (open failed naming
// the file), "read failed" (a read failed naming the file), or "intact"
// (every message served as it should be), and fails the test otherwise.
func corruptAndOpen(t *testing.T, img *vfs.MemFS, live map[string]bool, name string, off int, skipVerify bool) string {
	t.Helper()
	fs := copyMem(t, img)
	flip(t, fs, name, off)
	num, _, _ := strings.Cut(name, ".")
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty, CacheBytes: 1 << 20, SkipVerify: skipVerify})
	if err != nil {
		if !strings.Contains(err.Error(), num) {
			t.Errorf("%s flipped at %d: open: %v; want an error naming the file", name, off, err)
		}
		return "refused"
	}
	defer s.Close()
	found := map[string]bool{}
	_, err = drainQueue(s, "q", func(m store.Message) { found[string(m.Body)] = true })
	if err != nil {
		if !strings.Contains(err.Error(), num) {
			t.Errorf("%s flipped at %d: drain: %v; want an error naming the file", name, off, err)
		}
		return "read failed"
	}
	missing, extra := 0, 0
	for b := range live {
		if !found[b] {
			missing++
		}
	}
	for b := range found {
		if !live[b] {
			extra++
		}
	}
	if missing+extra > 0 {
		t.Errorf("%s flipped at %d (SkipVerify %v): opened and served with %d messages missing and %d back or unknown", name, off, skipVerify, missing, extra)
		return "silent"
	}
	return "intact"
}

// copyMem copies the store directory of fs to a new MemFS.
func copyMem(t *testing.T, fs *vfs.MemFS) *vfs.MemFS {
	t.Helper()
	out := vfs.NewMem()
	if err := out.MkdirAll("db", 0o755); err != nil {
		t.Fatal(err)
	}
	names, err := fs.List("db")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, err := fs.UnsafeGetFileDataBuffer("db/" + n)
		if err != nil {
			t.Fatal(err)
		}
		f, err := out.Create("db/"+n, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(bytes.Clone(b)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// flipMask is the bit flip flips.
const flipMask = 0x10

// flip inverts one bit of the byte at off of the store's file name.
func flip(t *testing.T, fs *vfs.MemFS, name string, off int) {
	t.Helper()
	b, err := fs.UnsafeGetFileDataBuffer("db/" + name)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= flipMask
}

// pebbleKeys opens a copy of the store's files with Pebble alone, no check
// of ours, and counts its keys.
func pebbleKeys(t *testing.T, fs *vfs.MemFS) int {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: copyMem(t, fs), Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatalf("pebble alone: %v", err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		t.Fatalf("pebble alone: %v", err)
	}
	return n
}

// walRecordsEnd is where the valid chunks of log k end in b.
func walRecordsEnd(b []byte, k chunkKind) int {
	for start := 0; start < len(b); start += recordBlock {
		block := b[start:min(start+recordBlock, len(b))]
		invalid, end := k.validPrefix(block)
		switch {
		case end:
			return start + len(block)
		case invalid >= 0:
			return start + invalid
		}
	}
	return len(b)
}
