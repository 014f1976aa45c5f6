package pebblestore

import "slices"

// The task-record cache. A task's record is read back at each step of its
// life (leased, progress, acked with its result, read by the requester),
// and every such read was a Pebble point read under the store's mutex —
// once the record had left the memtable, a seek through the sstables'
// indexes, about a third of the mutex's time in a task burn-down. The
// cache holds the encoded records most recently written, so that these
// reads are a search in memory while a task is young.
//
// It is a write-through copy of what the applied batches hold, changed only
// in txn.apply (under the mutex, after the batch is applied), so it never
// shows a change the store did not make. A txn's own writes are kept apart
// until then (txn.taskWrites) and seen first by its reads. Memory is bounded
// by a byte budget: the oldest insertions are dropped first, whatever their
// state; a miss just reads Pebble.
//
// The records are kept in a slice sorted by seq, found by binary search.
// A task's seq is its message's, given out in increasing order, so tasks
// join at the end and the oldest leave from the front; and since tasks are
// leased and acked in about the order they were sent, the searches of a
// burn-down end near each other and stay in the CPU's caches. (A map of a
// few hundred thousand records, the first form of this cache, cost some
// 600 ns per access in a task burn-down, most of it cache and TLB misses:
// 6% of the CPU.) A record not cached that is older than the newest
// taskCacheShift cached (an old task read again after it left) is not
// cached.
//
// Rejected: caching decoded records (callers mutate what they get, so each
// read would need a deep copy anyway, and the encoded form is smaller), and
// an LRU (a task's reads follow its writes, which seq order already tracks
// well enough without touching a list on every hit).

// taskCacheMaxRecord: larger records (big results) are not cached, so a few
// of them cannot push out thousands of small ones.
const taskCacheMaxRecord = 64 << 10

// taskCacheShift is how many newer entries a record may be inserted in
// front of: a small cache (after a restart, say) takes the reads it gets
// in any order; a large one moves no more than this to take an old one.
const taskCacheShift = 1024

// taskCache maps task seqs to encoded records. Guarded by Store.mu.
type taskCache struct {
	ents  []taskEnt // sorted by seq; ents[head:] is the live part
	head  int
	dead  int // entries of ents[head:] whose record was deleted
	bytes int // sum of len(v)
	limit int // the budget of bytes; < 0: cache nothing
}

// taskEnt is one cached record; v nil: deleted, its place kept until the
// next compaction.
type taskEnt struct {
	seq uint64
	v   []byte
}

func newTaskCache(limit int64) *taskCache {
	return &taskCache{limit: int(limit)}
}

// find returns the index in ents of seq, or where it would go.
func (c *taskCache) find(seq uint64) (int, bool) {
	live := c.ents[c.head:]
	i, ok := slices.BinarySearchFunc(live, seq, func(e taskEnt, s uint64) int {
		switch {
		case e.seq < s:
			return -1
		case e.seq > s:
			return 1
		}
		return 0
	})
	return c.head + i, ok
}

// get returns the cached encoded record of seq.
func (c *taskCache) get(seq uint64) ([]byte, bool) {
	i, ok := c.find(seq)
	if !ok || c.ents[i].v == nil {
		return nil, false
	}
	return c.ents[i].v, true
}

// set caches v as seq's record; v == nil removes it.
func (c *taskCache) set(seq uint64, v []byte) {
	if v != nil && (len(v) > taskCacheMaxRecord || c.limit < 0) {
		v = nil
	}
	i, ok := c.find(seq)
	switch {
	case ok:
		e := &c.ents[i]
		c.bytes += len(v) - len(e.v)
		if (e.v == nil) != (v == nil) {
			c.dead += boolInt(v == nil) - boolInt(v != nil)
		}
		e.v = v
	case v == nil:
		return
	case len(c.ents)-i <= taskCacheShift: // the newest, or nearly
		c.ents = slices.Insert(c.ents, i, taskEnt{seq, v})
		c.bytes += len(v)
	default:
		return // far older than the newest: not cached (see above)
	}
	for c.bytes > c.limit && c.head < len(c.ents) {
		e := &c.ents[c.head]
		if e.v == nil {
			c.dead--
		}
		c.bytes -= len(e.v)
		*e = taskEnt{}
		c.head++
	}
	c.compact()
}

// compact drops the dead prefix of ents when it is most of the slice, and
// the deleted entries when they are most of the live part, so that neither
// grows with every task ever cached.
func (c *taskCache) compact() {
	live := len(c.ents) - c.head
	switch {
	case c.dead > 1024 && c.dead*2 > live:
		kept := c.ents[:0]
		for _, e := range c.ents[c.head:] {
			if e.v != nil {
				kept = append(kept, e)
			}
		}
		clear(c.ents[len(kept):])
		c.ents, c.head, c.dead = kept, 0, 0
	case c.head > 1024 && c.head*2 > len(c.ents):
		n := copy(c.ents, c.ents[c.head:])
		clear(c.ents[n:])
		c.ents, c.head = c.ents[:n], 0
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
