package courier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// WorkerOptions configure a Worker. The zero value of each field (or a
// negative one) means its default.
type WorkerOptions struct {
	// Concurrency is how many handlers run at once. Default 10.
	Concurrency int
	// MaxBatch is the most messages one receive asks for. Default 100, at
	// most 1000.
	MaxBatch int
	// NoPrefetch makes a receive ask only for as many messages as there are
	// free handlers. By default it also asks for those the busy handlers
	// are expected to be ready for when it answers: with handlers quicker
	// than a round trip to the server, up to MaxPrefetch more, which wait
	// here for a free handler (their leases kept alive); with slow ones, a
	// few or none. Set it when a handler waits for another message of the
	// same queue (a parent for its child): the child could be prefetched
	// behind busy parents while another worker is idle. See
	// worker_prefetch.go.
	NoPrefetch bool
	// MaxPrefetch is the most prefetched messages that may wait for a free
	// handler at once. Default (0) DefaultPrefetchPerHandler × Concurrency:
	// with handlers far quicker than a round trip, each receive then brings
	// several rounds of work for them. Lower it to bound how long a
	// prefetched message can wait if the handlers turn slow; NoPrefetch,
	// not a zero, turns prefetch off.
	MaxPrefetch int
	// Wait is how long a receive long-polls for messages. Default 20s, at
	// most 60s (the server's limit).
	Wait time.Duration
	// Visibility is the lease the worker asks for on every receive and
	// extension, whatever the queue's visibility timeout. While a handler
	// runs, the worker extends its lease each time a third of what is left
	// has passed, so a handler may run far longer than Visibility; a short
	// one makes a crashed worker's messages come back sooner. Default 30s.
	Visibility time.Duration
	// ReleaseDelay is how long a message released by Stop because its
	// handler was still running at Stop's deadline stays away before it is
	// delivered again. (Messages no handler has seen, prefetched or
	// received as Stop began, are handed back ready at once, their attempt
	// not counted; against a server that does not know release, they too
	// are released counted, after ReleaseDelay.) Default 1s.
	ReleaseDelay time.Duration
	// ShutdownTimeout bounds the graceful stop that Run makes when its
	// context ends (see Stop). Default 30s.
	ShutdownTimeout time.Duration
	// Logger receives what goes wrong outside handlers: failed receives,
	// acks that came too late, lost leases. Default: discard.
	Logger *slog.Logger
}

// Defaults and limits of WorkerOptions.
const (
	DefaultWorkerConcurrency = 10
	DefaultWorkerMaxBatch    = 100
	// DefaultPrefetchPerHandler × Concurrency is the default MaxPrefetch.
	DefaultPrefetchPerHandler = 4
	DefaultWorkerWait         = 20 * time.Second
	DefaultWorkerVisibility   = 30 * time.Second
	DefaultReleaseDelay       = time.Second
	DefaultShutdownTimeout    = 30 * time.Second
	maxWait                   = 60 * time.Second // the server's longest long-poll
)

