package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/courierhq/courier/internal/gcfloor"
	"github.com/courierhq/courier/internal/server"
)

const serveLong = `Run a courier server on its embedded, durable store, or as one node of a
cluster over PostgreSQL.

Data lives in --data (created if missing); the HTTP API listens on --addr,
which is loopback-only by default. Every 2xx answer is given only after the
change is fsynced (or committed in PostgreSQL).

With --store postgres://USER:PASSWORD@HOST/DB, the server keeps everything
in that database instead, and any number of servers can share it. The
database's schema must be migrated first (courier migrate), or pass
--migrate. A PostgreSQL server with fsync or synchronous_commit off can
lose acknowledged messages: courier refuses it unless
--allow-unsafe-durability is given. SIGINT or SIGTERM stop the server cleanly: it stops
accepting requests, answers open long-polls, waits up to --shutdown-timeout
for requests in flight, and closes the store (giving up 5s later, with exit
status 1, if a write stalled by a full disk holds it).

Webhooks of tasks reach public addresses only: loopback, private, link-local
(cloud metadata) and other reserved addresses are refused, also when a name
resolves to them, unless --webhook-allow names a CIDR that contains them.

Flags can also be set by environment variables: COURIER_ADDR, COURIER_DATA,
COURIER_LOG_LEVEL, COURIER_LOG_FORMAT, COURIER_STORE.`

// serveFlags are the settings of `courier serve`.
type serveFlags struct {
	addr, data          string
	store               string
	migrate, unsafe     bool
	logLevel, logFormat string
	maxRequest          string
	minFree             string
	cache               string
	taskCache           string
	noAutoCreate        bool
	shutdownTimeout     time.Duration
	webhookAllow        []string
	corsOrigins         []string
	pprof               string
	gcFloor             string
	// PostgreSQL settings; empty or 0: the store's defaults.
	pgMaxConns                  int
	pgRotateSize, pgRotateEvery string
}

// newServeCmd returns `courier serve`.
func newServeCmd(e *env) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a courier server on its embedded store",
		Long:  serveLong,
		Args:  argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(e.stderr)
			if err != nil {
				return usageError{err}
			}
			if cfg.Store == "" {
				e.openingStore()
			}
			floor, err := parseBytes("--gc-heap-floor", f.gcFloor)
			if err != nil {
				return usageError{err}
			}
			stopGC, _ := gcfloor.Start(floor, e.getenv)
			defer stopGC()
			var prof *pprofServer
			if f.pprof != "" {
				if prof, err = startPprof(f.pprof); err != nil {
					return err
				}
				defer prof.stop()
			}
			return serve(cmd.Context(), e.stdout, cfg, f.shutdownTimeout, prof)
		},
	}
	env := func(name, def string) string {
		if v := e.getenv(name); v != "" {
			return v
		}
		return def
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", env("COURIER_ADDR", "127.0.0.1:7070"), "HOST:PORT to listen on (env COURIER_ADDR)")
	fl.StringVar(&f.data, "data", env("COURIER_DATA", "./courier-data"), "data directory (env COURIER_DATA)")
	fl.StringVar(&f.store, "store", env("COURIER_STORE", ""), "postgres:// URL of a database to keep everything in, shared by any number of servers; empty: the embedded store in --data (env COURIER_STORE)")
	fl.BoolVar(&f.migrate, "migrate", false, "with --store: apply missing schema migrations at start")
	fl.BoolVar(&f.unsafe, "allow-unsafe-durability", false, "with --store: accept a PostgreSQL server with fsync or synchronous_commit off (it can lose acknowledged messages)")
	fl.StringVar(&f.logLevel, "log-level", env("COURIER_LOG_LEVEL", "info"), "debug, info, warn or error (env COURIER_LOG_LEVEL)")
	fl.StringVar(&f.logFormat, "log-format", env("COURIER_LOG_FORMAT", "text"), "text or json (env COURIER_LOG_FORMAT)")
	fl.StringVar(&f.maxRequest, "max-request-bytes", "32MiB", "largest request body accepted (413 beyond)")
	fl.StringVar(&f.minFree, "min-free-disk", "256MiB", "disk space kept free: sends get 503 below it")
	fl.StringVar(&f.cache, "cache", "64MiB", "store block cache size")
	fl.StringVar(&f.taskCache, "task-cache", "32MiB", "memory for the embedded store's cache of recently written task records")
	fl.BoolVar(&f.noAutoCreate, "no-auto-create", false, "answer 404 to sends and receives on missing queues instead of creating them")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a stop waits for requests in flight")
	fl.StringSliceVar(&f.webhookAllow, "webhook-allow", nil, "CIDR (like 10.0.0.0/8) or address that webhooks may reach although private or loopback; repeatable")
	fl.IntVar(&f.pgMaxConns, "pg-max-conns", 0, "with --store: connections in each node's pool (default 16)")
	fl.StringVar(&f.pgRotateSize, "pg-rotate-size", "", "with --store: size at which the messages table's current partition is rotated (default 64MiB; 0: never by size)")
	fl.StringVar(&f.pgRotateEvery, "pg-rotate-every", "", "with --store: rotate the current partition also after this long (default 10m; 0: never by time)")
	fl.StringSliceVar(&f.corsOrigins, "cors-origin", nil, "web origin (like https://app.example.com, or *) whose pages may call the API from a browser; repeatable")
	fl.StringVar(&f.gcFloor, "gc-heap-floor", gcFloorDefault, gcFloorUsage)
	fl.StringVar(&f.pprof, "pprof", "", "loopback HOST:PORT (like 127.0.0.1:6060) to serve Go's profiles on, under /debug/pprof/; off by default")
	return cmd
}

