package pebblestore

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/trace"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/courierhq/courier/internal/store"
)

// queue is the in-memory state of one queue. Guarded by Store.mu.
type queue struct {
	name string
	rec  queueRecord
	c    counters
	cur  cursors
	// memo is the lease memo of its in-flight messages (leasememo.go).
	memo map[uint64]memoEntry
}

// cursors hold, for each scanned keyspace, a key below which no live entry of
// the queue exists (nil: the start of the keyspace). They only ever move up
// past keys the store itself deleted, and down when it inserts below them.
type cursors struct {
	ready, delayed, lease, retain, dedup []byte
	// liveDelayed and liveLease are the key nextDue last found live at the
	// delayed and lease cursors, until that key is deleted (unindex): while
	// the cursor still holds it, it is the keyspace's first live key, and
	// nextDue reads the time from it instead of opening an iterator (two
	// per receive, each a seek in every memtable and level).
	liveDelayed, liveLease []byte
}

// timed returns, for w's time-ordered keyspace tag (tagDelayed or
// tagLease), its cursor, its live marker and how many live keys it holds.
func (w *qwork) timed(tag byte) (cur, live *[]byte, n int64) {
	if tag == tagDelayed {
		return &w.cur.delayed, &w.cur.liveDelayed, w.c.delayed
	}
	return &w.cur.lease, &w.cur.liveLease, w.c.inFlight
}

// forget drops the live marker that k was, if it was one: k is deleted.
func (c *cursors) forget(st msgState, k []byte) {
	var live *[]byte
	switch st {
	case stDelayed:
		live = &c.liveDelayed
	case stInFlight:
		live = &c.liveLease
	default:
		return
	}
	if *live != nil && string(*live) == string(k) {
		*live = nil
	}
}

// lower moves *cur down to (a copy of) k if k sorts before it.
func lower(cur *[]byte, k []byte) {
	if *cur != nil && string(k) < string(*cur) {
		*cur = bytes.Clone(k) // k may live in a txn's key slab
	}
}

// advance moves *cur up to k after a scan consumed everything below k, unless
// an insert during the scan lowered it (then *cur no longer equals *pos).
// *pos tracks the value the scan itself last set.
func advance(cur, pos *[]byte, k []byte) {
	if string(*cur) == string(*pos) {
		*cur = k
		*pos = k
	}
}

// qwork is a transaction's working copy of a queue's mutable state.
type qwork struct {
	q       *queue
	rec     queueRecord
	c       counters
	cur     cursors
	created bool
	deleted bool
	touched bool // counters or record changed: persist them
}

// txn is one atomic change: an indexed batch (reads see its own writes) and
// the working copies of the queues it touches. Built under Store.mu.
type txn struct {
	s       *Store
	b       *pebble.Batch
	now     time.Time
	work    map[*queue]*qwork // indexes order once it is long (addWork)
	order   []*qwork          // in first-touch order, for deterministic writes
	seqHigh uint64
	wake    []string // queues whose watchers to signal on apply
	// wakeTasks are tasks whose watchers to signal on apply.
	wakeTasks []uint64
	// hookDue: a webhook became due; its watchers are woken after the sync.
	hookDue bool
	// taskCur, hookCur are pending values of the store's task-index cursors.
	taskCur, hookCur globalCursor
	// taskWrites are the task records this txn wrote (nil: deleted), and
	// taskReads those it read from Pebble: both go to the task cache when
	// the batch applies.
	taskWrites map[uint64][]byte
	// keys is room for the keys of the txn's reads and writes.
	keys      keySlab
	taskReads []cachedRead
	// handed are the waiting receives this txn leased messages for (handoff.go).
	handed []handed
	// leaseDropped counts the messages past retention its leases dropped
	// as they met them (Lease reports them as due work).
	leaseDropped int
	// changedMsgs, when not nil, collects the seqs whose records the txn
	// wrote or deleted (see Ack).
	changedMsgs map[uint64]struct{}
	// memo are the changes of the lease memo to make on apply
	// (leasememo.go); memoDel indexes the first memoDelN of them, when
	// there are many.
	memo     []memoOp
	memoDel  map[uint64]struct{}
	memoDelN int
	memoAdds int // adds among memo
	// deferSync asks run to apply the batch without a sync request when
	// nothing else needs the sync (defersync.go; runOpts.syncMark).
	deferSync bool
}

// update runs fn as one transaction as of now: fn builds the batch under the
// store's mutex, the batch is applied in order, and the caller then waits for
// its fsync without the mutex, sharing it with concurrent callers. If fn
// fails nothing is applied or changed.
func (s *Store) update(now time.Time, fn func(t *txn) error) error {
	return s.run(now, runOpts{}, fn)
}

