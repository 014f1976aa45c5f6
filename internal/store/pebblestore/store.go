// Package pebblestore is courier's embedded storage backend, on Pebble.
//
// Durability: every change is one Pebble batch applied under the store's
// mutex (so batches reach the WAL in the order their effects were decided)
// with Sync set, and the caller waits for the WAL fsync only after releasing
// the mutex. Concurrent callers therefore share fsyncs (Pebble's commit
// pipeline syncs the WAL once for every batch queued behind a sync), and
// since the WAL is synced in order, a caller's sync also covers every batch
// applied before its own — including sends whose messages it was handed.
//
// Queue workloads write every key and then delete it, which leaves LSM
// tombstones that a naive scan would walk. Each message state has its own
// keyspace (see keys.go), and for each scanned keyspace the store keeps a
// cursor: a key below which no live entry exists. Scans start at the cursor,
// so the tombstones of consumed messages are never walked again, however long
// the history. Memory holds per-queue config, counters and cursors only;
// bodies and indexes stay on disk.
//
// A failed write or fsync leaves memory and disk possibly apart, so the store
// then refuses all further work (Ready reports why) until it is reopened,
// which rebuilds memory from disk.
package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// Options configure the store. Zero values take the defaults named.
type Options struct {
	// Dir is the data directory; required.
	Dir string
	// FS is the filesystem; default the operating system's (vfs.Default).
	// Tests pass vfs.NewCrashableMem() to simulate power loss.
	FS vfs.FS
	// CacheBytes is Pebble's block cache size; default 64 MiB.
	CacheBytes int64
	// MemTableBytes is the size of a memtable, and so about how much WAL a
	// restart replays; default 64 MiB.
	MemTableBytes uint64
	// MinFreeBytes: sends are refused with store.ErrNoSpace when the disk
	// would have less than this free, so Pebble itself never meets a full
	// disk (it stops the process when it does). Default 256 MiB. Acks,
	// receives and deletes are never refused: they free space.
	MinFreeBytes uint64
	// FreeBytes reports the free space of Dir; default asks FS. Tests inject it.
	FreeBytes func() (uint64, error)
	// Logger receives Pebble's events worth knowing; default discards.
	Logger *slog.Logger
	// TaskCacheBytes bounds the memory of the cache of recently written task
	// records (taskcache.go); default 32 MiB; negative: no cache.
	TaskCacheBytes int64
	// SkipVerify skips reading every key at open to check the tables'
	// checksums (verify.go), for stores too large to read at each start.
	SkipVerify bool
}

// Store is the Pebble-backed store.Store.
type Store struct {
	db   *pebble.DB
	opts Options

	mu       sync.Mutex // guards every field below, and the order batches are applied in
	closed   bool
	broken   error // set by a failed write or sync; the store refuses work after it
	queues   map[string]*queue
	byID     map[uint32]*queue
	nextQID  uint32
	lastSeq  uint64 // the last seq handed out
	seqHigh  uint64 // persisted bound: every seq handed out is below it
	rnd      *rand.Rand
	watchers map[string]chan struct{}
	// claims are the receives waiting on each queue (handoff.go), guarded
	// by cmu, not mu: a Withdraw must not wait behind a stalled commit.
	// cmu is taken after mu when both are held, and never across a write.
	cmu    sync.Mutex
	claims map[string][]*claim
	// taskWatchers are woken at their task's next change, by seq.
	taskWatchers map[uint64]chan struct{}
	// hookWatch is closed when a webhook becomes due (see WatchWebhooks).
	hookWatch chan struct{}
	// tasks caches recently written task records (taskcache.go).
	tasks *taskCache
	// Store-wide cursors of the task indexes ('E', 'N'): no live key below.
	taskTTLCur, hookCur []byte
	ops                 sync.WaitGroup // operations between apply and sync; Close waits for them
	// memoN is the number of entries in all queues' lease memos.
	memoN int
	// scratch is reused, under mu, by every txn's encodings and regrouping:
	// a batch copies what it is given, so nothing outlives the call.
	scratch scratch

	dur      durability   // which applied batches are synced: reads wait for theirs
	syncReqs atomic.Int64 // syncSoon's requests not yet served (defersync.go)
	// health follows the engine's flushes and stalls (stall.go).
	health *engineHealth
	// down is what usable answers once it answers an error (set with mu
	// held, read without it, by Ready).
	down atomic.Pointer[error]
}

