package pebblestore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/courierhq/courier/internal/store"
)

// load rebuilds the in-memory state from disk: the id bound, every queue's
// record and counters. Cursors start at the beginning of their keyspaces.
func (s *Store) load() error {
	if err := s.checkFormat(); err != nil {
		return err
	}
	v, closer, err := s.db.Get(metaKey("seqhigh"))
	switch {
	case err == nil:
		if len(v) == 8 {
			s.seqHigh = binary.BigEndian.Uint64(v)
		}
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return err
	}
	s.lastSeq = s.seqHigh
	if v, closer, err := s.db.Get(metaKey("nextqid")); err == nil {
		if len(v) == 4 {
			s.nextQID = binary.BigEndian.Uint32(v)
		}
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagQueue}, UpperBound: []byte{tagQueue + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		q := &queue{name: string(it.Key()[1:])}
		if err := json.Unmarshal(it.Value(), &q.rec); err != nil {
			return fmt.Errorf("%w: queue record %q: %v", errCorrupt, q.name, err)
		}
		cv, closer, err := s.db.Get(statsKey(q.rec.ID))
		if err != nil {
			return fmt.Errorf("counters of queue %q: %w", q.name, err)
		}
		q.c, err = decodeCounters(cv)
		closer.Close()
		if err != nil {
			return fmt.Errorf("%w: counters of queue %q", errCorrupt, q.name)
		}
		if err := s.checkTimedCounts(q); err != nil {
			return fmt.Errorf("counters of queue %q: %w", q.name, err)
		}
		s.queues[q.name], s.byID[q.rec.ID] = q, q
		s.nextQID = max(s.nextQID, q.rec.ID+1)
	}
	s.nextQID = max(s.nextQID, 1)
	return it.Error()
}

// checkTimedCounts makes sure that q's counters of delayed and in-flight
// messages agree with their index keys on whether there are any: nextDue
// and the due scans skip a keyspace whose counter is zero, so a counter
// wrongly zero would leave a delayed message unpromoted, or a lease
// unexpired, for good. Every change writes the counters in the batch of
// the keys they count, so they agree unless some bug broke them; then the
// keys are counted again, the counter corrected in memory (and written
// with the queue's next change), and the disagreement logged.
func (s *Store) checkTimedCounts(q *queue) error {
	for _, d := range []struct {
		tag  byte
		n    *int64
		what string
	}{{tagDelayed, &q.c.delayed, "delayed"}, {tagLease, &q.c.inFlight, "in flight"}} {
		pre := qprefix(d.tag, q.rec.ID)
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: pre, UpperBound: prefixEnd(pre)})
		if err != nil {
			return err
		}
		ok := it.First()
		if ok == (*d.n > 0) {
			if err := it.Close(); err != nil {
				return err
			}
			continue
		}
		n := int64(0)
		for ; ok; ok = it.Next() {
			n++
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return err
		}
		s.opts.Logger.Error("a queue's counter disagreed with its index; corrected from the index",
			"queue", q.name, "messages", d.what, "stored", *d.n, "counted", n)
		*d.n = n
	}
	return nil
}

// formatVersion names the layout of keys and records this build reads and
// writes. A data directory of another layout is refused, never misread.
// Format 3 added lease operands to message records (see leaseOp), format 4
// to task records (taskLeaseOp).
const formatVersion = "4"

// upgradableFormats are the formats this build upgrades in place: each is
// format 4 without some operands, so the upgrade is the new stamp alone.
// Written before any operand, it keeps builds that read only an older
// format (and would take an operand for a corrupt record) out of the
// directory.
var upgradableFormats = []string{"2", "3"}