// updateKeep is update, except that when fn returns keep the batch is
// applied all the same and keep is returned after its sync: for an answer
// that reports an outcome the store has durably recorded (a cancelled task).
func (s *Store) updateKeep(now time.Time, keep error, fn func(t *txn) error) error {
	return s.run(now, runOpts{keep: keep}, fn)
}

// updateQueue runs fn as a transaction on the existing queue named name.
func (s *Store) updateQueue(now time.Time, name string, fn func(t *txn, w *qwork) error) error {
	return s.update(now, inQueue(name, fn))
}

func inQueue(name string, fn func(t *txn, w *qwork) error) func(t *txn) error {
	return func(t *txn) error {
		w, ok := t.queue(name)
		if !ok {
			return store.ErrQueueNotFound
		}
		return fn(t, w)
	}
}

// updateQueueOrRead is updateQueue for a verb that often changes nothing —
// a receive that finds no message, as most long-poll wake-ups of competing
// consumers do. Then nothing is written, so no fsync is spent on it: the
// answer is a read, and waits, as reads do (durable.go), only until the
// batches it may have seen are synced — unless noReadWait (see
// store.LeaseParams.NoReadWait). syncMark is runOpts.syncMark.
func (s *Store) updateQueueOrRead(ctx context.Context, now time.Time, name string, syncMark *uint64, noReadWait bool, fn func(t *txn, w *qwork) error) error {
	var mark uint64
	read := false
	err := s.run(now, runOpts{skipEmpty: true, readMark: &mark, read: &read, syncMark: syncMark}, inQueue(name, fn))
	if err == nil && read && !noReadWait {
		return s.dur.wait(ctx, mark)
	}
	return err
}

// updateIfChanged is update, except that a transaction that changed nothing
// is not written at all (background work that found nothing to do).
func (s *Store) updateIfChanged(now time.Time, fn func(t *txn) error) error {
	return s.run(now, runOpts{skipEmpty: true}, fn)
}

// runOpts are the variants of run.
type runOpts struct {
	// skipEmpty: a txn that changed nothing is not written; *read (if not
	// nil) is then set, and *readMark to the batches it may have seen.
	skipEmpty bool
	readMark  *uint64
	read      *bool
	// keep: fn's error that still applies the batch (see updateKeep).
	keep error
	// syncMark, if not nil, is set to the batch's number when fn asked to
	// defer its sync (txn.deferSync) and run did.
	syncMark *uint64
}

func (s *Store) run(now time.Time, o runOpts, fn func(t *txn) error) error {
	if err := s.refused(); err != nil {
		return err // at once, not queued behind a stalled commit
	}
	s.mu.Lock()
	// Regions of an execution trace (bench --trace, serve --pprof): the
	// time under the mutex, and the fsync wait after it.
	commit := trace.StartRegion(context.Background(), "store commit")
	held := true
	unlock := func() { held = false; s.mu.Unlock(); commit.End() }
	var t *txn
	defer func() {
		if held {
			if t != nil { // the claims it leased for are not left waiting on it
				t.dropClaims(fmt.Errorf("%w: the change that leased for this receive stopped halfway", store.ErrFailed))
			}
			s.failLocked(recover())
		}
	}()
	if err := s.usable(); err != nil {
		unlock()
		return err
	}
	t = &txn{s: s, b: s.db.NewIndexedBatch(), now: now}
	result := fn(t)
	if result == nil || result == o.keep {
		if err := t.handOff(); err != nil {
			result = err
		}
	}
	if result != nil && (o.keep == nil || result != o.keep) {
		mark := s.dur.mark()
		unlock()
		t.b.Close()
		return s.refuse(result, mark)
	}
	if o.skipEmpty && t.b.Empty() && !t.changed() && len(t.wakeTasks) == 0 {
		t.keepReadState()
		if o.read != nil {
			*o.read, *o.readMark = true, s.dur.mark()
		}
		unlock()
		t.b.Close()
		return nil
	}
	// A deferred batch hands no claim a lease and makes no webhook due:
	// those are answered only after a sync, which it would not have.
	deferred := t.deferSync && len(t.handed) == 0 && !t.hookDue
	err := t.apply(!deferred)
	if err != nil {
		broken := s.breakLocked(fmt.Errorf("%w: write failed, the store must be reopened: %w", store.ErrFailed, err))
		unlock()
		t.dropClaims(broken)
		return broken
	}
	t.takeClaims()
	n := s.dur.noteApplied()
	if deferred {
		s.dur.deferred.Store(n)
		if o.syncMark != nil {
			*o.syncMark = n
		}
		unlock()
		t.b.Close()
		return result
	}
	s.ops.Add(1)
	unlock()
	defer s.ops.Done()
	return t.awaitSync(n, result)
}

