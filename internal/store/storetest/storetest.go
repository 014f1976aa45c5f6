// Package storetest is the conformance suite of courier's storage port: one
// set of tests, written against the store.Store interface only, that every
// backend (the embedded Pebble store, the PostgreSQL store) must pass, so that
// moving from one to the other changes no behaviour. It is modelled on River's
// riverdriver/riverdrivertest and Go's testing/fstest.
//
// A backend runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := mystore.Open(...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite never sleeps and never reads the wall clock: every call passes
// an explicit Now, starting at a fixed base time and advanced by hand. All
// times are whole milliseconds, so a backend that keeps microseconds (as
// PostgreSQL does) loses nothing. It uses a small deterministic RetryFunc
// (see retry) so that delays and dead-lettering are exact.
//
// Where the port's doc comments leave a choice open, the suite picks the
// reading a demanding user would expect and says so in a comment starting
// with "Choice:" next to the assertion that pins it.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// newStoreFunc returns a fresh, empty, open store; the suite closes it.
type newStoreFunc func(t *testing.T) store.Store

// Run runs the whole suite. newStore returns a fresh, empty, open store; the
// suite closes it. Every subtest gets its own store and most run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	f := newStoreFunc(newStore)
	areas := []struct {
		name string
		run  func(*testing.T, newStoreFunc)
	}{
		{"Queues", testQueues},
		{"Send", testSend},
		{"Lease", testLease},
		{"Ack", testAck},
		{"LeaseAck", testLeaseAck},
		{"Nack", testNack},
		{"Release", testRelease},
		{"DeadLetter", testDeadLetter},
		{"Extend", testExtend},
		{"Expiry", testExpiry},
		{"Tick", testTick},
		{"Redrive", testRedrive},
		{"Groups", testGroups},
		{"Dedup", testDedup},
		{"Retention", testRetention},
		{"Stats", testStats},
		{"Watch", testWatch},
		{"Concurrency", testConcurrency},
		{"Tasks", testTasks},
		{"TaskEnds", testTaskEnds},
		{"TaskDeadLetters", testTaskDeadLetters},
		{"TaskCancel", testTaskCancel},
		{"TaskProgress", testTaskProgress},
		{"TaskWebhooks", testTaskWebhooks},
		{"TaskReplyTo", testTaskReplyTo},
		{"TaskTTL", testTaskTTL},
		{"TaskWatch", testTaskWatch},
		{"TaskConcurrency", testTaskConcurrency},
		{"Close", testClose},
	}
	for _, a := range areas {
		t.Run(a.name, func(t *testing.T) { a.run(t, f) })
	}
}

// base is the suite's fixed starting time.
var base = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// retry is the suite's RetryFunc, the broker's policy without jitter:
// dead-letter once attempt reaches MaxAttempts (0 = never), else wait the
// explicit delay if any, else Backoff.Initial.
func retry(q store.QueueConfig, attempt int, explicit *time.Duration) (time.Duration, bool) {
	if q.MaxAttempts > 0 && attempt >= q.MaxAttempts {
		return 0, true
	}
	if explicit != nil {
		return *explicit, false
	}
	return q.Backoff.Initial, false
}

// config returns the suite's default queue settings: 30s visibility, 3
// attempts, a 5s backoff, no dead-letter queue (failed messages are dropped),
// a long retention and no dedup. Tests change what they need.
func config() store.QueueConfig {
	return store.QueueConfig{
		VisibilityTimeout: 30 * time.Second,
		MaxAttempts:       3,
		Backoff:           store.Backoff{Initial: 5 * time.Second, Max: time.Minute, Multiplier: 2},
		DeadLetterQueue:   "",
		Retention:         1000 * time.Hour,
		MaxMessageBytes:   1 << 20,
		DedupWindow:       0,
	}
}

// env is one test's store and clock.
type env struct {
	t     *testing.T
	s     store.Store
	ctx   context.Context
	now   time.Time
	retry store.RetryFunc
}

