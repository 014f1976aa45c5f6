package pgstore

// Faults of combined leases (combine.go), found in review: each test makes
// calls go together by holding the move lock from another connection, so
// that the first lease waits inside the database while the others queue.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/internal/pgtest"
	"github.com/courierhq/courier/internal/store"
)

var cbT0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

func cbOpen(t *testing.T) (*Store, string) {
	t.Helper()
	dsn := pgtest.Schema(t)
	s, err := Open(context.Background(), Options{DSN: dsn, Migrate: true, AllowUnsafeDurability: true, MaxConns: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := store.DefaultConfig("q")
	c.DeadLetterQueue = ""
	if _, err := s.CreateQueue(context.Background(), &store.CreateQueueParams{Name: "q", Config: c, Now: cbT0}); err != nil {
		t.Fatal(err)
	}
	// a first lease reads the queue's due hint: later ones go the fast way
	if _, err := s.Lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 1, Now: cbT0}); err != nil {
		t.Fatal(err)
	}
	return s, dsn
}

func cbConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

const cbMoveLock = `hashtextextended('courier.move.' || current_schema(), 0)`

func cbWaiting(s *Store, n int) func() bool {
	return func() bool { s.leases.mu.Lock(); defer s.leases.mu.Unlock(); return len(s.leases.waiting["q"]) == n }
}

func cbBusy(s *Store) func() bool {
	return func() bool { s.leases.mu.Lock(); defer s.leases.mu.Unlock(); return s.leases.busy["q"] }
}

type cbOut struct {
	res store.LeaseResult
	err error
}

func cbLease(ctx context.Context, s *Store, p *store.LeaseParams) chan cbOut {
	ch := make(chan cbOut, 1)
	go func() {
		res, err := s.Lease(ctx, p)
		ch <- cbOut{res, err}
	}()
	return ch
}

// together runs the leases of ps so that all but the first go together: the
// first waits inside the database for the move lock, which another
// connection holds, while the others queue behind it; then the lock is let
// go. It returns their outcomes in order.
func together(t *testing.T, s *Store, dsn string, ps ...*store.LeaseParams) []cbOut {
	t.Helper()
	ctx := context.Background()
	x := cbConn(t, dsn)
	if _, err := x.Exec(ctx, `SELECT pg_advisory_lock(`+cbMoveLock+`)`); err != nil {
		t.Fatal(err)
	}
	chs := []chan cbOut{cbLease(ctx, s, ps[0])}
	waitFor(t, cbBusy(s))
	for i, p := range ps[1:] {
		chs = append(chs, cbLease(ctx, s, p))
		waitFor(t, cbWaiting(s, i+1))
	}
	if _, err := x.Exec(ctx, `SELECT pg_advisory_unlock(`+cbMoveLock+`)`); err != nil {
		t.Fatal(err)
	}
	out := make([]cbOut, len(chs))
	for i, ch := range chs {
		out[i] = <-ch
	}
	return out
}

// The combined lease stops at the smallest byte limit of its calls: a call
// left without a share leases again alone, and gets what it would have.
func TestCombinedByteLimitServesEach(t *testing.T) {
	ctx := context.Background()
	s, dsn := cbOpen(t)
	msgs := make([]store.NewMessage, 10)
	for i := range msgs {
		msgs[i] = store.NewMessage{Body: bytes.Repeat([]byte{'a' + byte(i)}, 600)}
	}
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: cbT0}); err != nil {
		t.Fatal(err)
	}
	o := together(t, s, dsn,
		&store.LeaseParams{Queue: "q", Max: 1, MaxBytes: 1000, Now: cbT0},
		&store.LeaseParams{Queue: "q", Max: 5, MaxBytes: 1000, Now: cbT0},
		&store.LeaseParams{Queue: "q", Max: 5, MaxBytes: 1000, Now: cbT0})
	oa, ob, oc := o[0], o[1], o[2]
	if oa.err != nil || ob.err != nil || oc.err != nil || len(oa.res.Messages) != 1 || len(ob.res.Messages) != 2 {
		t.Errorf("A got %d, B got %d, C got %d (errs %v %v %v); want 1 and 2 (each within 1000 bytes)",
			len(oa.res.Messages), len(ob.res.Messages), len(oc.res.Messages), oa.err, ob.err, oc.err)
	}
	q, _ := s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: cbT0})
	if len(oc.res.Messages) == 0 && q.Stats.Ready > 0 {
		t.Errorf("C (Max 5, MaxBytes 1000) got no message while %d are ready; alone it would get 2", q.Stats.Ready)
	}
}