// The garbage collector's floor (package gcfloor), a flag of serve and
// bench; gcFloorDefault is gcfloor.DefaultFloor (bench_test.go checks).
const (
	gcFloorDefault = "64MiB"
	gcFloorUsage   = "let Go's heap grow by at least this much garbage between collections, so that a small live heap is not collected several times a second (0: none, GOGC alone; ignored when GOGC is set in the environment)"
)

// config turns the flags into a server config, or says which flag is wrong.
func (f *serveFlags) config(logOut io.Writer) (server.Config, error) {
	logger, err := newLogger(logOut, f.logLevel, f.logFormat)
	if err != nil {
		return server.Config{}, err
	}
	maxReq, err := parseBytes("--max-request-bytes", f.maxRequest)
	if err != nil {
		return server.Config{}, err
	}
	minFree, err := parseBytes("--min-free-disk", f.minFree)
	if err != nil {
		return server.Config{}, err
	}
	cache, err := parseBytes("--cache", f.cache)
	if err != nil {
		return server.Config{}, err
	}
	taskCache, err := parseBytes("--task-cache", f.taskCache)
	if err != nil {
		return server.Config{}, err
	}
	allow, err := parsePrefixes("--webhook-allow", f.webhookAllow)
	if err != nil {
		return server.Config{}, err
	}
	if f.shutdownTimeout <= 0 {
		return server.Config{}, fmt.Errorf("--shutdown-timeout must be positive, got %v", f.shutdownTimeout)
	}
	if f.pprof != "" {
		if err := checkLoopback(f.pprof); err != nil {
			return server.Config{}, err
		}
	}
	if f.store != "" && !server.IsPostgres(f.store) {
		return server.Config{}, fmt.Errorf("--store %q: want a postgres:// URL", redact(f.store))
	}
	pg, err := f.pgConfig()
	if err != nil {
		return server.Config{}, err
	}
	cfg := server.Config{Addr: f.addr, DataDir: f.data, Store: f.store, Migrate: f.migrate, PG: pg,
		AllowUnsafeDurability: f.unsafe, MaxRequestBytes: int64(maxReq),
		MinFreeBytes: minFree, CacheBytes: int64(cache), TaskCacheBytes: int64(taskCache), NoAutoCreate: f.noAutoCreate, Logger: logger,
		CORSOrigins: f.corsOrigins}
	cfg.WebhookAllow = allow
	return cfg, cfg.WithDefaults().Validate()
}

// pgConfig reads the --pg-* flags; they need --store.
func (f *serveFlags) pgConfig() (server.PGConfig, error) {
	var pg server.PGConfig
	if f.pgMaxConns == 0 && f.pgRotateSize == "" && f.pgRotateEvery == "" {
		return pg, nil
	}
	if f.store == "" {
		return pg, errors.New("--pg-max-conns, --pg-rotate-size and --pg-rotate-every need --store postgres://…")
	}
	if f.pgMaxConns < 0 || f.pgMaxConns > 10000 {
		return pg, fmt.Errorf("--pg-max-conns %d: want 1 to 10000", f.pgMaxConns)
	}
	pg.MaxConns = int32(f.pgMaxConns)
	if f.pgRotateSize != "" {
		n, err := parseBytes("--pg-rotate-size", f.pgRotateSize)
		switch {
		case err != nil:
			return pg, err
		case n == 0:
			pg.RotateBytes = -1
		case n < 1<<20:
			return pg, fmt.Errorf("--pg-rotate-size %s: want 0 (never) or at least 1MiB", f.pgRotateSize)
		case n > 1<<50:
			return pg, fmt.Errorf("--pg-rotate-size %s: too large", f.pgRotateSize)
		default:
			pg.RotateBytes = int64(n)
		}
	}
	if f.pgRotateEvery != "" {
		d, err := time.ParseDuration(f.pgRotateEvery)
		switch {
		case err != nil:
			return pg, fmt.Errorf("--pg-rotate-every %q: want a duration like 10m", f.pgRotateEvery)
		case d == 0:
			pg.RotateEvery = -1
		case d < time.Second:
			return pg, fmt.Errorf("--pg-rotate-every %s: want 0 (never) or at least 1s", f.pgRotateEvery)
		default:
			pg.RotateEvery = d
		}
	}
	return pg, nil
}

// serve runs a server until ctx ends, then stops it within timeout. prof,
// when not nil, is the profile listener, named after the server's address.
func serve(ctx context.Context, out io.Writer, cfg server.Config, timeout time.Duration, prof *pprofServer) error {
	s, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if cfg.Store != "" {
		fmt.Fprintf(out, "courier listening on %s\nstore %s\n", s.URL(), redact(cfg.Store))
	} else {
		fmt.Fprintf(out, "courier listening on %s\ndata in %s\n", s.URL(), s.DataDir())
	}
	if prof != nil {
		fmt.Fprintf(out, "profiles on http://%s/debug/pprof/\n", prof.addr)
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	fmt.Fprintln(out, "courier stopped")
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// parseBytes reads a size like 1048576, 512KiB, 64MiB or 2GiB.
func parseBytes(flag, s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}}
	num, mult := s, uint64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(num), 10, 64)
	if err != nil || n > (1<<62)/mult {
		return 0, fmt.Errorf("%s %q: want a size like 1048576, 512KiB, 64MiB or 2GiB", flag, s)
	}
	return n * mult, nil
}

// parsePrefixes reads CIDRs like 10.0.0.0/8 or fd00::/8; a bare address
// stands for itself alone (/32 or /128).
func parsePrefixes(flag string, ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%s %q: want a CIDR like 10.0.0.0/8 or an IP address", flag, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}