// WithDefaults returns o with its unset fields set to their defaults.
func (o WorkerOptions) WithDefaults() WorkerOptions {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultWorkerConcurrency
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultWorkerMaxBatch
	}
	o.MaxBatch = min(o.MaxBatch, maxReceive)
	if o.MaxPrefetch <= 0 {
		o.MaxPrefetch = DefaultPrefetchPerHandler * o.Concurrency
	}
	if o.Wait <= 0 {
		o.Wait = DefaultWorkerWait
	}
	o.Wait = min(o.Wait, maxWait)
	if o.Visibility <= 0 {
		o.Visibility = DefaultWorkerVisibility
	}
	if o.ReleaseDelay <= 0 {
		o.ReleaseDelay = DefaultReleaseDelay
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ErrWorkerStopped is the cause of a handler's context cancelled at the
// deadline of Stop, and the error of starting a worker that was stopped.
var ErrWorkerStopped = errors.New("courier: worker stopped")

// A Worker receives messages from one queue and hands each to a Handler,
// up to Concurrency at a time, keeping their leases alive while the handlers
// run and settling each message by its handler's outcome (see Handler).
//
// Start it with Start or Run; stop it with Stop (or by ending Run's
// context). The worker installs no signal handlers: the program decides when
// to stop, typically on SIGTERM with signal.NotifyContext and Run.
type Worker struct {
	c     *Client
	queue string
	h     Handler
	opts  WorkerOptions
	log   *slog.Logger

	sem chan struct{} // a token per running handler, or per message a receive out may bring; capacity Concurrency
	// running counts the handlers that hold a token of sem; the others are
	// held by receives (for the messages they may bring) and by the loop.
	running atomic.Int32
	linger  time.Duration  // receiveLinger; tests change it
	hold    time.Duration  // ackHold; tests change it
	acks    chan *Delivery // successful deliveries, for the ackers to batch
	// ackQuit tells the ackers to ack what is queued and end; ackersGone
	// is closed when they have. The acks channel is never closed: a handler
	// that outlived Stop's grace may still try to queue its ack.
	ackQuit, ackersGone chan struct{}
	// ackTurn is held by the acker whose call is out first; the other
	// gathers meanwhile (worker_settle.go, gatherAcks).
	ackTurn chan struct{}
	// held are the acks waiting for a receive to carry them; holdLoop
	// hands the others to the ackers, and ends, closing holdDone, when
	// holdQuit is closed (worker_ackhold.go).
	held               *heldAcks
	holdQuit, holdDone chan struct{}
	noCarry            atomic.Bool // receives no longer carry acks (worker_receive.go, carried)
	noRelease          atomic.Bool // the server refused "release": give back by counted nacks (giveBack)
	// drained: the last receive got fewer messages than it asked for, so
	// the next ones are likely to long-poll and carry no ack soon: acks then
	// go out at once (worker_ackhold.go).
	drained atomic.Bool
	pre     prefetch // what a receive may ask for beyond its free handlers (worker_prefetch.go)
	// parked is the batch a receive slot waits for, to carry its acks
	// (worker_receive.go, park); nil when no slot is parked.
	parked atomic.Pointer[parkedBatch]

	// Set by start, read-only after.
	base     context.Context    // parent of handler and settle contexts
	stopRecv context.CancelFunc // ends the receive loop
	// carryCtx is the context of receives that carry acks: Stop lets them
	// finish, cancelling it only when its own ctx ends or carryStopWait
	// has passed (see stop).
	carryCtx  context.Context
	stopCarry context.CancelFunc
	loopDone  chan struct{}  // closed when the receive loop has ended
	handlers  sync.WaitGroup // deliveries, from dispatch until settled: handler returned, and its ack (if any) answered
	ackers    sync.WaitGroup
	// leaseQuit ends watchLeases, which closes leaseWatchDone (worker_lease.go).
	leaseQuit, leaseWatchDone chan struct{}

	mu       sync.Mutex // guards the fields below
	state    workerState
	inflight map[*Delivery]struct{}
	fatal    error // why the receive loop gave up, if it did

	failed   chan struct{} // closed when fatal is set
	stopping chan struct{} // closed when Stop begins
	stopped  chan struct{} // closed when Stop is done
	stopOnce sync.Once
	stopErr  error
}

type workerState int

const (
	workerNew workerState = iota
	workerRunning
	workerStopped
)

// ackerCount is how many batch acks a worker has in flight at most.
const ackerCount = 2

// ackAlongside is how large a batch of acks must be to go out while
// another acker's call is out: smaller ones wait for it and grow. Each call
// costs a request and a commit, so under load one call at a time carrying
// many acks beats two carrying half as many (a burn-down of no-op jobs on
// PostgreSQL ran 13-19% faster); acks that pile up faster than one call
// clears still go out two at a time.
const ackAlongside = 200

// NewWorker returns a Worker that hands messages of queue to h. Nothing
// happens until it is started.
func NewWorker(c *Client, queue string, h Handler, opts WorkerOptions) *Worker {
	opts = opts.WithDefaults()
	return &Worker{
		c: c, queue: queue, h: h, opts: opts, log: opts.Logger.With("queue", queue),
		sem:     make(chan struct{}, opts.Concurrency),
		linger:  receiveLinger,
		hold:    ackHold,
		acks:    make(chan *Delivery, opts.Concurrency),
		ackQuit: make(chan struct{}), ackersGone: make(chan struct{}), ackTurn: make(chan struct{}, 1),
		held: newHeldAcks(), holdQuit: make(chan struct{}), holdDone: make(chan struct{}),
		inflight: make(map[*Delivery]struct{}),
		failed:   make(chan struct{}),
		stopping: make(chan struct{}),
		stopped:  make(chan struct{}),
	}
}

// Start starts receiving and handling messages in the background, and
// returns at once. It fails if the worker was started or stopped before.
func (w *Worker) Start() error {
	// The handlers' contexts derive from Background, not from a caller's:
	// the worker's life ends with Stop, not with any one call's context.
	return w.start(context.Background())
}

// Run starts the worker, runs it until ctx ends, then stops it gracefully,
// giving handlers up to ShutdownTimeout to finish (see Stop). Handlers'
// contexts carry ctx's values, not its cancellation. Run returns nil after
// a clean stop, or the error that ended the worker: a receive that can never
// succeed (an invalid queue name, say), or a stop that ran out of time.
// Stop, called from elsewhere, also ends Run.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-w.failed:
	case <-w.stopping:
		<-w.stopped
		return w.stopErr
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.opts.ShutdownTimeout)
	defer cancel()
	return w.Stop(sctx)
}

