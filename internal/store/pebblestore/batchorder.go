package pebblestore

import (
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Why a batch is regrouped before it is applied. Pebble inserts a batch's
// keys into the memtable's skiplist one by one, in batch order, and keeps
// where the last one went: a key that lands right after the previous one
// is placed from there, any other is searched for from the top of the
// list. A verb writes per message — a send its record, body and ready
// entry; a lease its ready entry, lease entry and record — so consecutive
// keys of a batch were in different keyspaces (tags), each insert a full
// search: 17% of the CPU of a batched round trip (w1) was skiplist inserts.
// Grouped by tag, a batch's keys mostly come in key order (messages are
// numbered in send order, and verbs take them in that order), and each
// insert starts where the last ended.
//
// The grouping is stable, so writes of one key (which share its tag) keep
// their order, and the batch means what it meant. Batches with range
// deletions are left as they are: a range deletion covers the writes before
// it in the batch, so moving writes across it would change what it deletes.

// regroupMin is the least number of writes worth regrouping.
const regroupMin = 16

// scratch holds buffers the store reuses from txn to txn, under its mutex.
type scratch struct {
	rec    []byte    // a message record's encoding (putMsg)
	ops    []batchOp // regroup's writes
	sorted []int     // regroup's order
}

// batchOp is one write of a batch, its key and value in the batch's memory.
type batchOp struct {
	kind       pebble.InternalKeyKind
	key, value []byte
}

// regroupable reports whether writes of kind may be regrouped.
func regroupable(kind pebble.InternalKeyKind) bool {
	switch kind {
	case pebble.InternalKeyKindSet, pebble.InternalKeyKindDelete, pebble.InternalKeyKindSingleDelete, pebble.InternalKeyKindMerge:
		return true
	}
	return false
}

// regroup returns a batch with b's writes grouped by their key's first byte
// (its tag), or b itself when that is not worth it or not possible. Its
// working slices are sc's.
func regroup(db *pebble.DB, b *pebble.Batch, sc *scratch) *pebble.Batch {
	n := int(b.Count())
	if n < regroupMin {
		return b
	}
	ops := sc.ops[:0]
	defer func() { clear(ops); sc.ops = ops[:0] }() // keep the capacity, not b's memory
	var perTag [256]int
	r := b.Reader()
	for {
		kind, key, value, ok, err := r.Next()
		if err != nil {
			return b
		}
		if !ok {
			break
		}
		if !regroupable(kind) || len(key) == 0 {
			return b // range deletions and anything unexpected: keep the order
		}
		ops = append(ops, batchOp{kind, key, value})
		perTag[key[0]]++
	}
	if len(ops) != n {
		return b
	}
	// Counting sort by tag: start of each tag's run, then place in order.
	var start [256]int
	for i, sum := 0, 0; i < len(perTag); i++ {
		start[i], sum = sum, sum+perTag[i]
	}
	sorted := slices.Grow(sc.sorted[:0], n)[:n]
	sc.sorted = sorted
	for i, o := range ops {
		sorted[start[o.key[0]]] = i
		start[o.key[0]]++
	}
	nb := db.NewBatchWithSize(len(b.Repr()))
	for _, i := range sorted {
		o := ops[i]
		var err error
		switch o.kind {
		case pebble.InternalKeyKindSet:
			err = nb.Set(o.key, o.value, nil)
		case pebble.InternalKeyKindMerge:
			err = nb.Merge(o.key, o.value, nil)
		case pebble.InternalKeyKindSingleDelete:
			err = nb.SingleDelete(o.key, nil)
		default:
			err = nb.Delete(o.key, nil)
		}
		if err != nil {
			nb.Close()
			return b
		}
	}
	return nb
}
