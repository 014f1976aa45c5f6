package pebblestore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pebblestore/gatefs"
	"github.com/courierhq/courier/internal/store/storetest"
)

var handoffNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// handoffStore is a store over fs with one queue, q.
func handoffStore(t *testing.T, fs vfs.FS) *Store {
	t.Helper()
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.CreateQueue(context.Background(), &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: handoffNow}); err != nil {
		t.Fatal(err)
	}
	return s
}

func sendBodies(t *testing.T, s *Store, bodies ...string) []store.SendResult {
	t.Helper()
	var nm []store.NewMessage
	for _, b := range bodies {
		nm = append(nm, store.NewMessage{Body: []byte(b), Kind: store.BodyJSON})
	}
	return sendMessages(t, s, nm...)
}

// sendMessages sends nm to q at handoffNow; any error fails the test.
func sendMessages(t *testing.T, s *Store, nm ...store.NewMessage) []store.SendResult {
	t.Helper()
	res, err := s.Send(context.Background(), &store.SendParams{Queue: "q", Now: handoffNow, Messages: nm})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func queueStats(t *testing.T, s *Store) store.Stats {
	t.Helper()
	q, err := s.GetQueue(context.Background(), &store.GetQueueParams{Name: "q", Now: handoffNow})
	if err != nil {
		t.Fatal(err)
	}
	return q.Stats
}

// TestHandoffLeasesInTheSendsBatch: a send leases for the waiting claims,
// oldest first and each up to its max, in the one batch it applies; the
// claims are answered when the send is, and the leases are real ones.
func TestHandoffLeasesInTheSendsBatch(t *testing.T) {
	s := handoffStore(t, vfs.NewMem())
	first := s.Claim(&store.LeaseParams{Queue: "q", Max: 2, Visibility: 5 * time.Second})
	second := s.Claim(&store.LeaseParams{Queue: "q", Max: 1})
	third := s.Claim(&store.LeaseParams{Queue: "q", Max: 1})
	watch := s.Watch("q")
	before := s.dur.applied.Load()
	res := sendBodies(t, s, "1", "2", "3")
	if n := s.dur.applied.Load() - before; n != 1 {
		t.Fatalf("the send and its hand-off applied %d batches, want 1", n)
	}
	if !storetest.Closed(first.Done()) || !storetest.Closed(second.Done()) {
		t.Fatal("the claims leased for were not answered by the time the send was")
	}
	got, err := first.Withdraw()
	if err != nil || len(got) != 2 || got[0].ID != res[0].ID || got[1].ID != res[1].ID {
		t.Fatalf("first claim = %+v, %v; want messages %s and %s", got, err, res[0].ID, res[1].ID)
	}
	if exp := handoffNow.Add(5 * time.Second); !got[0].LeaseExpiresAt.Equal(exp) || got[0].Attempt != 1 {
		t.Fatalf("lease expires %v (attempt %d), want %v (attempt 1)", got[0].LeaseExpiresAt, got[0].Attempt, exp)
	}
	got2, err := second.Withdraw()
	if err != nil || len(got2) != 1 || got2[0].ID != res[2].ID {
		t.Fatalf("second claim = %+v, %v; want message %s", got2, err, res[2].ID)
	}
	if storetest.Closed(third.Done()) || storetest.Closed(watch) {
		t.Fatal("nothing was left ready, yet a claim or watcher was woken")
	}
	if got3, err := third.Withdraw(); err != nil || len(got3) != 0 {
		t.Fatalf("third claim = %+v, %v; want nothing", got3, err)
	}
	if st := queueStats(t, s); st.Ready != 0 || st.InFlight != 3 {
		t.Fatalf("stats %+v, want 3 in flight", st)
	}
	errs, err := s.Ack(context.Background(), &store.AckParams{Queue: "q", Now: handoffNow,
		Leases: []string{got[0].Lease, got[1].Lease, got2[0].Lease}})
	if err != nil || errs[0] != nil || errs[1] != nil || errs[2] != nil {
		t.Fatalf("ack of the handed-out leases = %v, %v", errs, err)
	}
}

// TestHandoffLeftover: what the claims do not take stays ready, and the
// queue's watchers are woken for it.
func TestHandoffLeftover(t *testing.T) {
	s := handoffStore(t, vfs.NewMem())
	c := s.Claim(&store.LeaseParams{Queue: "q", Max: 1})
	watch := s.Watch("q")
	sendBodies(t, s, "1", "2")
	if got, err := c.Withdraw(); err != nil || len(got) != 1 {
		t.Fatalf("claim = %+v, %v; want one message", got, err)
	}
	if !storetest.Closed(watch) {
		t.Fatal("a message was left ready, but the watchers were not woken")
	}
	if st := queueStats(t, s); st.Ready != 1 || st.InFlight != 1 {
		t.Fatalf("stats %+v, want 1 ready, 1 in flight", st)
	}
}

// TestHandoffWithdrawn: a withdrawn claim is gone; the next send leaves its
// message ready.
func TestHandoffWithdrawn(t *testing.T) {
	s := handoffStore(t, vfs.NewMem())
	c := s.Claim(&store.LeaseParams{Queue: "q", Max: 1})
	if got, err := c.Withdraw(); err != nil || len(got) != 0 {
		t.Fatalf("Withdraw = %+v, %v; want nothing", got, err)
	}
	sendBodies(t, s, "1")
	if storetest.Closed(c.Done()) {
		t.Fatal("a withdrawn claim was leased for")
	}
	if st := queueStats(t, s); st.Ready != 1 || st.InFlight != 0 {
		t.Fatalf("stats %+v, want the message ready", st)
	}
	if len(s.claims) != 0 {
		t.Fatalf("claims left registered: %v", s.claims)
	}
}

// TestHandoffPausedOrMissing: a paused queue hands nothing out; a missing
// queue takes no claim.
func TestHandoffPausedOrMissing(t *testing.T) {
	s := handoffStore(t, vfs.NewMem())
	if c := s.Claim(&store.LeaseParams{Queue: "nope", Max: 1}); c != nil {
		t.Fatal("a claim on a missing queue was registered")
	}
	if _, err := s.SetPaused(context.Background(), &store.SetPausedParams{Name: "q", Paused: true, Now: handoffNow}); err != nil {
		t.Fatal(err)
	}
	c := s.Claim(&store.LeaseParams{Queue: "q", Max: 1})
	sendBodies(t, s, "1")
	if got, err := c.Withdraw(); err != nil || len(got) != 0 {
		t.Fatalf("claim on a paused queue = %+v, %v; want nothing", got, err)
	}
	if st := queueStats(t, s); st.Ready != 1 {
		t.Fatalf("stats %+v, want the message ready", st)
	}
}

// TestHandoffWaitsForTheSync: while the send's fsync is held, the claim is
// not answered, and a Withdraw waits for the sync rather than dropping a
// lease already applied — then answers it.
func TestHandoffWaitsForTheSync(t *testing.T) {
	fs := gatefs.New(vfs.NewMem())
	s := handoffStore(t, fs)
	c := s.Claim(&store.LeaseParams{Queue: "q", Max: 1})
	fs.Hold()
	defer fs.Release()
	sent := make(chan error, 1)
	go func() {
		_, err := s.Send(context.Background(), &store.SendParams{Queue: "q", Now: handoffNow,
			Messages: []store.NewMessage{{Body: []byte(`1`), Kind: store.BodyJSON}}})
		sent <- err
	}()
	<-fs.Entered() // applied, fsync held
	type answer struct {
		msgs []store.Message
		err  error
	}
	withdrawn := make(chan answer, 1)
	go func() { m, err := c.Withdraw(); withdrawn <- answer{m, err} }()
	select {
	case <-c.Done():
		t.Fatal("the claim was answered before the lease was durable")
	case a := <-withdrawn:
		t.Fatalf("Withdraw answered %+v, %v before the lease was durable", a.msgs, a.err)
	case <-time.After(50 * time.Millisecond):
	}
	fs.Release()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if a := <-withdrawn; a.err != nil || len(a.msgs) != 1 {
		t.Fatalf("Withdraw after the sync = %+v, %v; want the message", a.msgs, a.err)
	}
}

// failSyncFS fails every WAL sync once failing is set.
type failSyncFS struct {
	vfs.FS
	failing chan struct{} // closed: fail
}

func (fs *failSyncFS) Unwrap() vfs.FS { return fs.FS }

func (fs *failSyncFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, cat)
	if err != nil {
		return f, err
	}
	return &failSyncFile{File: f, fs: fs}, nil
}