func (w *Worker) start(base context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case workerRunning:
		return errors.New("courier: worker already started")
	case workerStopped:
		return ErrWorkerStopped
	}
	if w.h == nil {
		return errors.New("courier: worker has a nil handler")
	}
	if _, err := queuePath(w.queue); err != nil {
		return err
	}
	w.state = workerRunning
	w.base = base
	var recvCtx context.Context
	recvCtx, w.stopRecv = context.WithCancel(base)
	w.carryCtx, w.stopCarry = context.WithCancel(base)
	w.loopDone = make(chan struct{})
	for range ackerCount {
		w.ackers.Add(1)
		go w.ackLoop()
	}
	go w.holdLoop()
	w.leaseQuit, w.leaseWatchDone = make(chan struct{}), make(chan struct{})
	go w.watchLeases(w.leaseQuit)
	go w.receiveLoop(recvCtx)
	return nil
}

// Stop stops the worker gracefully: it takes no new messages, then waits
// for the handlers that are running to finish and their messages to be
// settled, until ctx ends. At ctx's end it cancels the handlers' contexts
// (with cause ErrWorkerStopped) and releases their messages: they are handed
// back, to be delivered again after ReleaseDelay (this counts as an attempt,
// as any nack does). Stop then returns ctx's error, wrapped; handlers that
// ignore their context may outlive it, but their outcome is dropped.
//
// A receive in flight when Stop begins is abandoned. If the server had
// already leased messages for it, the server releases them (ready at once,
// not counted) when it finds the client gone before its answer; those it
// answered just as the receive was abandoned are delivered again once
// their visibility timeout has passed. A receive that carries acks is let
// finish instead (it waits 10ms at most for messages), so that its acks
// are answered; the messages it brings are handed back unhandled. So are
// the prefetched messages still waiting for a handler. A message handed
// back unhandled is ready again at once, for any worker, and its attempt
// is not counted (a nack with "release"): restarting workers cannot use up
// a message's attempts without running it. (A server from before release
// refuses it; the worker then hands them back as counted attempts, after
// ReleaseDelay, and logs a warning once.)
//
// Stop waits for the handlers, so a handler that calls it (with a context
// without deadline) waits for itself forever; call it from elsewhere.
//
// Stop may be called more than once, and concurrently: every call returns
// when the first has done its work (or its own ctx ends). Stopping a worker
// that was never started only prevents it from starting.
func (w *Worker) Stop(ctx context.Context) error {
	first := false
	w.stopOnce.Do(func() { first = true })
	if !first {
		select {
		case <-w.stopped:
			return w.stopErr
		case <-ctx.Done():
			return fmt.Errorf("courier: stop worker: %w", ctx.Err())
		}
	}
	close(w.stopping)
	w.mu.Lock()
	started := w.state == workerRunning
	w.state = workerStopped
	w.mu.Unlock()
	if started {
		w.stopErr = w.stop(ctx)
	}
	close(w.stopped)
	return w.stopErr
}

