// Package server wires courier together: config → store → broker →
// maintenance → HTTP listener, and takes it apart again in reverse order on
// Stop, so that every request that was answered 2xx is durable and nothing
// is left running.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/gcfloor"
	"github.com/courierhq/courier/internal/httpapi"
	"github.com/courierhq/courier/internal/maintenance"
	"github.com/courierhq/courier/internal/metrics"
	"github.com/courierhq/courier/internal/netguard"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/webhook"
)

// GCPercent is the garbage collector's target the courier binary sets when
// the GOGC environment variable is not (a process-wide setting, so main
// makes it, not Start). The server's live heap is small and it allocates
// fast (requests of a thousand messages), so at Go's default of 100 it
// collected so often that a batched round trip ran 25–30% slower than at
// 400, for about 25% more peak memory (docs/configuration.md).
const GCPercent = 400

// TuneGC sets the garbage collector's target to GCPercent unless GOGC is
// set, and returns a func that puts back what was there. The courier
// binary calls it first thing; benchmarks call it so that their figures
// are the shipped configuration's.
func TuneGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(GCPercent)
	return func() { debug.SetGCPercent(old) }
}

// TuneGCAsServe is TuneGC and the collection floor `courier serve` keeps
// by default (gcfloor.DefaultFloor): Go benchmarks of a server call it, so
// that their figures are the shipped server's.
func TuneGCAsServe() (restore func()) {
	untune := TuneGC() // not restore: the closure below would call itself
	stop, _ := gcfloor.Start(gcfloor.DefaultFloor, os.Getenv)
	return func() { stop(); untune() }
}

// Config configures a server. Zero values take the defaults named.
type Config struct {
	// Addr is the listening address; default 127.0.0.1:7070. Port 0 picks one.
	Addr string
	// DataDir holds the embedded store; default ./courier-data. Unused with
	// a PostgreSQL Store.
	DataDir string
	// Store is "" for the embedded store in DataDir, or a PostgreSQL URL
	// (postgres://… or postgresql://…): the server is then one node of a
	// cluster over that database (see docs/operations.md).
	Store string
	// Migrate applies missing migrations of the PostgreSQL schema at start
	// (safe with several nodes starting at once); default false: a node
	// refuses an outdated schema and `courier migrate` must run first.
	Migrate bool
	// AllowUnsafeDurability accepts a PostgreSQL server with fsync or
	// synchronous_commit off, which can lose acknowledged messages; default
	// false: start fails.
	AllowUnsafeDurability bool
	// PG tunes the PostgreSQL store; zero values take its defaults. Only
	// with a PostgreSQL Store.
	PG PGConfig
	// PollEvery bounds how long a long-poll waits without looking again,
	// in case a wake-up from another node was lost; default 1s with a
	// PostgreSQL Store, none with the embedded one (its wake-ups are exact).
	PollEvery time.Duration
	// MaxRequestBytes limits a request body (413 beyond); default 32 MiB.
	MaxRequestBytes int64
	// NoAutoCreate answers 404 for sends and receives on missing queues
	// instead of creating them.
	NoAutoCreate bool
	// MinFreeBytes of disk are kept free: sends get 503 below; default 256 MiB.
	MinFreeBytes uint64
	// CacheBytes is the store's block cache; default 64 MiB.
	CacheBytes int64
	// TaskCacheBytes bounds the embedded store's cache of recently written
	// task records; default 32 MiB.
	TaskCacheBytes int64
	// Logger receives the server's logs; default discards.
	Logger *slog.Logger
	// Clock tells time; default the wall clock, or with a PostgreSQL Store
	// the database's (pgstore.DBClock), so that every node of a cluster
	// decides lease expiry by one clock. Tests inject a fake.
	Clock clock.Clock
	// FreeBytes reports the data directory's free disk space; default asks
	// the filesystem. Tests inject it to simulate a filling disk.
	FreeBytes func() (uint64, error)
	// FS is the filesystem the store lives on; default the operating
	// system's. Tests pass a small one (pebblestore/quotafs) to fill it.
	FS vfs.FS
	// WebhookAllow lists the prefixes that webhooks may reach although
	// netguard denies them (loopback, private, link-local …); default none:
	// public addresses only.
	WebhookAllow []netip.Prefix
	// CORSOrigins are the web origins whose pages may call the API from a
	// browser ("https://app.example.com", or "*" for any); default none:
	// no CORS headers.
	CORSOrigins []string
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:7070"
	}
	if c.DataDir == "" {
		c.DataDir = "courier-data"
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = 32 << 20
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = 256 << 20
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = 64 << 20
	}
	if c.TaskCacheBytes == 0 {
		c.TaskCacheBytes = 32 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Store != "" && c.PollEvery == 0 {
		c.PollEvery = time.Second
	}
	return c
}