// checkFormat stamps a new data directory with formatVersion, upgrades one
// of upgradableFormats, and refuses one stamped otherwise, or holding data
// but no stamp.
func (s *Store) checkFormat() error {
	v, closer, err := s.db.Get(metaKey("format"))
	if err == nil {
		got := string(v)
		closer.Close()
		switch {
		case got == formatVersion:
			return nil
		case slices.Contains(upgradableFormats, got):
			s.opts.Logger.Warn("upgrading the data directory's format; builds that read only the old one will refuse it",
				"from", got, "to", formatVersion)
			return s.db.Set(metaKey("format"), []byte(formatVersion), pebble.Sync)
		}
		return fmt.Errorf("data format %q, this build reads %q", got, formatVersion)
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	empty := !it.First()
	if err := it.Close(); err != nil {
		return err
	}
	if !empty {
		return errors.New("data written by an unversioned development build; this build cannot read it")
	}
	return s.db.Set(metaKey("format"), []byte(formatVersion), pebble.Sync)
}

// CreateQueue creates a queue.
func (s *Store) CreateQueue(ctx context.Context, p *store.CreateQueueParams) (store.Queue, error) {
	err := s.update(p.Now, func(t *txn) error {
		if _, ok := t.queue(p.Name); ok {
			return store.ErrQueueExists
		}
		t.createQueue(p.Name, p.Config)
		return nil
	})
	if err != nil {
		return store.Queue{}, err
	}
	return s.GetQueue(ctx, &store.GetQueueParams{Name: p.Name, Now: p.Now})
}

// createQueue adds a queue in this txn.
func (t *txn) createQueue(name string, cfg store.QueueConfig) *qwork {
	id := t.nextQID() // queues created earlier in this txn hold ids too
	q := &queue{name: name}
	return t.addWork(&qwork{q: q, rec: queueRecord{ID: id, Config: cfg, CreatedAt: t.now}, created: true, touched: true})
}

// UpdateQueue replaces a queue's config.
func (s *Store) UpdateQueue(ctx context.Context, p *store.UpdateQueueParams) (store.Queue, error) {
	err := s.updateQueue(p.Now, p.Name, func(t *txn, w *qwork) error {
		w.rec.Config, w.touched = p.Config, true
		return nil
	})
	if err != nil {
		return store.Queue{}, err
	}
	return s.GetQueue(ctx, &store.GetQueueParams{Name: p.Name, Now: p.Now})
}

// SetPaused pauses or resumes a queue.
func (s *Store) SetPaused(ctx context.Context, p *store.SetPausedParams) (store.Queue, error) {
	err := s.updateQueue(p.Now, p.Name, func(t *txn, w *qwork) error {
		w.rec.Paused, w.touched = p.Paused, true
		if !p.Paused {
			t.wake = append(t.wake, p.Name)
		}
		return nil
	})
	if err != nil {
		return store.Queue{}, err
	}
	return s.GetQueue(ctx, &store.GetQueueParams{Name: p.Name, Now: p.Now})
}

// GetQueue returns a queue and its stats.
func (s *Store) GetQueue(ctx context.Context, p *store.GetQueueParams) (store.Queue, error) {
	var mark uint64
	q, err := s.getQueue(p, &mark)
	if err := s.dur.wait(ctx, mark); err != nil {
		return store.Queue{}, err
	}
	return q, err
}

func (s *Store) getQueue(p *store.GetQueueParams, mark *uint64) (store.Queue, error) {
	if err := s.refused(); err != nil {
		return store.Queue{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	*mark = s.dur.mark()
	if err := s.usable(); err != nil {
		return store.Queue{}, err
	}
	q, ok := s.queues[p.Name]
	if !ok {
		return store.Queue{}, store.ErrQueueNotFound
	}
	if p.ConfigOnly {
		// The broker's look before a write, which that write's own sync
		// covers: waiting here would make each send wait for the fsync
		// before it, and group commit would group nothing.
		*mark = 0
		return store.Queue{Name: q.name, Config: q.rec.Config, Paused: q.rec.Paused, CreatedAt: q.rec.CreatedAt}, nil
	}
	return s.snapshot(q, p.Now)
}

// ListQueues returns every queue by name.
func (s *Store) ListQueues(ctx context.Context, p *store.ListQueuesParams) ([]store.Queue, error) {
	var mark uint64
	qs, err := s.listQueues(p, &mark)
	if err := s.dur.wait(ctx, mark); err != nil {
		return nil, err
	}
	return qs, err
}

func (s *Store) listQueues(p *store.ListQueuesParams, mark *uint64) ([]store.Queue, error) {
	if err := s.refused(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	*mark = s.dur.mark()
	if err := s.usable(); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(s.queues))
	for name := range s.queues {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]store.Queue, 0, len(names))
	for _, name := range names {
		q, err := s.snapshot(s.queues[name], p.Now)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

// snapshot renders a queue with its counters as of now. Requires mu.
func (s *Store) snapshot(q *queue, now time.Time) (store.Queue, error) {
	oldest, err := s.oldestReady(q)
	if err != nil {
		return store.Queue{}, err
	}
	due, dueOldest, err := s.dueDelayed(q, now)
	if err != nil {
		return store.Queue{}, err
	}
	if due > 0 && (oldest.IsZero() || dueOldest.Before(oldest)) {
		oldest = dueOldest
	}
	return store.Queue{
		Name: q.name, Config: q.rec.Config, Paused: q.rec.Paused, CreatedAt: q.rec.CreatedAt,
		Stats: store.Stats{
			Ready: q.c.ready + due, Delayed: q.c.delayed - due, InFlight: q.c.inFlight, Dead: q.c.dead,
			SentTotal: q.c.sent, AckedTotal: q.c.acked, OldestReady: oldest,
		},
	}, nil
}

// dueDelayedScan bounds the records dueDelayed reads.
const dueDelayedScan = 10000

// dueDelayed counts the delayed messages whose time has come but that no
// Lease or Tick has promoted yet (the maintenance loop does so at once, so
// there are few), and the oldest send time among them: stats are as of now.
func (s *Store) dueDelayed(q *queue, now time.Time) (int64, time.Time, error) {
	if q.c.delayed == 0 {
		return 0, time.Time{}, nil
	}
	lo := q.cur.delayed
	if lo == nil {
		lo = qprefix(tagDelayed, q.rec.ID)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: timeUpTo(tagDelayed, q.rec.ID, now)})
	if err != nil {
		return 0, time.Time{}, err
	}
	defer it.Close()
	var n int64
	var oldest time.Time
	// Bounded: this runs under the store's mutex. Past the bound the count
	// is low until the maintenance loop, which runs at once, catches up.
	for ok := it.First(); ok && n < dueDelayedScan; ok = it.Next() {
		seq, err := keySeq(it.Key())
		if err != nil {
			return 0, time.Time{}, err
		}
		v, closer, err := s.db.Get(seqKey(tagMsg, q.rec.ID, seq))
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("delayed message record: %w", err)
		}
		m, err := decodeMsg(v)
		closer.Close()
		if err != nil {
			return 0, time.Time{}, err
		}
		if n++; oldest.IsZero() || m.sentAt.Before(oldest) {
			oldest = m.sentAt
		}
	}
	return n, oldest, it.Error()
}

// oldestReady finds the send time of the oldest ready message: the first
// entry of each priority level present, jumping from level to level.
func (s *Store) oldestReady(q *queue) (time.Time, error) {
	if q.c.ready == 0 {
		return time.Time{}, nil
	}
	lo := q.cur.ready
	if lo == nil {
		lo = qprefix(tagReady, q.rec.ID)
	}
	hi := prefixEnd(qprefix(tagReady, q.rec.ID))
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return time.Time{}, err
	}
	defer it.Close()
	var best uint64
	found := false
	for ok := it.First(); ok; {
		k := it.Key()
		seq, err := keySeq(k)
		if err != nil || len(k) != 5+1+8 {
			return time.Time{}, orCorrupt(err, "ready key")
		}
		if !found || seq < best {
			best, found = seq, true
		}
		if k[5] == 0xff {
			break
		}
		ok = it.SeekGE(append(qprefix(tagReady, q.rec.ID), k[5]+1))
	}
	if err := it.Error(); err != nil {
		return time.Time{}, err
	}
	if older, ok, err := s.oldestWaiting(q, best, found); err != nil {
		return time.Time{}, err
	} else if ok {
		best, found = older, true
	}
	if !found {
		return time.Time{}, nil
	}
	v, closer, err := s.db.Get(seqKey(tagMsg, q.rec.ID, best))
	if err != nil {
		return time.Time{}, fmt.Errorf("oldest ready message: %w", err)
	}
	defer closer.Close()
	m, err := decodeMsg(v)
	return m.sentAt, err
}

// oldestWaitingScan bounds the records oldestWaiting reads.
const oldestWaitingScan = 10000

// oldestWaiting looks for a group member waiting behind its head that is
// older than the oldest ready message (below seq, if bounded). Records are
// in send order, so the first ready or waiting one found is the oldest; the
// scan reads only messages older than the answer (in flight or delayed).
func (s *Store) oldestWaiting(q *queue, below uint64, bounded bool) (uint64, bool, error) {
	pre := qprefix(tagMsg, q.rec.ID)
	lo, hi := q.cur.retain, prefixEnd(pre)
	if lo == nil {
		lo = pre
	}
	if bounded {
		hi = seqKey(tagMsg, q.rec.ID, below)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, false, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok && n < oldestWaitingScan; ok = it.Next() {
		n++
		m, err := decodeMsg(it.Value())
		if err != nil {
			return 0, false, err
		}
		if m.state == stWaiting || m.state == stReady {
			seq, err := keySeq(it.Key())
			return seq, err == nil, err
		}
	}
	return 0, false, it.Error()
}

// DeleteQueue deletes a queue and all its keys.
func (s *Store) DeleteQueue(ctx context.Context, p *store.DeleteQueueParams) error {
	return s.updateQueue(p.Now, p.Name, func(t *txn, w *qwork) error {
		if err := t.forgetMessages(w); err != nil {
			return err
		}
		for _, tag := range queueTags {
			pre := qprefix(tag, w.rec.ID)
			t.b.DeleteRange(pre, prefixEnd(pre), nil)
		}
		t.b.Delete(queueKey(p.Name), nil)
		w.deleted = true
		t.wake = append(t.wake, p.Name)
		return nil
	})
}

// forgetMessages settles what the messages of w (about to be deleted) mean
// elsewhere: the dead counters of the queues they were dead-lettered from,
// and their tasks, which end cancelled. It reads w's messages only when one
// of them can matter.
func (t *txn) forgetMessages(w *qwork) error {
	if w.c.tasks == 0 && t.s.deadSources(w.rec.ID) == 0 {
		return nil
	}
	pre := qprefix(tagMsg, w.rec.ID)
	it, err := t.iter(pre, prefixEnd(pre))
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		m, err := decodeMsg(it.Value())
		if err != nil {
			return err
		}
		if src, ok := t.queueByID(m.deadFrom); m.deadFrom != 0 && ok && src.c.dead > 0 {
			src.c.dead--
			src.touched = true
		}
		seq, err := keySeq(it.Key())
		if err != nil {
			return err
		}
		if err := t.finishTask(seq, &m, store.TaskCancelled, nil, "queue deleted"); err != nil {
			return err
		}
	}
	return it.Error()
}

// deadSources counts the queues whose dead-letter queue is the queue id.
// Requires mu.
func (s *Store) deadSources(id uint32) int {
	dlq, ok := s.byID[id]
	if !ok {
		return 0
	}
	n := 0
	for _, q := range s.queues {
		if q.rec.Config.DeadLetterQueue == dlq.name || q.c.dead > 0 {
			n++
		}
	}
	return n
}