// refuse answers err, the reason a verb changed nothing, once the batches
// it may have seen (up to mark) are synced: a refusal (a lease expired, a
// queue not found) is an answer about state, and a crash could still undo
// a change it was decided on — another request's ack whose fsync is under
// way, or one a waiting receive deferred (defersync.go). If that sync
// fails, the failure is the answer. Like a write's wait for its own sync,
// the wait does not end with the caller's context: it lasts one fsync.
func (s *Store) refuse(err error, mark uint64) error {
	if werr := s.dur.wait(context.Background(), mark); werr != nil {
		return werr
	}
	return err
}

// awaitSync waits for the sync of t's batch, number n, then answers the
// claims it leased for and wakes the webhook sender if it made one due. It
// returns result, or why the sync failed.
func (t *txn) awaitSync(n uint64, result error) error {
	s := t.s
	fsync := trace.StartRegion(context.Background(), "store fsync")
	err := t.b.SyncWait()
	fsync.End()
	t.b.Close()
	if err != nil {
		broken := s.syncFailed(err)
		t.settleClaims(broken)
		return broken
	}
	s.dur.noteSynced(n)
	t.settleClaims(nil)
	if t.hookDue {
		s.wakeWebhooks()
	}
	return result
}

// syncFailed marks the store broken by a failed fsync, and fails the reads
// waiting for one; it returns the error to answer.
func (s *Store) syncFailed(err error) error {
	broken := fmt.Errorf("%w: fsync failed, the store must be reopened: %w", store.ErrFailed, err)
	s.mu.Lock()
	s.breakLocked(broken)
	s.mu.Unlock()
	s.dur.noteFailed(broken)
	return broken
}

// failLocked ends a panic (or runtime.Goexit, r nil) that left run holding
// mu, a bug in a verb or in Pebble's batch apply: the store is marked failed
// and mu released, so that every later call answers ErrFailed instead of
// blocking on mu for good (net/http recovers a handler's panic, and the
// server would otherwise hang with the lock held); then the panic goes on.
func (s *Store) failLocked(r any) {
	s.breakLocked(fmt.Errorf("%w: a verb stopped halfway (panic: %v), the store must be reopened", store.ErrFailed, r))
	s.mu.Unlock()
	if r != nil {
		panic(r)
	}
}

// keepReadState keeps what a txn that wrote nothing learnt by reading: the
// cursors its scans moved past tombstones (without them, every empty
// receive after a drain would walk those tombstones again) and the task
// records it read. Requires mu.
func (t *txn) keepReadState() {
	for _, w := range t.order {
		w.q.cur = w.cur
	}
	t.cacheTasks()
}

// apply writes the working state into the batch, applies the batch without
// waiting for its sync (sync: with a sync requested, which the caller then
// waits for), and makes the working state the store's. Requires mu.
func (t *txn) apply(sync bool) error {
	for _, w := range t.order {
		switch {
		case w.deleted:
			continue
		case w.touched || w.created:
			// The record (config, paused) changes rarely; the counters
			// with nearly every batch. Rewriting the record only when it
			// changed spares every send, lease and ack a JSON encoding
			// and a write.
			if w.created || w.rec != w.q.rec {
				t.b.Set(queueKey(w.q.name), w.rec.encode(), nil)
			}
			t.b.Set(statsKey(w.rec.ID), w.c.encode(), nil)
		}
	}
	if next := t.nextQID(); next > t.s.nextQID {
		// Persisted, so ids of deleted queues are never handed out again:
		// their dead letters elsewhere name their source queue by id.
		t.b.Set(metaKey("nextqid"), binary.BigEndian.AppendUint32(nil, next), nil)
	}
	if t.seqHigh > t.s.seqHigh {
		t.b.Set(metaKey("seqhigh"), binary.BigEndian.AppendUint64(nil, t.seqHigh), nil)
	}
	if t.b.Empty() { // every change writes at least one key, so its sync covers earlier batches
		t.b.Set(metaKey("touch"), nil, nil)
	}
	if b := regroup(t.s.db, t.b, &t.s.scratch); b != t.b {
		t.b.Close()
		t.b = b
	}
	if sync {
		if err := t.s.db.ApplyNoSyncWait(t.b, pebble.Sync); err != nil {
			return err
		}
	} else if err := t.s.db.Apply(t.b, pebble.NoSync); err != nil {
		return err
	}
	s := t.s
	t.applyMemo()
	for _, w := range t.order {
		switch {
		case w.deleted:
			delete(s.queues, w.q.name)
			delete(s.byID, w.rec.ID)
			s.memoN -= len(w.q.memo) // the memo goes with the queue
			w.q.memo = nil
		default:
			w.q.rec, w.q.c, w.q.cur = w.rec, w.c, w.cur
			if w.created {
				s.queues[w.q.name], s.byID[w.rec.ID] = w.q, w.q
				s.nextQID = max(s.nextQID, w.rec.ID+1)
			}
		}
	}
	s.seqHigh = max(s.seqHigh, t.seqHigh)
	t.cacheTasks()
	for _, name := range t.wake {
		s.signal(name)
	}
	for _, seq := range t.wakeTasks {
		if ch, ok := s.taskWatchers[seq]; ok {
			close(ch)
			delete(s.taskWatchers, seq)
		}
	}
	if t.taskCur.set {
		s.taskTTLCur = t.taskCur.key
	}
	if t.hookCur.set {
		s.hookCur = t.hookCur.key
	}
	return nil
}