// setup opens a fresh store for t, closed when t ends, with the clock at base.
func setup(t *testing.T, newStore newStoreFunc) *env {
	t.Helper()
	s := newStore(t)
	if s == nil {
		t.Fatal("newStore returned nil")
	}
	t.Cleanup(func() {
		// The Close tests close the store themselves; a second Close may
		// answer nil or ErrClosed.
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return &env{t: t, s: s, ctx: context.Background(), now: base, retry: retry}
}

// advance moves the clock forward by d.
func (e *env) advance(d time.Duration) { e.now = e.now.Add(d) }

// set moves the clock to at.
func (e *env) set(at time.Time) { e.now = at }

func (e *env) createQueue(name string, cfg store.QueueConfig) store.Queue {
	e.t.Helper()
	q, err := e.s.CreateQueue(e.ctx, &store.CreateQueueParams{Name: name, Config: cfg, Now: e.now})
	if err != nil {
		e.t.Fatalf("CreateQueue(%q): %v", name, err)
	}
	return q
}

func (e *env) getQueue(name string) store.Queue {
	e.t.Helper()
	q, err := e.s.GetQueue(e.ctx, &store.GetQueueParams{Name: name, Now: e.now})
	if err != nil {
		e.t.Fatalf("GetQueue(%q): %v", name, err)
	}
	return q
}

func (e *env) stats(queue string) store.Stats {
	e.t.Helper()
	return e.getQueue(queue).Stats
}

// send stores msgs in queue and returns their ids, failing on any duplicate.
func (e *env) send(queue string, msgs ...store.NewMessage) []string {
	e.t.Helper()
	res := e.sendResults(queue, msgs...)
	ids := make([]string, len(res))
	for i, r := range res {
		if r.Duplicate {
			e.t.Fatalf("Send(%q): message %d reported as duplicate", queue, i)
		}
		ids[i] = r.ID
	}
	return ids
}

func (e *env) sendResults(queue string, msgs ...store.NewMessage) []store.SendResult {
	e.t.Helper()
	res, err := e.s.Send(e.ctx, &store.SendParams{Queue: queue, Messages: msgs, Now: e.now})
	if err != nil {
		e.t.Fatalf("Send(%q): %v", queue, err)
	}
	if len(res) != len(msgs) {
		e.t.Fatalf("Send(%q) of %d messages returned %d results", queue, len(msgs), len(res))
	}
	return res
}

// sendText sends one JSON message per body and returns their ids.
func (e *env) sendText(queue string, bodies ...string) []string {
	e.t.Helper()
	msgs := make([]store.NewMessage, len(bodies))
	for i, b := range bodies {
		msgs[i] = msg(b)
	}
	return e.send(queue, msgs...)
}

// msg is a JSON message with body b.
func msg(b string) store.NewMessage {
	return store.NewMessage{Body: []byte(b), Kind: store.BodyJSON}
}

func (e *env) leaseResult(queue string, max int, visibility time.Duration) store.LeaseResult {
	e.t.Helper()
	res, err := e.s.Lease(e.ctx, &store.LeaseParams{Queue: queue, Max: max, Visibility: visibility, Now: e.now, Retry: e.retry})
	if err != nil {
		e.t.Fatalf("Lease(%q): %v", queue, err)
	}
	if len(res.Messages) > max {
		e.t.Fatalf("Lease(%q, max %d) returned %d messages", queue, max, len(res.Messages))
	}
	return res
}

// lease leases up to max messages with the queue's visibility timeout.
func (e *env) lease(queue string, max int) []store.Message {
	e.t.Helper()
	return e.leaseResult(queue, max, 0).Messages
}

// leaseOne leases (Max 10) and checks that exactly one message, id, comes.
func (e *env) leaseOne(queue, id string) store.Message {
	e.t.Helper()
	ms := e.lease(queue, 10)
	if len(ms) != 1 || ms[0].ID != id {
		e.t.Fatalf("at %v: Lease(%q) = %v, want exactly [%s]", e.since(), queue, ids(ms), id)
	}
	return ms[0]
}

// leaseFirst leases one message (Max 1) and checks it is id.
func (e *env) leaseFirst(queue, id string) store.Message {
	e.t.Helper()
	ms := e.lease(queue, 1)
	if len(ms) != 1 || ms[0].ID != id {
		e.t.Fatalf("Lease(%q, 1) = %v, want [%s]", queue, ids(ms), id)
	}
	return ms[0]
}

// leaseNone checks that queue hands out nothing now.
func (e *env) leaseNone(queue string) store.LeaseResult {
	e.t.Helper()
	res := e.leaseResult(queue, 100, 0)
	if len(res.Messages) != 0 {
		e.t.Fatalf("at %v: Lease(%q) = %v, want nothing", e.since(), queue, ids(res.Messages))
	}
	return res
}

func (e *env) ack(queue string, leases ...string) []error {
	e.t.Helper()
	res, err := e.s.Ack(e.ctx, &store.AckParams{Queue: queue, Leases: leases, Now: e.now})
	if err != nil {
		e.t.Fatalf("Ack(%q): %v", queue, err)
	}
	if len(res) != len(leases) {
		e.t.Fatalf("Ack(%q) of %d leases returned %d results", queue, len(leases), len(res))
	}
	return res
}

// ackOK acks leases and fails unless every one succeeds.
func (e *env) ackOK(queue string, leases ...string) {
	e.t.Helper()
	for i, err := range e.ack(queue, leases...) {
		if err != nil {
			e.t.Fatalf("at %v: Ack(%q) lease %d: %v", e.since(), queue, i, err)
		}
	}
}

func (e *env) nack(queue, lease string, delay *time.Duration, reason string) (store.NackResult, error) {
	e.t.Helper()
	return e.s.Nack(e.ctx, &store.NackParams{Queue: queue, Lease: lease, Delay: delay, Error: reason, Now: e.now, Retry: e.retry})
}

func (e *env) nackOK(queue, lease string, delay *time.Duration, reason string) store.NackResult {
	e.t.Helper()
	res, err := e.nack(queue, lease, delay, reason)
	if err != nil {
		e.t.Fatalf("at %v: Nack(%q): %v", e.since(), queue, err)
	}
	return res
}

func (e *env) extend(queue, lease string, visibility time.Duration) (time.Time, error) {
	e.t.Helper()
	return e.s.Extend(e.ctx, &store.ExtendParams{Queue: queue, Lease: lease, Visibility: visibility, Now: e.now})
}

func (e *env) tick() store.TickResult {
	e.t.Helper()
	res, err := e.s.Tick(e.ctx, &store.TickParams{Now: e.now, Retry: e.retry})
	if err != nil {
		e.t.Fatalf("Tick: %v", err)
	}
	return res
}

func (e *env) redrive(queue string, max int) int {
	e.t.Helper()
	n, err := e.s.Redrive(e.ctx, &store.RedriveParams{Queue: queue, Max: max, Now: e.now})
	if err != nil {
		e.t.Fatalf("Redrive(%q): %v", queue, err)
	}
	return n
}

func (e *env) queueNames() []string {
	e.t.Helper()
	qs, err := e.s.ListQueues(e.ctx, &store.ListQueuesParams{Now: e.now})
	if err != nil {
		e.t.Fatalf("ListQueues: %v", err)
	}
	names := make([]string, len(qs))
	for i, q := range qs {
		names[i] = q.Name
	}
	return names
}

// since is the clock as an offset from base, for messages.
func (e *env) since() time.Duration { return e.now.Sub(base) }

// ids returns the ids of ms, in order.
func ids(ms []store.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func leases(ms []store.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Lease
	}
	return out
}

// wantIDs checks that ms are exactly the messages want, in that order.
func wantIDs(t *testing.T, what string, ms []store.Message, want ...string) {
	t.Helper()
	if got := ids(ms); !slices.Equal(got, want) {
		t.Fatalf("%s: got ids %v, want %v", what, got, want)
	}
}

// wantErr checks that err is one of targets.
func wantErr(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if errors.Is(err, target) {
			return
		}
	}
	t.Errorf("%s: got error %v, want one of %v", what, err, targets)
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v (%+v from base, want %+v)", what, got, want, got.Sub(base), want.Sub(base))
	}
}

