package pebblestore

import "testing"

// TestTxnWorkIndex: a txn finds the working copy of each queue it touched,
// the same one every time, by scanning while it has few and by its map once
// it has more than workMapMin; the order of first touch is kept.
func TestTxnWorkIndex(t *testing.T) {
	var tx txn
	qs := make([]*queue, 3*workMapMin)
	first := make([]*qwork, len(qs))
	for i := range qs {
		qs[i] = &queue{name: string(rune('a' + i))}
		first[i] = tx.w(qs[i])
		if (tx.work != nil) != (i+1 > workMapMin) {
			t.Fatalf("after %d queues: map built %v", i+1, tx.work != nil)
		}
		for j := 0; j <= i; j++ {
			if got := tx.w(qs[j]); got != first[j] {
				t.Fatalf("after %d queues: queue %d has a second working copy", i+1, j)
			}
		}
	}
	if len(tx.order) != len(qs) || len(tx.work) != len(qs) {
		t.Fatalf("order %d, map %d, want %d each", len(tx.order), len(tx.work), len(qs))
	}
	for i, w := range tx.order {
		if w != first[i] || w.q != qs[i] {
			t.Fatalf("order[%d] is not the queue first touched %d-th", i, i)
		}
	}
}
