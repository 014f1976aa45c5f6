package pebblestore

import (
	"bytes"
	"testing"
)

func TestTaskCache(t *testing.T) {
	t.Parallel()
	rec := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	c := newTaskCache(300)
	for seq := uint64(1); seq <= 3; seq++ {
		c.set(seq, rec(100, byte(seq)))
	}
	if c.bytes != 300 || len(c.recs) != 3 {
		t.Fatalf("after 3 records of 100 bytes: %d bytes, %d records", c.bytes, len(c.recs))
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
	if off := newTaskCache(-1); true {
		off.set(1, rec(10, 1))
		if _, ok := off.get(1); ok {
			t.Error("a disabled cache cached a record")
		}
	}
}

// TestTaskCacheQueueStaysBounded checks that the insertion queue does not
// grow with every task ever cached, whether records are evicted by the
// budget or deleted (expired) first.
func TestTaskCacheQueueStaysBounded(t *testing.T) {
	t.Parallel()
	c := newTaskCache(1000)
	for seq := uint64(1); seq <= 100_000; seq++ {
		c.set(seq, make([]byte, 10))
		if seq%2 == 0 {
			c.set(seq-1, nil)
		}
	}
	if c.bytes > 1000 || len(c.recs) > 100 {
		t.Errorf("cache holds %d bytes in %d records, budget 1000", c.bytes, len(c.recs))
	}
	if n := len(c.order) - c.head; n > 4*len(c.recs)+2048 {
		t.Errorf("insertion queue holds %d seqs for %d records", n, len(c.recs))
	}
	if cap(c.order) > 20_000 {
		t.Errorf("insertion queue's array has grown to %d", cap(c.order))
	}
}