func wantStats(t *testing.T, what string, got, want store.Stats) {
	t.Helper()
	g, w := got, want
	g.OldestReady, w.OldestReady = time.Time{}, time.Time{}
	if g != w {
		t.Errorf("%s: stats\n got  %+v\n want %+v", what, g, w)
	}
	if !got.OldestReady.Equal(want.OldestReady) {
		t.Errorf("%s: OldestReady = %v, want %v", what, got.OldestReady, want.OldestReady)
	}
}

// wantBody checks a message's body and kind.
func wantBody(t *testing.T, m store.Message, body []byte, kind store.BodyKind) {
	t.Helper()
	if !bytes.Equal(m.Body, body) {
		t.Errorf("message %s: body %q, want %q", m.ID, trunc(m.Body), trunc(body))
	}
	if m.Kind != kind {
		t.Errorf("message %s: kind %d, want %d", m.ID, m.Kind, kind)
	}
}

// wantHeaders checks headers exactly; nil and empty are the same.
func wantHeaders(t *testing.T, m store.Message, want map[string]string) {
	t.Helper()
	if len(m.Headers) != len(want) || !maps.Equal(m.Headers, want) {
		t.Errorf("message %s: headers %v, want %v", m.ID, m.Headers, want)
	}
}

func trunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

func ptr(d time.Duration) *time.Duration { return &d }

// Closed reports whether ch is closed, without blocking: for tests of
// watch and wake-up channels.
func Closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (e *env) setPaused(queue string, paused bool) store.Queue {
	e.t.Helper()
	q, err := e.s.SetPaused(e.ctx, &store.SetPausedParams{Name: queue, Paused: paused, Now: e.now})
	if err != nil {
		e.t.Fatalf("SetPaused(%q, %v): %v", queue, paused, err)
	}
	return q
}