// IsPostgres reports whether dsn names a PostgreSQL store.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Validate names the first invalid field.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("addr %q: want HOST:PORT", c.Addr)
	}
	if c.MaxRequestBytes < 1<<10 {
		return fmt.Errorf("max request bytes %d: want at least 1024", c.MaxRequestBytes)
	}
	if c.Store != "" && !IsPostgres(c.Store) {
		return errors.New("store: want empty (embedded) or a postgres:// URL")
	}
	if c.PG != (PGConfig{}) && c.Store == "" {
		return errors.New("postgres settings: only with a PostgreSQL store")
	}
	if c.PG.MaxConns < 0 {
		return fmt.Errorf("postgres max conns %d: want 0 (default) or more", c.PG.MaxConns)
	}
	if c.PollEvery < 0 {
		return fmt.Errorf("poll every %v: want 0 or more", c.PollEvery)
	}
	if c.CacheBytes < 0 {
		return fmt.Errorf("cache bytes %d: want 0 or more", c.CacheBytes)
	}
	if c.TaskCacheBytes < 0 {
		return fmt.Errorf("task cache bytes %d: want 0 or more", c.TaskCacheBytes)
	}
	for _, o := range c.CORSOrigins {
		if err := httpapi.CheckOrigin(o); err != nil {
			return fmt.Errorf("cors origin %q: %w", o, err)
		}
	}
	for _, p := range c.WebhookAllow {
		if !p.IsValid() {
			return fmt.Errorf("webhook allow %v: want a CIDR prefix", p)
		}
	}
	return nil
}

// PGConfig tunes a PostgreSQL store (see pgstore.Options).
type PGConfig struct {
	// MaxConns is each node's pool of connections; default 16.
	MaxConns int32
	// RotateBytes is the size at which the leader rotates the messages
	// table's current partition; default 64 MiB; negative: never by size.
	RotateBytes int64
	// RotateEvery rotates also after this long; default 10m; negative:
	// never by time.
	RotateEvery time.Duration
}

// Server is a running courier server.
type Server struct {
	cfg    Config
	st     store.Store
	clk    stopper // the database clock, or nil
	loop   *maintenance.Loop
	hooks  *webhook.Dispatcher
	http   *http.Server
	ln     net.Listener
	cancel context.CancelFunc // ends long-polls on Stop
	served chan error

	stopOnce sync.Once
	stopErr  error
	// closed gets the outcome of stopping the background work and closing
	// the store, which Stop may stop waiting for (see closeGrace).
	closed chan error
}

// ErrNotClosed: a stop gave up waiting for the store to close. Only a
// write the storage engine has stalled (a full disk) holds a close that
// long; every change already answered is durable, and the next start
// recovers the store as after a crash.
var ErrNotClosed = errors.New("the store did not close: a write is stalled (is the disk full?); stopped without a clean close, every acknowledged change is durable and the next start recovers")

// closeGrace is how long a stop waits past its deadline for the store to
// close. A clean close takes milliseconds. A var, for tests.
var closeGrace = 5 * time.Second