// globalCursor returns the store-wide cursor of a task index. Requires mu.
func (s *Store) globalCursor(tag byte) []byte {
	if tag == tagTaskTTL {
		return s.taskTTLCur
	}
	return s.hookCur
}

// nextQID is the queue id after every queue created in this txn.
func (t *txn) nextQID() uint32 {
	next := t.s.nextQID
	for _, w := range t.order {
		if w.created {
			next = max(next, w.rec.ID+1)
		}
	}
	return next
}

// changed reports whether the txn changed any queue's state.
func (t *txn) changed() bool {
	for _, w := range t.order {
		if w.touched || w.created || w.deleted {
			return true
		}
	}
	return false
}

// w returns the working copy of q in this transaction.
func (t *txn) w(q *queue) *qwork {
	if t.work != nil {
		if w, ok := t.work[q]; ok {
			return w
		}
	} else {
		for _, w := range t.order {
			if w.q == q {
				return w
			}
		}
	}
	return t.addWork(&qwork{q: q, rec: q.rec, c: q.c, cur: q.cur})
}

// workMapMin is how many queues a txn touches before it indexes them in a
// map: most touch one, and a map for each txn was 2% of the bytes a
// message's round trip allocated; a Tick over thousands of queues needs
// the index.
const workMapMin = 8

// addWork adds w, the working copy of a queue the txn had not touched.
func (t *txn) addWork(w *qwork) *qwork {
	t.order = append(t.order, w)
	switch {
	case t.work != nil:
		t.work[w.q] = w
	case len(t.order) > workMapMin:
		t.work = make(map[*queue]*qwork, 2*len(t.order))
		for _, o := range t.order {
			t.work[o.q] = o
		}
	}
	return w
}

// queue finds a live queue by name, seeing creations and deletions of this txn.
func (t *txn) queue(name string) (*qwork, bool) {
	for _, w := range t.order {
		if w.q.name == name {
			return w, !w.deleted
		}
	}
	q, ok := t.s.queues[name]
	if !ok {
		return nil, false
	}
	return t.w(q), true
}

// queueByID finds a live queue by id, seeing this txn's changes.
func (t *txn) queueByID(id uint32) (*qwork, bool) {
	for _, w := range t.order {
		if w.rec.ID == id {
			return w, !w.deleted
		}
	}
	q, ok := t.s.byID[id]
	if !ok {
		return nil, false
	}
	return t.w(q), true
}

// nextSeq hands out the next message seq: the send time in nanoseconds,
// bumped above the last one so seqs are unique and increasing. The bound
// persisted in the batch keeps them increasing across restarts even if the
// clock goes back.
func (t *txn) nextSeq() uint64 {
	s := t.s
	n := max(unixNano(t.now), s.lastSeq+1)
	s.lastSeq = n // a discarded txn only leaves a gap
	if n >= max(s.seqHigh, t.seqHigh) {
		t.seqHigh = n + uint64(10*time.Second)
	}
	return n
}

// get reads a key through the batch; ok is false when it is absent.
func (t *txn) get(k []byte) (v []byte, ok bool, err error) {
	val, closer, err := t.b.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v = append([]byte(nil), val...)
	return v, true, closer.Close()
}

// iter opens an iterator over [lo, hi) that sees the batch's writes.
func (t *txn) iter(lo, hi []byte) (*pebble.Iterator, error) {
	return t.b.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
}

func metaKey(name string) []byte { return append([]byte{tagMeta}, name...) }

func seed() [32]byte {
	var b [32]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return b
}

// wakeWebhooks wakes WatchWebhooks callers.
func (s *Store) wakeWebhooks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hookWatch != nil {
		close(s.hookWatch)
		s.hookWatch = nil
	}
}
