// Package webhook delivers the webhooks of finished tasks: it asks the
// broker which are due, POSTs the task object to each notify URL, signed
// with the task's secret (see Sign and Verify), and records every attempt,
// retrying failures with exponential backoff for a bounded time.
//
// What is sent. A POST with Content-Type: application/json whose body is
// the task object of the HTTP API (id, queue, state, attempt, progress,
// result, error and timestamps; never the notify settings or the secret),
// and the headers Courier-Task-Id and, when the task has a secret,
// Courier-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>">. A receiver recomputes the HMAC over the raw body, compares
// in constant time and refuses a t older than a few minutes (Verify does
// all of it).
//
// Outcome of an attempt. A 2xx answer within Timeout (default 10s) is a
// delivery; anything else fails the attempt: another status (3xx included:
// redirects are never followed, as their target was never vetted), a
// network error, a timeout. A failed attempt is retried after 1s, 2s, 4s …
// capped at 10m, each shortened by up to 20% of jitter, until MaxAge
// (default 24h) after the task finished; then delivery stops, undelivered.
// The task's result TTL also bounds it: an expired task is not announced. An
// address refused by the netguard policy, or a URL that cannot be used, ends
// delivery at once (the policy does not change while the server runs).
// Delivery is at least once: a receiver may see a task twice.
//
// Addresses. Every connection is dialled through a net.Dialer whose
// Control is the netguard Guard's, so the address actually dialled (after
// DNS) is checked, whatever the URL says; the environment's HTTP proxy is
// never used, since a proxy would dial on our behalf, past the check.
package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/netguard"
	"github.com/courierhq/courier/internal/store"
)

// Source is the part of the broker the dispatcher drives.
type Source interface {
	// DueWebhooks lists up to max finished tasks whose webhook is due.
	DueWebhooks(ctx context.Context, max int) ([]store.Task, error)
	// RecordWebhook records an attempt: delivered, or when to try again
	// (zero: never).
	RecordWebhook(ctx context.Context, id string, a store.WebhookAttempt, delivered bool, next time.Time) error
}

// Watcher is optional for a Source: WatchWebhooks returns a channel closed
// when a webhook may have become due (nil: it cannot tell). The dispatcher
// then looks at once instead of at its next Interval, which still bounds
// the wait when a wake-up is missed or not offered.
type Watcher interface {
	WatchWebhooks() <-chan struct{}
}

// Options configure a Dispatcher. Zero values take the defaults named.
type Options struct {
	// Guard decides which addresses may be dialled; default a guard with
	// no allow-list (public addresses only).
	Guard *netguard.Guard
	// Clock tells time (signatures, attempts, backoff); default the wall
	// clock. Network timeouts are always in real time.
	Clock clock.Clock
	// Logger receives the dispatcher's logs; default discards.
	Logger *slog.Logger
	// Interval is the longest gap between two looks for due webhooks;
	// default 1s.
	Interval time.Duration
	// Concurrency is how many deliveries may be in flight; default 8.
	Concurrency int
	// Timeout bounds one attempt, from dialling to the end of the answer;
	// default 10s.
	Timeout time.Duration
	// MinBackoff is the delay after the first failed attempt, doubled after
	// each further one up to MaxBackoff; defaults 1s and 10m.
	MinBackoff, MaxBackoff time.Duration
	// MaxAge is how long after the task finished attempts go on; default 24h.
	MaxAge time.Duration
}

// withDefaults returns o with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.Guard == nil {
		o.Guard, _ = netguard.New(nil) // cannot fail without prefixes
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Minute
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	return o
}

// Dispatcher delivers due webhooks. Start it once; Stop is idempotent.
type Dispatcher struct {
	src       Source
	o         Options
	client    *http.Client
	transport *http.Transport
	jitter    func() float64 // in [0, 1)
	wake      chan struct{}  // buffered 1: a look for due webhooks is wanted
	wg        sync.WaitGroup // deliveries in flight

	// dispatchMu serializes dispatch, so slots are not handed out twice, and
	// orders the end of a delivery after any dispatch that listed it.
	dispatchMu sync.Mutex

	mu       sync.Mutex // guards inflight, cancel, done
	inflight map[string]struct{}
	cancel   context.CancelFunc
	done     chan struct{}
}

// New returns a dispatcher over src.
func New(src Source, o Options) *Dispatcher {
	o = o.withDefaults()
	client, tr := newClient(o.Guard, o.Timeout)
	return &Dispatcher{src: src, o: o, client: client, transport: tr, jitter: randFloat,
		wake: make(chan struct{}, 1), inflight: map[string]struct{}{}}
}

// Start runs the dispatcher in a goroutine until Stop.
func (d *Dispatcher) Start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	go d.run(ctx, d.done)
}

// Stop ends the loop and the deliveries in flight (an attempt cut short by
// Stop is not recorded: it is made again after the next start) and waits
// for them, or for ctx. It then closes idle connections.
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.mu.Lock()
	cancel, done := d.cancel, d.done
	d.mu.Unlock()
	defer d.transport.CloseIdleConnections()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wake asks for a look for due webhooks now rather than at the next
// Interval, e.g. when a task with a webhook has finished. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	defer d.wg.Wait()
	watcher, _ := d.src.(Watcher)
	for {
		var due <-chan struct{}
		if watcher != nil {
			due = watcher.WatchWebhooks() // before looking, so no change falls between
		}
		d.dispatch(ctx)
		t := d.o.Clock.NewTimer(d.o.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.wake:
			t.Stop()
		case <-due:
			t.Stop()
		case <-t.C():
		}
	}
}

// RunOnce starts the deliveries that are due (as many as free slots allow)
// and waits for them to end. It returns how many attempts were made. Tests
// drive the dispatcher with it.
func (d *Dispatcher) RunOnce(ctx context.Context) int {
	started := d.dispatch(ctx)
	for _, c := range started {
		<-c
	}
	return len(started)
}

// dispatch starts a delivery of each due webhook not in flight already, up
// to the free slots, and returns a channel per delivery, closed at its end.
func (d *Dispatcher) dispatch(ctx context.Context) []chan struct{} {
	d.dispatchMu.Lock()
	defer d.dispatchMu.Unlock()
	d.mu.Lock()
	busy := len(d.inflight)
	d.mu.Unlock()
	free := d.o.Concurrency - busy
	if free <= 0 || ctx.Err() != nil {
		return nil
	}
	// Those in flight are still due, so ask for enough to find free ones.
	tasks, err := d.src.DueWebhooks(ctx, free+busy)
	if err != nil {
		if ctx.Err() == nil {
			d.o.Logger.Error("webhooks: list due", "err", err)
		}
		return nil
	}
	var started []chan struct{}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range tasks {
		if len(started) == free {
			break
		}
		if _, ok := d.inflight[t.ID]; ok {
			continue
		}
		d.inflight[t.ID] = struct{}{}
		c := make(chan struct{})
		started = append(started, c)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer close(c)
			d.deliver(ctx, t)
			// Under dispatchMu: a dispatch that listed t as due before its
			// attempt was recorded must still find it in flight, or it would
			// deliver it again.
			d.dispatchMu.Lock()
			d.mu.Lock()
			delete(d.inflight, t.ID)
			d.mu.Unlock()
			d.dispatchMu.Unlock()
			d.Wake() // a slot is free: more may be due
		}()
	}
	return started
}
