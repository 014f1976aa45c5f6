package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/courierhq/courier/internal/gcfloor"
	"github.com/courierhq/courier/internal/server"
)

// stopTimeout bounds the stop of an in-process server after a run.
const stopTimeout = 30 * time.Second

// target is the server a run measures, and how to describe it.
type target struct {
	kind       string // pebble, postgres or url
	url        string
	durability string
	notes      map[string]any // for the Result's extra

	srv       *server.Server // nil with a URL
	dataDir   string         // of the embedded store; "" otherwise
	removeDir bool           // the directory is ours, temporary
	stopGC    func()         // ends the in-process server's GC floor
}

// startTarget starts the in-process server t asks for, or names the
// external one.
func startTarget(ctx context.Context, t Target) (*target, error) {
	if t.URL != "" {
		return &target{kind: "url", url: t.URL,
			durability: "every 2xx durable as the server promises (fsynced or committed); not verifiable from the client",
			notes: map[string]any{
				"resources": "client only: cpu_seconds and peak_rss_bytes are this load generator's, not the server's; disk_bytes unknown (0)",
				"disk":      "unknown",
			}}, nil
	}
	tg := &target{notes: map[string]any{}}
	cfg := server.Config{Addr: "127.0.0.1:0"}
	if t.Store != "" {
		tg.kind = "postgres"
		tg.durability = "every 2xx committed in PostgreSQL"
		if t.AllowUnsafeDurability {
			tg.durability = "NOT DURABLE if the database runs with fsync or synchronous_commit off (--allow-unsafe-durability)"
		}
		tg.notes["resources"] = "the courier node and the client share this process; the database's CPU, memory and disk are not counted"
		tg.notes["disk"] = "unknown (PostgreSQL)"
		cfg.Store, cfg.Migrate, cfg.AllowUnsafeDurability = t.Store, true, t.AllowUnsafeDurability
	} else {
		tg.kind = "pebble"
		tg.durability = "every 2xx fsynced"
		tg.notes["resources"] = "server and client share this process: cpu_seconds and peak_rss_bytes count both"
		tg.dataDir = t.DataDir
		if tg.dataDir == "" {
			dir, err := os.MkdirTemp("", "courier-bench-")
			if err != nil {
				return nil, fmt.Errorf("bench: temporary data directory: %w", err)
			}
			tg.dataDir, tg.removeDir = dir, true
			tg.notes["data_dir_removed"] = true
		}
		tg.notes["data_dir"] = tg.dataDir
		cfg.DataDir = tg.dataDir
		tg.notes["store_cache_bytes"] = cfg.WithDefaults().CacheBytes
	}
	tg.startGCFloor(t)
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		tg.stopGC()
		tg.removeTemp()
		return nil, fmt.Errorf("bench: start server: %w", err)
	}
	tg.srv, tg.url = srv, srv.URL()
	return tg, nil
}

// startGCFloor tunes the collector as `courier serve` would for the
// in-process server, and notes what it did.
func (t *target) startGCFloor(spec Target) {
	getenv := spec.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	stop, on := gcfloor.Start(spec.GCHeapFloor, getenv)
	t.stopGC = stop
	t.notes["gc_heap_floor_bytes"] = uint64(0)
	if on {
		t.notes["gc_heap_floor_bytes"] = spec.GCHeapFloor
	}
	if v := getenv("GOGC"); v != "" {
		t.notes["gogc"] = v
	}
}

// diskBytes is the data directory's size now; 0 when there is none to
// measure.
func (t *target) diskBytes() (int64, error) {
	if t.dataDir == "" {
		return 0, nil
	}
	return dirBytes(t.dataDir)
}

// stop stops the in-process server and removes its temporary directory.
// It stops even when ctx has ended (an interrupted run cleans up too).
func (t *target) stop(ctx context.Context) error {
	var err error
	if t.stopGC != nil {
		defer t.stopGC()
	}
	if t.srv != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		if serr := t.srv.Stop(ctx); serr != nil {
			err = fmt.Errorf("bench: stop server: %w", serr)
		}
	}
	return errors.Join(err, t.removeTemp())
}

func (t *target) removeTemp() error {
	if !t.removeDir {
		return nil
	}
	if err := os.RemoveAll(t.dataDir); err != nil {
		return fmt.Errorf("bench: remove %s: %w", t.dataDir, err)
	}
	return nil
}