var (
	_ store.Store          = (*Store)(nil)
	_ store.WebhookWatcher = (*Store)(nil)
)

// Open opens (or creates) the store in o.Dir and rebuilds its in-memory state.
func Open(o Options) (*Store, error) {
	if o.Dir == "" {
		return nil, errors.New("pebblestore: Dir is required")
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = 64 << 20
	}
	if o.TaskCacheBytes == 0 {
		o.TaskCacheBytes = 32 << 20
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 256 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FreeBytes == nil {
		fs, dir := o.FS, o.Dir
		o.FreeBytes = func() (uint64, error) {
			u, err := fs.GetDiskUsage(dir)
			return u.AvailBytes, err
		}
	}
	warnNoCgo(o.Logger, withCgo)
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref()
	health := &engineHealth{}
	po := pebbleOptions(o, cache)
	el := health.listener(o.Logger)
	po.EventListener = &el
	db, err := openChecked(o, po)
	// The lock is refused with EAGAIN from another process, and with a
	// message of Pebble's own from this one (it keeps no sentinel for it).
	if err != nil && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) ||
		strings.Contains(err.Error(), "lock held by current process")) {
		return nil, fmt.Errorf("data directory %s is in use by another process (is another courier running on it?)", o.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("open pebble in %s: %w", o.Dir, err)
	}
	s := &Store{
		db: db, opts: o,
		queues: map[string]*queue{}, byID: map[uint32]*queue{},
		rnd:          rand.New(rand.NewChaCha8(seed())),
		watchers:     map[string]chan struct{}{},
		claims:       map[string][]*claim{},
		taskWatchers: map[uint64]chan struct{}{},
		tasks:        newTaskCache(o.TaskCacheBytes),
		health:       health,
	}
	s.dur.kick = s.syncSoon
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("load state from %s: %w", o.Dir, err)
	}
	return s, nil
}

// Close waits for operations in progress and closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	closed := store.ErrClosed
	s.down.Store(&closed)
	for name, ch := range s.watchers { // wake long-polls: they will see ErrClosed
		close(ch)
		delete(s.watchers, name)
	}
	if s.hookWatch != nil {
		close(s.hookWatch)
		s.hookWatch = nil
	}
	for seq, ch := range s.taskWatchers {
		close(ch)
		delete(s.taskWatchers, seq)
	}
	s.mu.Unlock()
	s.ops.Wait()
	// Closing syncs the log: batches applied unsynced (deferred) are
	// durable now, and a read waiting for one may answer.
	n := s.dur.mark()
	if err := s.db.Close(); err != nil {
		s.dur.noteFailed(fmt.Errorf("%w: %w", store.ErrClosed, err))
		return err
	}
	s.dur.noteSynced(n)
	return nil
}

// Ready reports whether the store can serve.
// It never takes the mutex, which a commit stalled by the engine may hold.
func (s *Store) Ready(ctx context.Context) error { return s.refused() }

// breakLocked marks the store failed for good with err (unless it is
// closed), and returns err. Requires mu.
func (s *Store) breakLocked(err error) error {
	s.broken = err
	if !s.closed {
		s.down.Store(&err)
	}
	return err
}

// usable reports why the store cannot work, or nil. Requires mu.
func (s *Store) usable() error {
	if s.closed {
		return store.ErrClosed
	}
	return s.broken
}