// A call taken into a group returns at once when its caller gives up, and
// is handed no messages.
func TestCombinedCallLeavesWhenItsCallerGivesUp(t *testing.T) {
	ctx := context.Background()
	s, dsn := cbOpen(t)
	msgs := make([]store.NewMessage, 10)
	for i := range msgs {
		msgs[i] = store.NewMessage{Body: []byte(fmt.Sprint(i))}
	}
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: cbT0}); err != nil {
		t.Fatal(err)
	}
	x, y := cbConn(t, dsn), cbConn(t, dsn)
	if _, err := x.Exec(ctx, `SELECT pg_advisory_lock(`+cbMoveLock+`)`); err != nil {
		t.Fatal(err)
	}
	// waiting: how many wait for this schema's move lock (other tests'
	// schemas have locks of their own).
	waiting := func(n int) func() bool {
		return func() bool {
			var got int
			err := x.QueryRow(ctx, `SELECT count(*) FROM pg_locks l, (SELECT `+cbMoveLock+` AS k) h
				WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1
					AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
					AND l.classid::bigint = (h.k >> 32) & 4294967295 AND l.objid::bigint = h.k & 4294967295`).Scan(&got)
			return err == nil && got == n
		}
	}
	a := cbLease(ctx, s, &store.LeaseParams{Queue: "q", Max: 1, Now: cbT0})
	waitFor(t, waiting(1)) // A waits inside the database
	b := cbLease(ctx, s, &store.LeaseParams{Queue: "q", Max: 1, Now: cbT0})
	waitFor(t, cbWaiting(s, 1))
	cctx, cancel := context.WithTimeout(ctx, 24*time.Hour)
	defer cancel()
	c := cbLease(cctx, s, &store.LeaseParams{Queue: "q", Max: 3, Now: cbT0})
	waitFor(t, cbWaiting(s, 2))
	// y queues for the lock behind A: once A ends, the group {B, C} waits for y.
	yd := make(chan error, 1)
	go func() { _, err := y.Exec(ctx, `SELECT pg_advisory_lock(`+cbMoveLock+`)`); yd <- err }()
	waitFor(t, waiting(2))
	if _, err := x.Exec(ctx, `SELECT pg_advisory_unlock(`+cbMoveLock+`)`); err != nil {
		t.Fatal(err)
	}
	if err := <-yd; err != nil {
		t.Fatal(err)
	}
	<-a
	waitFor(t, cbWaiting(s, 0)) // B and C taken as one group, blocked behind y
	time.Sleep(100 * time.Millisecond)
	cancel() // C's caller gives up
	time.Sleep(500 * time.Millisecond)
	var oc cbOut
	select {
	case oc = <-c:
		if !errors.Is(oc.err, context.Canceled) {
			t.Errorf("C returned %v after its caller gave up, want context.Canceled", oc.err)
		}
	default:
		t.Errorf("C still blocked 500ms after its context ended")
		oc = <-c
	}
	if _, err := y.Exec(ctx, `SELECT pg_advisory_unlock(`+cbMoveLock+`)`); err != nil {
		t.Fatal(err)
	}
	ob := <-b
	if ob.err != nil || len(ob.res.Messages) != 1 {
		t.Errorf("B: %d messages, %v; want its one", len(ob.res.Messages), ob.err)
	}
	if oc.err == nil && len(oc.res.Messages) > 0 {
		t.Errorf("C's caller gave up, yet %d messages were leased to it (in flight, attempt 1, until visibility ends)", len(oc.res.Messages))
	}
	// The share the group leased for C is handed back: only A's and B's
	// messages stay in flight.
	waitFor(t, func() bool {
		q, err := s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: cbT0})
		return err == nil && q.Stats.InFlight == 2 && q.Stats.Ready == 8
	})
}

// sendPlain: the id answered for message i is the id stored with message i.
func TestSendPlainIDsInOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := cbOpen(t)
	const n = 1000
	msgs := make([]store.NewMessage, n)
	for i := range msgs {
		msgs[i] = store.NewMessage{Body: []byte(fmt.Sprint(i)), Priority: i % 3}
	}
	out, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: cbT0})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: n, Now: cbT0})
	if err != nil || len(res.Messages) != n {
		t.Fatal(err, len(res.Messages))
	}
	body := map[string]string{}
	for _, m := range res.Messages {
		body[m.ID] = string(m.Body)
	}
	for i := range out {
		if body[out[i].ID] != fmt.Sprint(i) {
			t.Fatalf("message %d: id %s holds body %q", i, out[i].ID, body[out[i].ID])
		}
		if i > 0 && out[i].ID <= out[i-1].ID {
			t.Fatalf("ids not increasing at %d", i)
		}
	}
}