func (w *Worker) stop(ctx context.Context) error {
	w.stopRecv()
	// The loop ends once its receives have: a plain one is cancelled at
	// once; one that carries acks is let finish (it waits carryWait at
	// most), unless ctx ends or carryStopWait passes first. Cut, it would
	// leave its acks applied by the server but unanswered here, and the
	// ackers would send them again, to be refused as stale and logged as
	// failures.
	cut := context.AfterFunc(ctx, w.stopCarry)
	late := time.AfterFunc(carryStopWait, w.stopCarry) // a server that does not answer
	<-w.loopDone
	cut()
	late.Stop()
	w.stopCarry()
	// No receive is out: the prefetched messages still waiting for a
	// handler go back unhandled, as a stopping worker's receive's do.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
	w.releaseWaiting(rctx)
	cancel()

	// No receive will carry an ack now: the held acks go to the ackers, and
	// later ones straight to them. Before the wait for the handlers, which
	// counts the deliveries whose acks are held: else Stop would wait out
	// the hold (an hour, in a test that set it so).
	close(w.holdQuit)
	<-w.holdDone
	var err error
	if !waitGroup(ctx, &w.handlers) {
		err = w.abandon(ctx)
	}
	close(w.leaseQuit) // handlers that outlive the grace keep their leases no longer
	<-w.leaseWatchDone
	close(w.ackQuit)
	w.ackers.Wait()
	close(w.ackersGone)
	w.dropAcks() // sent by a handler that outlived the grace; see ack
	w.mu.Lock()
	defer w.mu.Unlock()
	return errors.Join(w.fatal, err)
}

// carryStopWait is how long Stop lets a receive that carries acks finish.
const carryStopWait = time.Second

// stopGrace is how long a stop that ran out of time still waits for the
// handlers it cancelled to return, and for its releases to be answered.
const stopGrace = 5 * time.Second

// abandon ends what Stop could not wait for: it cancels every running
// handler and releases the messages not yet settled.
func (w *Worker) abandon(ctx context.Context) error {
	w.mu.Lock()
	held := make([]*Delivery, 0, len(w.inflight))
	for d := range w.inflight {
		held = append(held, d)
	}
	w.mu.Unlock()

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
	defer cancel()
	claimed := held[:0]
	for _, d := range held {
		// Claim before cancelling: cancelled first, a handler that watches
		// its context could return and claim the message itself (and
		// release it all the same), and the count below would miss it.
		if !d.claim() {
			continue // its handler returned meanwhile and settles it
		}
		d.cancel(ErrWorkerStopped)
		claimed = append(claimed, d)
	}
	released := len(claimed)
	releaseEach(released, func(i int) { w.release(rctx, claimed[i]) })
	// Cancelled handlers usually return at once; one that ignores its
	// context is not waited for beyond the grace.
	if !waitGroup(rctx, &w.handlers) {
		w.mu.Lock()
		n := len(w.inflight)
		w.mu.Unlock()
		return fmt.Errorf("courier: stop worker: released %d %s; %d not settled yet (a handler still running, or an ack not answered): %w",
			released, plural(released, "message"), n, ctx.Err())
	}
	return fmt.Errorf("courier: stop worker: released %d %s: %w", released, plural(released, "message"), ctx.Err())
}

// leaseStart estimates, on this machine's clock, when the server leased
// the messages of a receive sent at sent and answered at answered: at sent
// at the earliest, and shortly before the answer, since a long-poll answers
// as soon as it has leased something. "Shortly" is taken as a third of the
// visibility, so the lease is reckoned to end early, never late, unless
// the server took longer than that between leasing and answering.
func leaseStart(sent, answered time.Time, visibility time.Duration) time.Time {
	if s := answered.Add(-visibility / 3); s.After(sent) {
		return s
	}
	return sent
}

// fail ends the worker for an error that retrying cannot fix. Only the
// first call counts (receives run side by side, and may all fail so).
func (w *Worker) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fatal != nil {
		return
	}
	w.log.Error("courier worker: giving up", "err", err)
	w.fatal = err
	close(w.failed)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
