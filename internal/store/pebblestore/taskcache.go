package pebblestore

// The task-record cache. A task's record is read back and rewritten at each
// step of its life (leased, progress, acked with its result, read by the
// requester), and every such read was a Pebble point read under the store's
// mutex — once the record had left the memtable, a seek through the
// sstables' indexes, about a third of the mutex's time in a task burn-down.
// The cache holds the encoded records most recently written, so that these
// reads are a map lookup while a task is young.
//
// It is a write-through copy of what the applied batches hold, changed only
// in txn.apply (under the mutex, after the batch is applied), so it never
// shows a change the store did not make. A txn's own writes are kept apart
// until then (txn.taskWrites) and seen first by its reads. Memory is bounded
// by a byte budget: the oldest insertions are dropped first, whatever their
// state; a miss just reads Pebble.
//
// Rejected: caching decoded records (callers mutate what they get, so each
// read would need a deep copy anyway, and the encoded form is smaller), and
// an LRU (a task's reads follow its writes, which insertion order already
// tracks well enough without touching a list on every hit).

const (
	// taskCacheMaxRecord: larger records (big results) are not cached, so a
	// few of them cannot push out thousands of small ones.
	taskCacheMaxRecord = 64 << 10
)

// taskCache maps task seqs to encoded records. Guarded by Store.mu.
type taskCache struct {
	recs  map[uint64][]byte
	order []uint64 // seqs in insertion order (may name evicted or deleted seqs); a queue
	head  int      // order[head:] is the live part of the queue
	bytes int      // sum of len(recs[seq])
	limit int      // the budget of bytes; < 0: cache nothing
}

func newTaskCache(limit int64) *taskCache {
	return &taskCache{recs: map[uint64][]byte{}, limit: int(limit)}
}

// get returns the cached encoded record of seq.
func (c *taskCache) get(seq uint64) ([]byte, bool) {
	v, ok := c.recs[seq]
	return v, ok
}

// set caches v as seq's record; v == nil removes it.
func (c *taskCache) set(seq uint64, v []byte) {
	old, had := c.recs[seq]
	if had {
		c.bytes -= len(old)
		delete(c.recs, seq)
	}
	if v == nil || len(v) > taskCacheMaxRecord || c.limit < 0 {
		return
	}
	c.recs[seq] = v
	c.bytes += len(v)
	if !had {
		c.order = append(c.order, seq)
	}
	for c.bytes > c.limit && c.head < len(c.order) {
		s := c.order[c.head]
		c.head++
		if r, ok := c.recs[s]; ok {
			c.bytes -= len(r)
			delete(c.recs, s)
		}
	}
	// Compact the queue when its dead prefix is most of it, so that the
	// slice does not grow with every task ever cached.
	if c.head > 1024 && c.head*2 > len(c.order) {
		c.order = append(c.order[:0], c.order[c.head:]...)
		c.head = 0
	}
	if len(c.order)-c.head > 4*len(c.recs)+1024 {
		c.prune()
	}
}

// prune drops from the queue the seqs no longer cached (deleted records),
// which would otherwise pile up when tasks expire faster than the budget
// turns over.
func (c *taskCache) prune() {
	live := c.order[:0]
	for _, s := range c.order[c.head:] {
		if _, ok := c.recs[s]; ok {
			live = append(live, s)
		}
	}
	c.order, c.head = live, 0
}
