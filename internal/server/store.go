package server

import (
	"context"
	"errors"
	"time"

	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pebblestore"
	"github.com/courierhq/courier/internal/store/pgstore"
)

// stopper is a background component the server stops after the store's users.
type stopper interface{ Stop() }

// dbClockRefresh is how often a node remeasures its offset to the
// database's clock.
const dbClockRefresh = 30 * time.Second

// openStore opens the store cfg names and, when cfg has no clock, sets the
// one the server runs on: the wall clock for the embedded store, the
// database's for PostgreSQL (returned too, to be stopped with the store).
func openStore(ctx context.Context, cfg *Config) (store.Store, stopper, error) {
	if cfg.Store == "" {
		if cfg.Clock == nil {
			cfg.Clock = clock.Real()
		}
		st, err := pebblestore.Open(pebblestore.Options{Dir: cfg.DataDir, CacheBytes: cfg.CacheBytes, TaskCacheBytes: cfg.TaskCacheBytes,
			MinFreeBytes: cfg.MinFreeBytes, FreeBytes: cfg.FreeBytes, FS: cfg.FS, Logger: cfg.Logger})
		return st, nil, err
	}
	// Every node notifies the others of its changes, and one leader does
	// the cluster-wide maintenance.
	st, err := pgstore.Open(ctx, pgstore.Options{DSN: cfg.Store, Migrate: cfg.Migrate,
		AllowUnsafeDurability: cfg.AllowUnsafeDurability, Notify: true, Elect: true, Logger: cfg.Logger,
		MaxConns: cfg.PG.MaxConns, RotateBytes: cfg.PG.RotateBytes, RotateEvery: cfg.PG.RotateEvery})
	if err != nil {
		return nil, nil, err
	}
	if cfg.Clock != nil {
		return st, nil, nil
	}
	clk, err := pgstore.NewDBClock(ctx, st, clock.Real(), dbClockRefresh)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	cfg.Clock = clk
	return st, clk, nil
}

func closeStore(st store.Store, clk stopper) error {
	if clk != nil {
		clk.Stop()
	}
	return errors.Join(st.Close())
}
