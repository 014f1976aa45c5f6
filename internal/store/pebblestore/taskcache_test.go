package pebblestore

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestTaskCache(t *testing.T) {
	t.Parallel()
	rec := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	c := newTaskCache(300)
	for seq := uint64(1); seq <= 3; seq++ {
		c.set(seq, rec(100, byte(seq)))
	}
	if c.bytes != 300 || c.count() != 3 {
		t.Fatalf("after 3 records of 100 bytes: %d bytes, %d records", c.bytes, c.count())
	}
	c.set(2, rec(50, 'x')) // an update keeps its place and changes the size
	if v, ok := c.get(2); !ok || !bytes.Equal(v, rec(50, 'x')) || c.bytes != 250 {
		t.Fatalf("after update: get(2) = %q, %v; %d bytes", v, ok, c.bytes)
	}
	c.set(4, rec(100, 4)) // 350 > 300: the oldest insertion (1) goes
	if _, ok := c.get(1); ok {
		t.Error("seq 1 still cached after the budget was passed")
	}
	for _, seq := range []uint64{2, 3, 4} {
		if _, ok := c.get(seq); !ok {
			t.Errorf("seq %d evicted, want only seq 1 gone", seq)
		}
	}
	c.set(3, nil) // deleted
	if _, ok := c.get(3); ok || c.bytes != 150 {
		t.Errorf("after delete: seq 3 cached %v, %d bytes (want 150)", ok, c.bytes)
	}
	c.set(5, rec(taskCacheMaxRecord+1, 5))
	if _, ok := c.get(5); ok {
		t.Error("a record over taskCacheMaxRecord was cached")
	}
	c.set(1, rec(10, 1)) // evicted, read again: a small cache takes it back, in order
	if v, ok := c.get(1); !ok || len(v) != 10 || c.bytes != 160 || c.ents[c.head].seq != 1 {
		t.Errorf("an evicted record read again: cached %v, %d bytes (want 160), first seq %d", ok, c.bytes, c.ents[c.head].seq)
	}
	if off := newTaskCache(-1); true {
		off.set(1, rec(10, 1))
		if _, ok := off.get(1); ok {
			t.Error("a disabled cache cached a record")
		}
	}
}

// TestTaskCacheStaysBounded checks that the slice does not grow with every
// task ever cached, whether records are evicted by the budget or deleted
// (expired) first.
func TestTaskCacheStaysBounded(t *testing.T) {
	t.Parallel()
	c := newTaskCache(1000)
	for seq := uint64(1); seq <= 100_000; seq++ {
		c.set(seq, make([]byte, 10))
		if seq%2 == 0 {
			c.set(seq-1, nil)
		}
	}
	if c.bytes > 1000 || c.count() > 100 || len(c.ents)-c.head > 4*c.count()+2048 {
		t.Errorf("cache holds %d bytes in %d records over %d entries, budget 1000", c.bytes, c.count(), len(c.ents)-c.head)
	}
	if cap(c.ents) > 20_000 {
		t.Errorf("the array has grown to %d", cap(c.ents))
	}
	// Deleted far faster than the budget turns over.
	big := newTaskCache(1 << 30)
	for seq := uint64(1); seq <= 100_000; seq++ {
		big.set(seq, make([]byte, 10))
		big.set(seq, nil)
	}
	if n := len(big.ents) - big.head; n > 2048 || big.bytes != 0 || big.dead > 2048 {
		t.Errorf("after every record was deleted: %d entries, %d dead, %d bytes", n, big.dead, big.bytes)
	}
}

// TestTaskCacheOrder: records join in seq order; an old seq not cached is
// not added in the middle, and a cached one is updated in place.
func TestTaskCacheOrder(t *testing.T) {
	t.Parallel()
	c := newTaskCache(1 << 20)
	for _, seq := range []uint64{10, 20, 30} {
		c.set(seq, []byte{byte(seq)})
	}
	c.set(15, []byte("old")) // older than the newest, but near the end: taken
	if v, ok := c.get(15); !ok || string(v) != "old" || c.count() != 4 {
		t.Errorf("seq 15 = %q, %v; want it cached among %d records", v, ok, c.count())
	}
	c.set(15, nil)
	for seq := uint64(100); seq < 100+taskCacheShift+1; seq++ {
		c.set(seq, []byte{1})
	}
	c.set(40, []byte("far")) // older than taskCacheShift newer ones: not taken
	if _, ok := c.get(40); ok {
		t.Error("a seq far older than the newest was cached")
	}
	c.set(20, nil)
	c.set(20, []byte("back")) // a deleted entry's place is reused
	if v, ok := c.get(20); !ok || string(v) != "back" || c.dead != 1 || c.bytes != 6+taskCacheShift+1 {
		t.Errorf("seq 20 = %q, %v; dead %d, bytes %d", v, ok, c.dead, c.bytes)
	}
	for i := 1; i < len(c.ents); i++ {
		if c.ents[i-1].seq >= c.ents[i].seq {
			t.Fatalf("entries out of order: %v", c.ents)
		}
	}
}

// count is how many records c holds.
func (c *taskCache) count() int {
	n := 0
	for _, e := range c.ents[c.head:] {
		if e.v != nil {
			n++
		}
	}
	return n
}

// TestTaskCacheRandom runs random sets (mostly newer seqs, some older,
// some deletes) against a map of the last value set: the cache may miss,
// but never answers a stale record, and its counts and order always hold.
func TestTaskCacheRandom(t *testing.T) {
	t.Parallel()
	for _, limit := range []int64{0, 50, 1000, 1 << 20} {
		rng := rand.New(rand.NewPCG(uint64(limit), 7))
		c := newTaskCache(limit)
		last := map[uint64][]byte{}
		next := uint64(1)
		for step := range 50_000 {
			seq := next
			switch r := rng.IntN(10); {
			case r < 6:
				next += uint64(1 + rng.IntN(3))
			default: // an older seq
				seq = next - uint64(rng.IntN(int(min(next, 200))))
			}
			var v []byte
			if rng.IntN(4) > 0 {
				v = bytes.Repeat([]byte{byte(step)}, 1+rng.IntN(40))
			}
			c.set(seq, v)
			last[seq] = v
			if got, ok := c.get(seq); ok && !bytes.Equal(got, v) {
				t.Fatalf("limit %d, step %d: get(%d) = %q right after set %q", limit, step, seq, got, v)
			}
			if step%997 == 0 {
				checkTaskCache(t, c, last)
			}
		}
		checkTaskCache(t, c, last)
	}
}

// checkTaskCache checks c against the last values set and its invariants.
func checkTaskCache(t *testing.T, c *taskCache, last map[uint64][]byte) {
	t.Helper()
	sum, dead := 0, 0
	for i, e := range c.ents[c.head:] {
		if i > 0 && c.ents[c.head+i-1].seq >= e.seq {
			t.Fatalf("entries out of order at %d", i)
		}
		if e.v == nil {
			dead++
			continue
		}
		sum += len(e.v)
		if !bytes.Equal(e.v, last[e.seq]) {
			t.Fatalf("seq %d cached as %q, last set %q", e.seq, e.v, last[e.seq])
		}
	}
	if sum != c.bytes || dead != c.dead || (c.limit >= 0 && c.bytes > c.limit) {
		t.Fatalf("counted %d bytes, %d dead; the cache says %d, %d (limit %d)", sum, dead, c.bytes, c.dead, c.limit)
	}
}