// Start opens the store, starts maintenance and begins serving HTTP. The
// server runs until Stop; ctx only bounds the start itself.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	guard, err := netguard.New(cfg.WebhookAllow)
	if err != nil {
		return nil, err
	}
	st, clk, err := openStore(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	mo := metrics.Options{Logger: cfg.Logger}
	if r, ok := st.(store.SyncReporter); ok {
		mo.WALSyncs = r.WALSyncs
	}
	m := metrics.New(mo)
	b := broker.New(st, broker.Options{Clock: cfg.Clock, Logger: cfg.Logger, NoAutoCreate: cfg.NoAutoCreate,
		CheckURL: guard.CheckURL, PollEvery: cfg.PollEvery, Observer: m})
	m.CollectQueues(b)
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		closeStore(st, clk)
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	base, cancelBase := context.WithCancelCause(context.Background())
	cancel := func() { cancelBase(httpapi.ErrServerStopping) } // long-polls answer what they have
	s := &Server{
		cfg: cfg, st: st, clk: clk, ln: ln, cancel: cancel, served: make(chan error, 1), closed: make(chan error, 1),
		loop:  maintenance.New(b, maintenance.Options{Clock: cfg.Clock, Logger: cfg.Logger}),
		hooks: webhook.New(b, webhook.Options{Guard: guard, Clock: cfg.Clock, Logger: cfg.Logger}),
		http: &http.Server{
			Handler: httpapi.New(httpapi.Options{Broker: b, Logger: cfg.Logger, MaxRequestBytes: cfg.MaxRequestBytes,
				CORSOrigins: cfg.CORSOrigins, Metrics: m}),
			ReadHeaderTimeout: 10 * time.Second,
			// Bounds a slow upload of a large body; answers (long-polls, event
			// streams) have no write timeout: their handlers bound them.
			ReadTimeout: 2 * time.Minute,
			IdleTimeout: 2 * time.Minute,
			BaseContext: func(net.Listener) context.Context { return base },
			ErrorLog:    slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		},
	}
	s.loop.Start()
	s.hooks.Start()
	go func() { s.served <- s.http.Serve(ln) }()
	return s, nil
}

// Addr is the address the server listens on (with the real port).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.Addr() }

// DataDir is where the store lives.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// Stop stops accepting requests, ends long-polls (they answer with what they
// have), waits for requests in flight until ctx ends, then stops maintenance
// and webhook deliveries and closes the store. Safe to call more than once.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.cancel()
		err := s.http.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, s.http.Close())
		}
		if serr := <-s.served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		s.stopErr = errors.Join(err, s.stopBackground(ctx))
	})
	return s.stopErr
}

// stopBackground stops maintenance and webhook deliveries and closes the
// store. Each waits for the store calls in flight, and a call the engine
// has stalled never returns: closeGrace past ctx's deadline (or, without
// one, past ctx's end) it gives up (ErrNotClosed), so that the process can
// exit — the close goes on in the background, and Closed tells when it is
// done.
func (s *Server) stopBackground(ctx context.Context) error {
	done := make(chan error, 1) // Stop's copy; s.closed has Closed's
	go func() {
		err := errors.Join(s.loop.Stop(ctx), s.hooks.Stop(ctx), closeStore(s.st, s.clk))
		done <- err
		s.closed <- err
	}()
	var giveUp <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok {
		t := time.NewTimer(time.Until(deadline) + closeGrace)
		defer t.Stop()
		giveUp = t.C
	} else {
		select {
		case err := <-done:
			return err
		case <-ctx.Done(): // never for a context that cannot end
		}
		t := time.NewTimer(closeGrace)
		defer t.Stop()
		giveUp = t.C
	}
	select {
	case err := <-done:
		return err
	case <-giveUp:
		select { // a close that ended just as the time did is a clean one
		case err := <-done:
			return err
		default:
			return ErrNotClosed
		}
	}
}

// WALSyncs reports the fsyncs of the store's write-ahead log so far; false
// when the store does not report them (PostgreSQL).
func (s *Server) WALSyncs() (store.SyncHistogram, bool) {
	r, ok := s.st.(store.SyncReporter)
	if !ok {
		return store.SyncHistogram{}, false
	}
	return r.WALSyncs(), true
}

// EngineWork reports the storage engine's flushes and compactions so far;
// false when the store does not report them (PostgreSQL).
func (s *Server) EngineWork() (store.EngineWork, bool) {
	r, ok := s.st.(store.EngineReporter)
	if !ok {
		return store.EngineWork{}, false
	}
	return r.EngineWork(), true
}

// Closed answers, once Stop has closed the store, with the outcome of the
// close: at once after Stop unless Stop gave up waiting for it
// (ErrNotClosed). It answers once: one receiver gets the outcome.
func (s *Server) Closed() <-chan error { return s.closed }
