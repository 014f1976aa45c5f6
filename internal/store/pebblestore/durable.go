package pebblestore

import (
	"context"
	"sync"
	"sync/atomic"
)

// Reads answer durable state only. A write is applied (visible to reads)
// before its fsync, which it then waits for without the commit lock, so
// that many writers share one fsync. A read in that window would see a
// change that a crash could still undo: a task's result shown to its
// requester, or posted to its webhook, and then gone. So each read notes
// how many batches were applied when it read, and answers only once that
// many are known synced. The WAL is synced in the order batches were
// applied, so when batch n is synced every batch before it is too.
//
// When nothing is in flight the wait is nothing; under load it is at most
// the fsync already under way, which the read shares. A verb refused on
// what it read waits the same way (txn.go, refuse). One answer is exempt:
// a receive that finds nothing and carries no acks, which promises nothing
// (store.LeaseParams.NoReadWait).
type durability struct {
	applied atomic.Uint64 // batches applied; incremented under Store.mu, in apply order

	mu     sync.Mutex    // guards synced, err, advance
	synced uint64        // every batch up to this one is known synced
	err    error         // set when a sync failed: nothing more will be synced
	change chan struct{} // closed and replaced when synced or err changes

	// deferred is the last batch applied without a sync request (a
	// SyncDeferrer lease); kick asks for a sync of the log. A wait for a
	// batch up to deferred kicks, since no sync may be coming for it.
	deferred atomic.Uint64
	kick     func()

	onWait func() // tests: called when a read starts waiting for a sync
}

// noteApplied records a batch applied; it returns the batch's number, for
// noteSynced. Call it under Store.mu, right after the apply.
func (d *durability) noteApplied() uint64 { return d.applied.Add(1) }

// noteSynced records that batch n (and so every batch before it) is synced.
func (d *durability) noteSynced(n uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// After a failed sync nothing is known durable, whatever a later sync
	// (or Close's) says: the failed write may never reach the disk.
	if d.err == nil && n > d.synced {
		d.synced = n
		d.broadcast()
	}
}

// noteFailed records that a sync failed: reads waiting for it fail too.
func (d *durability) noteFailed(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		d.err = err
		d.broadcast()
	}
}

func (d *durability) broadcast() {
	if d.change != nil {
		close(d.change)
		d.change = nil
	}
}

// mark is the number of batches applied now: a read taken now may have
// seen up to this batch. Call it under Store.mu, after the read.
func (d *durability) mark() uint64 { return d.applied.Load() }

// wait waits until batch n is synced, the store fails, or ctx ends.
func (d *durability) wait(ctx context.Context, n uint64) error {
	kicked := false
	for {
		d.mu.Lock()
		if d.synced >= n {
			d.mu.Unlock()
			return nil
		}
		if d.err != nil {
			err := d.err
			d.mu.Unlock()
			return err
		}
		if d.change == nil {
			d.change = make(chan struct{})
		}
		ch := d.change
		d.mu.Unlock()
		if !kicked && n <= d.deferred.Load() && d.kick != nil {
			kicked = true
			d.kick()
		}
		if d.onWait != nil {
			d.onWait()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
