package pgstore_test

import (
	"context"
	"testing"

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
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pgstore.Options{}) })
}
