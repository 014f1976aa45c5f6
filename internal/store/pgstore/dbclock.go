package pgstore

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/courierhq/courier/internal/clock"
)

// DBClock is a clock that reads the database server's time: the local
// clock plus the offset to the server's clock_timestamp(), measured by a
// round trip (biased low: see measure) and remeasured every refresh. Every
// node of a cluster stamps its verbs' Now with it, so that lease expiry is
// decided by one clock, the database's, to within a round trip, however far
// the nodes' own clocks drift.
//
// The alternative, reading now() inside each statement and ignoring the
// verbs' Now, was rejected: the storage port passes time in so that both
// backends share one conformance suite driven by a fake clock.
type DBClock struct {
	s      *Store
	base   clock.Clock
	offset atomic.Int64 // nanoseconds to add to base.Now()
	cancel context.CancelFunc
	done   chan struct{}
}

var _ clock.Clock = (*DBClock)(nil)

// NewDBClock measures the offset once, then keeps it fresh every refresh
// until Stop. base is the local clock (clock.Real() outside tests).
func NewDBClock(ctx context.Context, s *Store, base clock.Clock, refresh time.Duration) (*DBClock, error) {
	c := &DBClock{s: s, base: base, done: make(chan struct{})}
	if err := c.measure(ctx); err != nil {
		return nil, err
	}
	ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go c.run(ctx, refresh)
	return c, nil
}

func (c *DBClock) measure(ctx context.Context) error {
	var db time.Time
	if err := c.s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&db); err != nil {
		return err
	}
	after := c.base.Now()
	// The server read its clock before the local instant after, so the
	// offset (db minus that instant) is at least db-after. That lower bound
	// is taken, so that Now is never ahead of the database's clock: a lease then expires
	// up to a round trip late, never early, and the expiry a consumer is
	// told is never later than the one the store enforces.
	c.offset.Store(int64(db.Sub(after)))
	return nil
}

func (c *DBClock) run(ctx context.Context, every time.Duration) {
	defer close(c.done)
	for {
		t := c.base.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		if err := c.measure(ctx); err != nil && ctx.Err() == nil {
			c.s.log.Warn("database clock: keeping the last offset", "err", err)
		}
	}
}

// Offset is the database's clock minus the local one, as last measured.
func (c *DBClock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Now is the local time shifted to the database's clock.
func (c *DBClock) Now() time.Time { return c.base.Now().Add(c.Offset()).UTC() }

// NewTimer waits on the local clock: durations are the same on both.
func (c *DBClock) NewTimer(d time.Duration) clock.Timer { return c.base.NewTimer(d) }

// Stop ends the refreshing.
func (c *DBClock) Stop() {
	c.cancel()
	<-c.done
}
