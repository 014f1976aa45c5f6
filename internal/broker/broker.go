// Package broker holds courier's messaging semantics above the storage port:
// validation and defaults of queue settings and messages, queue auto-creation,
// the retry policy (backoff with jitter, dead-lettering at max attempts),
// event-driven long-poll receive, and the background maintenance tick.
//
// Every transport (HTTP, SQS, CLI through HTTP, dashboard) calls the broker;
// none talks to a store directly. The broker imports no transport or backend.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/store"
)

// Errors of the broker, beyond the store's (store.ErrQueueNotFound,
// store.ErrLeaseExpired, store.ErrInvalidLease, store.ErrNoSpace). The text of
// an error wrapping ErrInvalid or ErrTooLarge is written for the API's user.
var (
	ErrInvalid  = errors.New("invalid argument")
	ErrTooLarge = errors.New("too large")
)

// invalidf is an error that matches ErrInvalid and whose text is only the
// message, so that wrapping it ("tasks[3]: …") reads well.
func invalidf(format string, args ...any) error {
	return &userError{msg: fmt.Sprintf(format, args...), kind: ErrInvalid}
}

// userError is a refusal whose text is written for the API's user; it
// matches kind (ErrInvalid or ErrTooLarge) with errors.Is.
type userError struct {
	msg  string
	kind error
}

func (e *userError) Error() string        { return e.msg }
func (e *userError) Is(target error) bool { return target == e.kind }

// Options configure a Broker. The zero value is usable with Clock and Logger defaulted.
type Options struct {
	// Clock tells time; default the wall clock.
	Clock clock.Clock
	// Logger receives the broker's logs; default discards.
	Logger *slog.Logger
	// NoAutoCreate makes send and receive on a missing queue answer
	// ErrQueueNotFound instead of creating it with defaults.
	NoAutoCreate bool
	// Rand supplies jitter; default a randomly seeded source.
	Rand *rand.Rand
	// MaxResultBytes bounds a task's result; default DefaultMaxResult.
	MaxResultBytes int
	// CheckURL vets a webhook URL at submit (e.g. refuses literal private
	// addresses); nil accepts any http(s) URL. Delivery checks again at dial.
	CheckURL func(u *url.URL) error
	// PollEvery bounds how long a long-poll (receive, task wait, task
	// event stream) waits before looking again although nothing woke it:
	// the fallback for a store whose wake-ups can be lost, such as several
	// nodes over PostgreSQL, where a notification is only a hint. Default 0:
	// no fallback, the store's wake-ups are exact (the embedded store).
	PollEvery time.Duration
	// Observer is told of deliveries, give-backs, due work and deleted
	// queues; default none.
	Observer Observer
}

// Broker is the semantic core. Safe for concurrent use.
type Broker struct {
	st     store.Store
	clock  clock.Clock
	log    *slog.Logger
	noAuto bool

	maxResult int
	checkURL  func(u *url.URL) error
	poll      time.Duration // Options.PollEvery
	obs       Observer

	randMu sync.Mutex // guards rnd
	rnd    *rand.Rand
}

// New returns a broker over st.
func New(st store.Store, o Options) *Broker {
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = DefaultMaxResult
	}
	return &Broker{st: st, clock: o.Clock, log: o.Logger, noAuto: o.NoAutoCreate, rnd: o.Rand,
		maxResult: o.MaxResultBytes, checkURL: o.CheckURL, poll: o.PollEvery, obs: o.Observer}
}

// Now is the broker's clock reading.
func (b *Broker) Now() time.Time { return b.clock.Now() }

// Ready reports whether the store can serve.
func (b *Broker) Ready(ctx context.Context) error { return b.st.Ready(ctx) }

// Tick does the time-driven work of every queue as of now (delayed messages
// come due, expired leases are retried or dead-lettered, retention and dedup
// windows end) and says when it is next needed.
func (b *Broker) Tick(ctx context.Context) (store.TickResult, error) {
	res, err := b.st.Tick(ctx, &store.TickParams{Now: b.clock.Now(), Retry: b.retry})
	// What the queues that did not fail did is done, error or not.
	b.obs.DueWork(res)
	return res, wrap("tick", err)
}
