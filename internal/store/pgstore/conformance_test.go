package pgstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/internal/pgtest"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pgstore"
	"github.com/courierhq/courier/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.WithServer(m)) }

// open opens a store on a fresh schema of the test server, migrated, closed
// when t ends. The test server runs with synchronous_commit off (see
// pgtest), which the store refuses unless allowed.
func open(t *testing.T, o pgstore.Options) *pgstore.Store {
	t.Helper()
	if o.DSN == "" {
		o.DSN = pgtest.Schema(t)
	}
	o.Migrate, o.AllowUnsafeDurability = true, true
	if o.MaxConns == 0 {
		o.MaxConns = 4
	}
	s, err := pgstore.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the storage port's conformance suite: every
// subtest gets a store on a schema of its own.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pgstore.Options{}) })
}

// TestConformanceRotating runs the suite on a store whose rotator runs
// before every verb that touches messages, rotating whenever the current
// partition holds anything: the suite's messages are moved to the
// long-lived partition and their partitions truncated between its steps,
// and it sees no difference.
func TestConformanceRotating(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return &rotating{Store: open(t, pgstore.Options{RotateBytes: 1}), t: t}
	})
}

// rotating is a store that runs its rotator before each verb.
type rotating struct {
	*pgstore.Store
	t    *testing.T
	runs atomic.Int64
}

func (r *rotating) rotate(ctx context.Context) {
	// Each run is 2 minutes after the last: a refused lock's backoff has
	// always passed.
	now := time.Unix(0, 0).Add(time.Duration(r.runs.Add(1)) * 2 * time.Minute)
	if _, err := pgstore.Rotate(ctx, r.Store, now); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
		r.t.Errorf("Rotate: %v", err)
	}
}

func (r *rotating) Send(ctx context.Context, p *store.SendParams) ([]store.SendResult, error) {
	r.rotate(ctx)
	return r.Store.Send(ctx, p)
}

func (r *rotating) Lease(ctx context.Context, p *store.LeaseParams) (store.LeaseResult, error) {
	r.rotate(ctx)
	return r.Store.Lease(ctx, p)
}

func (r *rotating) Ack(ctx context.Context, p *store.AckParams) ([]error, error) {
	r.rotate(ctx)
	return r.Store.Ack(ctx, p)
}

func (r *rotating) Nack(ctx context.Context, p *store.NackParams) (store.NackResult, error) {
	r.rotate(ctx)
	return r.Store.Nack(ctx, p)
}

func (r *rotating) Extend(ctx context.Context, p *store.ExtendParams) (time.Time, error) {
	r.rotate(ctx)
	return r.Store.Extend(ctx, p)
}

func (r *rotating) Redrive(ctx context.Context, p *store.RedriveParams) (int, error) {
	r.rotate(ctx)
	return r.Store.Redrive(ctx, p)
}

func (r *rotating) PurgeQueue(ctx context.Context, p *store.PurgeQueueParams) (int, error) {
	r.rotate(ctx)
	return r.Store.PurgeQueue(ctx, p)
}

func (r *rotating) CancelTask(ctx context.Context, p *store.CancelTaskParams) (store.Task, error) {
	r.rotate(ctx)
	return r.Store.CancelTask(ctx, p)
}

func (r *rotating) Progress(ctx context.Context, p *store.ProgressParams) (store.Task, error) {
	r.rotate(ctx)
	return r.Store.Progress(ctx, p)
}

func (r *rotating) Tick(ctx context.Context, p *store.TickParams) (store.TickResult, error) {
	r.rotate(ctx)
	return r.Store.Tick(ctx, p)
}