// Watch returns a channel closed at the next change that may make messages
// available in the queue.
func (s *Store) Watch(queue string) <-chan struct{} {
	if s.refused() != nil {
		return closedChan // the lease that follows answers why
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.watchers[queue]
	if !ok {
		ch = make(chan struct{})
		// Closed at once for a missing queue: the caller's lease will say it
		// is missing, and names that never become queues leave nothing here.
		if _, exists := s.queues[queue]; s.closed || !exists {
			close(ch)
			return ch
		}
		s.watchers[queue] = ch
	}
	return ch
}

// closedChan is a watch that fires at once.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// signal wakes the watchers of a queue. Requires mu.
func (s *Store) signal(name string) {
	if ch, ok := s.watchers[name]; ok {
		close(ch)
		delete(s.watchers, name)
	}
}

// pebbleOptions tunes Pebble for queue data: short-lived, point-read by key.
// Bloom filters on every level let a point read skip the files that cannot
// hold its key (without them, each read searches every L0 file). No block
// compression: most data is deleted before it reaches the lower levels, and
// decompression was a measured share of every read. Blocks of 32 KiB, not
// Pebble's 4: a backlog is read in key order, a block at a time, and each
// block not yet cached costs a read system call (costly on virtual
// machines); W2 and W4 ran 8-13% faster (docs/benchmarks-journal.md). A base level
// of 512 MiB, not Pebble's 64: a backlog written once and deleted in
// order gains nothing from the extra levels below a small base but their
// rewrites; fewer levels cut what a 10-million-message backlog's drain
// wrote by 9% and its CPU by 6% (docs/benchmarks-journal.md).
func pebbleOptions(o Options, cache *pebble.Cache) *pebble.Options {
	po := &pebble.Options{
		FS:                 newWALYieldFS(newWALFillFS(o.FS)),
		Cache:              cache,
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       o.MemTableBytes,
		LBaseMaxBytes:      512 << 20,
		Logger:             pebbleLogger{o.Logger},
		// Leases append operands to message and task records by Pebble's
		// merge (see leaseOp, taskLeaseOp): concatenation, which every
		// directory was made with.
		Merger: pebble.DefaultMerger,
	}
	po.Experimental.SpanPolicyFunc = tablesWithinTag
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].BlockSize = 32 << 10
		po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	return po
}

// tablesWithinTag ends each table a flush or compaction writes where the
// keyspace (tag, see keys.go) of its first key ends, so that no table
// spans two. Without it, a flush during a queue's drain wrote small tables
// from the deletes at the head of its records ('M') to those at the head
// of its ready index ('R'), bounds that took in every live record of the
// backlog between; a compaction that picked one pulled every table of the
// level within those bounds into it, and rewrote hundreds of MiB of live
// records one level down. With tables split by tag, a 10-million-message
// backlog's fill and drain took about a sixth less CPU (docs/benchmarks-journal.md).
// Only where tables end changes: keys, values and their order do not.
func tablesWithinTag(start []byte) (pebble.SpanPolicy, []byte, error) {
	if len(start) == 0 || start[0] == 0xff {
		return pebble.SpanPolicy{}, nil, nil // no tag after it to stop at
	}
	return pebble.SpanPolicy{}, []byte{start[0] + 1}, nil
}

// warnNoCgo warns when the binary was built without cgo (CGO_ENABLED=0, as
// static container builds often are): Pebble then allocates its memtables
// and block cache on the Go heap, which the collector must track and a
// fresh memtable zeroes, and a round trip costs about a third more CPU
// (docs/benchmarks-journal.md). Nothing else changes, durability included.
func warnNoCgo(l *slog.Logger, cgo bool) {
	if !cgo {
		l.Warn("this courier was built without cgo (CGO_ENABLED=0): the store runs, slower; build with cgo for full speed")
	}
}

// pebbleLogger sends Pebble's own log lines to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	panic(fmt.Sprintf(format, args...)) // Pebble's contract: Fatalf does not return
}
