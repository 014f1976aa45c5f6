package pebblestore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pebblestore/gatefs"
)

// TestReadsWaitForSync: a task acked but not yet fsynced is not shown as
// succeeded; the read answers once the ack is durable, and shows it.
func TestReadsWaitForSync(t *testing.T) {
	f := gatedLeased(t, true)
	f.holdAck(t, []byte(`"done"`))
	type answer struct {
		t   store.Task
		err error
	}
	got := make(chan answer, 1)
	go func() {
		tk, err := f.s.GetTask(context.Background(), &store.GetTaskParams{ID: f.sent.ID, Now: gatedNow})
		got <- answer{tk, err}
	}()
	waitsFirst(t, f.waiting, got, "GetTask of the acked task")
	f.fs.Release()
	if a := <-got; a.err != nil || a.t.State != store.TaskSucceeded || string(a.t.Result) != `"done"` {
		t.Fatalf("GetTask after the sync = %+v, %v", a.t, a.err)
	}
	f.ackDone(t)
}

// TestEmptyLeaseIsARead: a receive that finds nothing writes nothing (no
// batch, so no fsync), and answers as reads do: only once what it saw is
// durable — here, an ack whose fsync is held, which emptied the queue.
func TestEmptyLeaseIsARead(t *testing.T) {
	f := gatedLeased(t, false)
	before := appliedNow(f.s)
	if lr, err := f.lease(false); err != nil || len(lr.Messages) != 0 {
		t.Fatalf("second lease = %v, %v; want none", lr, err)
	}
	if after := appliedNow(f.s); after != before {
		t.Fatalf("an empty lease applied %d batches, want 0", after-before)
	}
	f.holdAck(t, nil)
	got := make(chan error, 1)
	go func() { _, err := f.lease(false); got <- err }()
	waitsFirst(t, f.waiting, got, "the empty lease")
	f.fs.Release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	f.ackDone(t)
}

// TestEmptyLeaseNoReadWait: with NoReadWait, a lease that finds nothing
// answers at once, though what it saw (an ack emptying the queue) is not
// yet durable; one that carries acks, refused here, still waits, since
// their refusals answer about that state.
func TestEmptyLeaseNoReadWait(t *testing.T) {
	f := gatedLeased(t, false)
	f.holdAck(t, nil)
	before := appliedNow(f.s)
	type answer struct {
		r   store.LeaseResult
		err error
	}
	got := make(chan answer, 1)
	go func() { r, err := f.lease(true); got <- answer{r, err} }()
	select {
	case a := <-got:
		if a.err != nil || len(a.r.Messages) != 0 {
			t.Fatalf("empty lease = %+v, %v; want nothing", a.r, a.err)
		}
	case <-f.waiting:
		t.Fatal("an empty lease with NoReadWait waited for a sync")
	case <-time.After(10 * time.Second):
		t.Fatal("an empty lease with NoReadWait did not answer while a sync was held")
	}
	if after := appliedNow(f.s); after != before {
		t.Fatalf("the empty lease applied %d batches, want 0", after-before)
	}

	go func() { r, err := f.lease(true, f.held); got <- answer{r, err} }()
	waitsFirst(t, f.waiting, got, "a lease carrying a refused ack")
	f.fs.Release()
	if a := <-got; a.err != nil || len(a.r.Acked) != 1 || a.r.Acked[0] == nil {
		t.Fatalf("lease carrying the acked lease again = %+v, %v; want its ack refused", a.r, a.err)
	}
	f.ackDone(t)
}

// TestRefusalWaitsForSync: a verb refused on the store's state (a nack of
// a lease that an ack has just settled, its fsync held) answers only once
// that state is durable: before it, a crash could undo the ack and make
// the refusal untrue.
func TestRefusalWaitsForSync(t *testing.T) {
	f := gatedLeased(t, false)
	f.holdAck(t, nil)
	got := make(chan error, 1)
	go func() {
		_, err := f.s.Nack(context.Background(), &store.NackParams{Queue: "q", Lease: f.held, Retry: retryNow, Now: gatedNow})
		got <- err
	}()
	waitsFirst(t, f.waiting, got, "the nack of the acked lease")
	f.fs.Release()
	if err := <-got; !errors.Is(err, store.ErrLeaseExpired) {
		t.Fatalf("nack of an acked lease = %v, want %v", err, store.ErrLeaseExpired)
	}
	f.ackDone(t)
}

var gatedNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// gated is a store on a filesystem whose WAL syncs can be held, its queue
// q holding one message (a task, if asked), leased.
type gated struct {
	s       *Store
	fs      *gatefs.FS
	waiting <-chan struct{}  // a read started waiting for a sync (notedWaits)
	sent    store.SendResult // the message
	held    string           // its lease
	acked   chan error       // holdAck's ack, answered
}

func gatedLeased(t *testing.T, task bool) *gated {
	t.Helper()
	ctx := context.Background()
	f := &gated{fs: gatefs.New(vfs.NewMem()), acked: make(chan error, 1)}
	s, err := Open(Options{Dir: "db", FS: f.fs, FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t.Cleanup(f.fs.Release) // first: Close waits for a held sync
	f.s, f.waiting = s, notedWaits(s)
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: gatedNow}); err != nil {
		t.Fatal(err)
	}
	m := store.NewMessage{Body: []byte(`1`), Kind: store.BodyJSON}
	if task {
		m.Task = &store.NewTask{ResultTTL: time.Hour}
	}
	res, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: gatedNow, Messages: []store.NewMessage{m}})
	if err != nil {
		t.Fatal(err)
	}
	lr, err := f.lease(false)
	if err != nil || len(lr.Messages) != 1 {
		t.Fatal(lr, err)
	}
	f.sent, f.held = res[0], lr.Messages[0].Lease
	return f
}

// lease leases from q, carrying acks.
func (f *gated) lease(noReadWait bool, acks ...string) (store.LeaseResult, error) {
	return f.s.Lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 1, Now: gatedNow, Retry: retryNow,
		Acks: acks, NoReadWait: noReadWait})
}

// holdAck holds WAL syncs and acks the lease (with a task result, if
// given): on return the ack is applied, its fsync held.
func (f *gated) holdAck(t *testing.T, result []byte) {
	t.Helper()
	f.fs.Hold()
	p := &store.AckParams{Queue: "q", Leases: []string{f.held}, Now: gatedNow}
	if result != nil {
		p.Results = [][]byte{result}
	}
	go func() {
		_, err := f.s.Ack(context.Background(), p)
		f.acked <- err
	}()
	<-f.fs.Entered()
}

// ackDone checks holdAck's ack once the syncs are released.
func (f *gated) ackDone(t *testing.T) {
	t.Helper()
	if err := <-f.acked; err != nil {
		t.Fatal(err)
	}
}

// notedWaits makes s signal each read that starts waiting for a sync; a
// signal nobody takes is dropped.
func notedWaits(s *Store) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.dur.onWait = func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return ch
}

// waitsFirst fails t unless what starts waiting for a sync before its
// answer comes on got, within 10 s.
func waitsFirst[T any](t *testing.T, waiting <-chan struct{}, got <-chan T, what string) {
	t.Helper()
	select {
	case <-waiting:
	case a := <-got:
		t.Fatalf("%s answered (%+v) before the state it saw was durable", what, a)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s neither answered nor waited for a sync in 10 s", what)
	}
}

// appliedNow is the number of batches applied, read under the store's
// mutex: a batch whose fsync has started may not be counted yet outside
// it (Pebble's log writer can begin the sync before the apply returns).
func appliedNow(s *Store) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dur.applied.Load()
}