// A send to a missing queue leaves no rows behind (pool and InTx).
func TestSendToMissingQueueLeavesNoRows(t *testing.T) {
	ctx := context.Background()
	s, dsn := cbOpen(t)
	_, err := s.Send(ctx, &store.SendParams{Queue: "nope", Messages: []store.NewMessage{{Body: []byte("x")}}, Now: cbT0})
	if !errors.Is(err, store.ErrQueueNotFound) {
		t.Errorf("send to a missing queue: %v", err)
	}
	x := cbConn(t, dsn)
	tx, err := x.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := InTx(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.Send(ctx, &store.SendParams{Queue: "nope", Messages: []store.NewMessage{{Body: []byte("y")}}, Now: cbT0})
	if !errors.Is(err, store.ErrQueueNotFound) {
		t.Errorf("InTx send to a missing queue: %v", err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM courier_messages`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows left in the application's tx: %d %v", n, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := x.QueryRow(ctx, `SELECT count(*) FROM courier_messages`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows left: %d %v", n, err)
	}
}

// A combined group that meets grouped messages: each call falls back alone
// with its own acks; nothing is delivered twice, every ack applies once.
func TestCombinedMeetsGroups(t *testing.T) {
	ctx := context.Background()
	s, dsn := cbOpen(t)
	var msgs []store.NewMessage
	for i := range 6 {
		msgs = append(msgs, store.NewMessage{Body: []byte(fmt.Sprint(i))})
	}
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: cbT0}); err != nil {
		t.Fatal(err)
	}
	first, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 2, Now: cbT0})
	if err != nil || len(first.Messages) != 2 {
		t.Fatal(err)
	}
	// now a grouped message appears
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{{Body: []byte("g"), Group: "G"}}, Now: cbT0}); err != nil {
		t.Fatal(err)
	}
	o := together(t, s, dsn,
		&store.LeaseParams{Queue: "q", Max: 1, Now: cbT0},
		&store.LeaseParams{Queue: "q", Max: 2, Now: cbT0, Acks: []string{first.Messages[0].Lease, "junk"}},
		&store.LeaseParams{Queue: "q", Max: 2, Now: cbT0, Acks: []string{first.Messages[1].Lease}})
	seen := map[string]int{}
	for i, o := range o {
		if o.err != nil {
			t.Errorf("call %d: %v", i, o.err)
		}
		if i == 1 && (len(o.res.Acked) != 2 || o.res.Acked[0] != nil || o.res.Acked[1] == nil) {
			t.Errorf("call 1's acks: %v, want the first applied and the junk refused", o.res.Acked)
		}
		if i == 2 && (len(o.res.Acked) != 1 || o.res.Acked[0] != nil) {
			t.Errorf("call 2's ack: %v, want applied", o.res.Acked)
		}
		for _, m := range o.res.Messages {
			seen[string(m.Body)]++
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
	if runs, calls := s.leases.runs.Load(), s.leases.calls.Load(); runs >= calls {
		t.Errorf("%d runs for %d calls: the calls did not go together", runs, calls)
	}
	q, _ := s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: cbT0})
	if q.Stats.AckedTotal != 2 {
		t.Errorf("acked total %d, want 2", q.Stats.AckedTotal)
	}
}

// A lease whose deadline passes answers context.DeadlineExceeded, as every
// other verb does.
func TestLeaseDeadlineKind(t *testing.T) {
	s, _ := cbOpen(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Now: cbT0})
	_, serr := s.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{{Body: []byte("x")}}, Now: cbT0})
	if !errors.Is(serr, context.DeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("lease past its deadline: %v, want context.DeadlineExceeded", err)
	}
}

// One call's input that fails the combined lease (a task's result that is
// not JSON, for a reply) fails that call alone: the others lease again.
func TestCombinedOneInputFailsItsCallAlone(t *testing.T) {
	ctx := context.Background()
	s, dsn := cbOpen(t)
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{
		{Body: []byte(`{}`), Task: &store.NewTask{ReplyTo: "replies", ResultTTL: time.Hour}}}, Now: cbT0}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Now: cbT0})
	if err != nil || len(got.Messages) != 1 {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{{Body: []byte("m")}}, Now: cbT0}); err != nil {
		t.Fatal(err)
	}
	o := together(t, s, dsn,
		&store.LeaseParams{Queue: "q", Max: 1, Now: cbT0},
		&store.LeaseParams{Queue: "q", Max: 1, Now: cbT0,
			Acks: []string{got.Messages[0].Lease}, AckResults: [][]byte{[]byte(`{not json`)}},
		&store.LeaseParams{Queue: "q", Max: 1, Now: cbT0})
	oa, ob, oc := o[0], o[1], o[2]
	if oa.err != nil || ob.err == nil {
		t.Errorf("A: %v, B: %v; want A secbed and B refused for its result", oa.err, ob.err)
	}
	if oc.err != nil {
		t.Errorf("C failed because of B's input: %v", oc.err)
	}
}

// A run that panics (a bug the HTTP server's backstop recovers from): the
// other calls of its group are told, and the queue's turn goes on.
func TestCombinerPanicGivesTurnBack(t *testing.T) {
	c := newCombiner()
	var runs atomic.Int32
	gate, started := make(chan struct{}), make(chan struct{}, 4)
	run := func(ctx context.Context, p *store.LeaseParams, now time.Time) (store.LeaseResult, error) {
		n := runs.Add(1)
		started <- struct{}{}
		<-gate
		if n == 2 {
			panic("bug")
		}
		return store.LeaseResult{}, nil
	}
	errPanicked := errors.New("panicked")
	lease := func(p *store.LeaseParams) chan error {
		ch := make(chan error, 1)
		go func() {
			defer func() {
				if v := recover(); v != nil {
					ch <- errPanicked
				}
			}()
			_, err := c.lease(context.Background(), p, combineT0, run)
			ch <- err
		}()
		return ch
	}
	waiting := func(n int) func() bool {
		return func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting["q"]) == n }
	}
	a := lease(&store.LeaseParams{Queue: "q", Max: 1})
	<-started
	b := lease(&store.LeaseParams{Queue: "q", Max: 1})
	waitFor(t, waiting(1))
	m := lease(&store.LeaseParams{Queue: "q", Max: 1})
	waitFor(t, waiting(2))
	gate <- struct{}{} // A ends; B runs {B, M}, and panics
	<-started
	gate <- struct{}{}
	if err := <-a; err != nil {
		t.Errorf("A: %v", err)
	}
	if err := <-b; err != errPanicked {
		t.Errorf("B: %v, want its panic", err)
	}
	if err := <-m; !errors.Is(err, errLeasePanicked) {
		t.Errorf("M: %v, want errLeasePanicked", err)
	}
	d := lease(&store.LeaseParams{Queue: "q", Max: 1}) // the turn is free
	<-started
	gate <- struct{}{}
	if err := <-d; err != nil {
		t.Errorf("D: %v", err)
	}
}

// The runner's caller gives up while its group runs: the group's lease goes
// on for the others; once every caller has given up, it is cancelled. A
// call taken into the group returns at once when its caller gives up.
func TestCombinerRunnerGivesUp(t *testing.T) {
	c := newCombiner()
	f := &fakeRun{gate: make(chan struct{}), started: make(chan struct{}, 10)}
	var gotMu sync.Mutex
	var gotCtx context.Context
	run := func(ctx context.Context, p *store.LeaseParams, now time.Time) (store.LeaseResult, error) {
		gotMu.Lock()
		gotCtx = ctx
		gotMu.Unlock()
		return f.run(ctx, p, now)
	}
	groupCtx := func() context.Context { gotMu.Lock(); defer gotMu.Unlock(); return gotCtx }
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 1}, combineT0, run)
	}()
	<-f.started
	lctx, lcancel := context.WithCancel(context.Background())
	mctx, mcancel := context.WithCancel(context.Background())
	type o struct {
		r store.LeaseResult
		e error
	}
	lc, mc := make(chan o, 1), make(chan o, 1)
	go func() { r, e := c.lease(lctx, &store.LeaseParams{Queue: "q", Max: 1}, combineT0, run); lc <- o{r, e} }()
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting["q"]) == 1 })
	go func() { r, e := c.lease(mctx, &store.LeaseParams{Queue: "q", Max: 1}, combineT0, run); mc <- o{r, e} }()
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting["q"]) == 2 })
	f.gate <- struct{}{}
	<-done
	<-f.started // group {L, M} runs
	lcancel()
	time.Sleep(50 * time.Millisecond)
	if groupCtx().Err() != nil {
		t.Error("group ctx cancelled when only the leader gave up")
	}
	mcancel()
	waitFor(t, func() bool { return groupCtx().Err() != nil })
	f.gate <- struct{}{}
	l, m := <-lc, <-mc
	if !errors.Is(m.e, context.Canceled) {
		t.Errorf("M: %v, want context.Canceled", m.e)
	}
	if l.e != nil || len(l.r.Messages) != 1 { // the run ignores its context: it leased
		t.Errorf("L: %d messages, %v; want the one its run leased", len(l.r.Messages), l.e)
	}
}
