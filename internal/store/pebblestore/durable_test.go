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
	ctx := context.Background()
	fs := gatefs.New(vfs.NewMem())
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waiting := notedWaits(s)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: now}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: now, Messages: []store.NewMessage{
		{Body: []byte(`1`), Kind: store.BodyJSON, Task: &store.NewTask{ResultTTL: time.Hour}}}})
	if err != nil {
		t.Fatal(err)
	}
	lr, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Now: now, Retry: retryNow})
	if err != nil || len(lr.Messages) != 1 {
		t.Fatal(lr, err)
	}

	fs.Hold()
	defer fs.Release() // before Close, which waits for the held ack, even if the test fails
	acked := make(chan error, 1)
	go func() {
		_, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{lr.Messages[0].Lease},
			Results: [][]byte{[]byte(`"done"`)}, Now: now})
		acked <- err
	}()
	<-fs.Entered() // the ack is applied and its fsync is held
	type answer struct {
		t   store.Task
		err error
	}
	got := make(chan answer, 1)
	go func() {
		tk, err := s.GetTask(ctx, &store.GetTaskParams{ID: res[0].ID, Now: now})
		got <- answer{tk, err}
	}()
	waitsFirst(t, waiting, got, "GetTask of the acked task")
	fs.Release()
	if a := <-got; a.err != nil || a.t.State != store.TaskSucceeded || string(a.t.Result) != `"done"` {
		t.Fatalf("GetTask after the sync = %+v, %v", a.t, a.err)
	}
	if err := <-acked; err != nil {
		t.Fatal(err)
	}
}

// TestEmptyLeaseIsARead: a receive that finds nothing writes nothing (no
// batch, so no fsync), and answers as reads do: only once what it saw is
// durable — here, an ack whose fsync is held, which emptied the queue.
func TestEmptyLeaseIsARead(t *testing.T) {
	ctx := context.Background()
	fs := gatefs.New(vfs.NewMem())
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waiting := notedWaits(s)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: now,
		Messages: []store.NewMessage{{Body: []byte(`1`), Kind: store.BodyJSON}}}); err != nil {
		t.Fatal(err)
	}
	lease := func() (store.LeaseResult, error) {
		return s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Now: now, Retry: retryNow})
	}
	lr, err := lease()
	if err != nil || len(lr.Messages) != 1 {
		t.Fatal(lr, err)
	}
	before := appliedNow(s)
	if lr, err := lease(); err != nil || len(lr.Messages) != 0 {
		t.Fatalf("second lease = %v, %v; want none", lr, err)
	}
	if after := appliedNow(s); after != before {
		t.Fatalf("an empty lease applied %d batches, want 0", after-before)
	}

	fs.Hold()
	defer fs.Release()
	acked := make(chan error, 1)
	go func() {
		_, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{lr.Messages[0].Lease}, Now: now})
		acked <- err
	}()
	<-fs.Entered() // the ack is applied and its fsync is held
	got := make(chan error, 1)
	go func() { _, err := lease(); got <- err }()
	waitsFirst(t, waiting, got, "the empty lease")
	fs.Release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := <-acked; err != nil {
		t.Fatal(err)
	}
}

// TestEmptyLeaseNoReadWait: with NoReadWait, a lease that finds nothing
// answers at once, though what it saw (an ack emptying the queue) is not
// yet durable; one that carries acks, refused here, still waits, since
// their refusals answer about that state.
func TestEmptyLeaseNoReadWait(t *testing.T) {
	ctx := context.Background()
	fs := gatefs.New(vfs.NewMem())
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waiting := notedWaits(s)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: now,
		Messages: []store.NewMessage{{Body: []byte(`1`), Kind: store.BodyJSON}}}); err != nil {
		t.Fatal(err)
	}
	lease := func(acks ...string) (store.LeaseResult, error) {
		return s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Now: now, Retry: retryNow, Acks: acks, NoReadWait: true})
	}
	lr, err := lease()
	if err != nil || len(lr.Messages) != 1 {
		t.Fatal(lr, err)
	}
	held := lr.Messages[0].Lease

	fs.Hold()
	defer fs.Release()
	acked := make(chan error, 1)
	go func() {
		_, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{held}, Now: now})
		acked <- err
	}()
	<-fs.Entered() // the ack is applied and its fsync is held
	before := appliedNow(s)
	type answer struct {
		r   store.LeaseResult
		err error
	}
	got := make(chan answer, 1)
	go func() { r, err := lease(); got <- answer{r, err} }()
	select {
	case a := <-got:
		if a.err != nil || len(a.r.Messages) != 0 {
			t.Fatalf("empty lease = %+v, %v; want nothing", a.r, a.err)
		}
	case <-waiting:
		t.Fatal("an empty lease with NoReadWait waited for a sync")
	case <-time.After(10 * time.Second):
		t.Fatal("an empty lease with NoReadWait did not answer while a sync was held")
	}
	if after := appliedNow(s); after != before {
		t.Fatalf("the empty lease applied %d batches, want 0", after-before)
	}

	go func() { r, err := lease(held); got <- answer{r, err} }()
	waitsFirst(t, waiting, got, "a lease carrying a refused ack")
	fs.Release()
	if a := <-got; a.err != nil || len(a.r.Acked) != 1 || a.r.Acked[0] == nil {
		t.Fatalf("lease carrying the acked lease again = %+v, %v; want its ack refused", a.r, a.err)
	}
	if err := <-acked; err != nil {
		t.Fatal(err)
	}
}

// TestRefusalWaitsForSync: a verb refused on the store's state (a nack of
// a lease that an ack has just settled, its fsync held) answers only once
// that state is durable: before it, a crash could undo the ack and make
// the refusal untrue.
func TestRefusalWaitsForSync(t *testing.T) {
	ctx := context.Background()
	fs := gatefs.New(vfs.NewMem())
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waiting := notedWaits(s)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: now,
		Messages: []store.NewMessage{{Body: []byte(`1`), Kind: store.BodyJSON}}}); err != nil {
		t.Fatal(err)
	}
	lr, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Now: now, Retry: retryNow})
	if err != nil || len(lr.Messages) != 1 {
		t.Fatal(lr, err)
	}
	held := lr.Messages[0].Lease

	fs.Hold()
	defer fs.Release()
	acked := make(chan error, 1)
	go func() {
		_, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{held}, Now: now})
		acked <- err
	}()
	<-fs.Entered() // the ack is applied and its fsync is held
	got := make(chan error, 1)
	go func() {
		_, err := s.Nack(ctx, &store.NackParams{Queue: "q", Lease: held, Retry: retryNow, Now: now})
		got <- err
	}()
	waitsFirst(t, waiting, got, "the nack of the acked lease")
	fs.Release()
	if err := <-got; !errors.Is(err, store.ErrLeaseExpired) {
		t.Fatalf("nack of an acked lease = %v, want %v", err, store.ErrLeaseExpired)
	}
	if err := <-acked; err != nil {
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
