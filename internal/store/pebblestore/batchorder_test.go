package pebblestore

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func memDB(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// contents lists every live key and value of db.
func contents(t *testing.T, db *pebble.DB) []string {
	t.Helper()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, fmt.Sprintf("%q=%q", it.Key(), it.Value()))
	}
	return out
}

// batchWrites lists the writes of b in batch order, each as its key, a
// space and its kind.
func batchWrites(t *testing.T, b *pebble.Batch) []string {
	t.Helper()
	var out []string
	for r := b.Reader(); ; {
		kind, k, _, ok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, fmt.Sprintf("%s %d", k, kind))
	}
}

// A regrouped batch has its keys grouped by tag, in their order within
// each tag, and leaves a store exactly as the batch itself does: keys
// written and deleted several times in one batch included.
func TestRegroupKeepsMeaning(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		plain, grouped := memDB(t), memDB(t)
		for _, db := range []*pebble.DB{plain, grouped} { // something to delete
			if err := db.Set([]byte("Mold"), []byte("x"), pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}
		b := plain.NewIndexedBatch()
		n := regroupMin + rng.IntN(40)
		for i := range n {
			key := fmt.Appendf(nil, "%c%d", "MBRL"[rng.IntN(4)], rng.IntN(8))
			if i == 0 {
				key = []byte("Mold")
			}
			switch rng.IntN(4) {
			case 0:
				b.Delete(key, nil)
			case 1:
				b.SingleDelete(key, nil)
			default:
				b.Set(key, fmt.Appendf(nil, "v%d", i), nil)
			}
		}
		rb := regroup(grouped, b, &scratch{})
		if rb == b {
			t.Fatalf("round %d: a batch of %d writes was not regrouped", round, n)
		}
		// Grouped by tag, in batch order within a tag, each write of its
		// own kind (a single delete is no delete).
		byTag := func(a, b string) int { return int(a[0]) - int(b[0]) }
		want := batchWrites(t, b)
		slices.SortStableFunc(want, byTag)
		if got := batchWrites(t, rb); !slices.Equal(got, want) {
			t.Fatalf("round %d: regrouped writes\n%q\nwant, grouped by tag\n%q", round, got, want)
		}
		if err := plain.Apply(b, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if err := grouped.Apply(rb, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if a, g := contents(t, plain), contents(t, grouped); !slices.Equal(a, g) {
			t.Fatalf("round %d: the regrouped batch left\n%q\nthe batch itself\n%q", round, g, a)
		}
		b.Close()
		rb.Close()
	}
}

// Small batches, and batches with a range deletion (which covers the
// writes before it), are applied as they are.
func TestRegroupLeavesSomeBatches(t *testing.T) {
	db := memDB(t)
	small := db.NewBatch()
	defer small.Close()
	for i := range regroupMin - 1 {
		small.Set(fmt.Appendf(nil, "%c%d", "MB"[i%2], i), nil, nil)
	}
	if regroup(db, small, &scratch{}) != small {
		t.Error("a batch under regroupMin writes was regrouped")
	}
	ranged := db.NewBatch()
	defer ranged.Close()
	for i := range regroupMin {
		ranged.Set(fmt.Appendf(nil, "%c%d", "MB"[i%2], i), nil, nil)
	}
	ranged.DeleteRange([]byte("B"), []byte("C"), nil)
	ranged.Set([]byte("B1"), nil, nil)
	if regroup(db, ranged, &scratch{}) != ranged {
		t.Error("a batch with a range deletion was regrouped")
	}
}