type failSyncFile struct {
	vfs.File
	fs *failSyncFS
}

var errSyncInjected = errors.New("injected sync failure")

func (f *failSyncFile) fail() error {
	if storetest.Closed(f.fs.failing) {
		return errSyncInjected
	}
	return nil
}

func (f *failSyncFile) Sync() error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *failSyncFile) SyncData() error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.File.SyncData()
}

// TestHandoffSyncFails: when the send's fsync fails, the claim is answered
// with the failure, not with leases that may not be durable.
func TestHandoffSyncFails(t *testing.T) {
	fs := &failSyncFS{FS: vfs.NewMem(), failing: make(chan struct{})}
	s := handoffStore(t, fs)
	c := s.Claim(&store.LeaseParams{Queue: "q", Max: 1})
	close(fs.failing)
	_, err := s.Send(context.Background(), &store.SendParams{Queue: "q", Now: handoffNow,
		Messages: []store.NewMessage{{Body: []byte(`1`), Kind: store.BodyJSON}}})
	if !errors.Is(err, store.ErrFailed) {
		t.Fatalf("Send with a failing fsync = %v, want ErrFailed", err)
	}
	got, werr := c.Withdraw()
	if !errors.Is(werr, store.ErrFailed) || len(got) != 0 {
		t.Fatalf("claim = %+v, %v; want ErrFailed and no messages", got, werr)
	}
}
