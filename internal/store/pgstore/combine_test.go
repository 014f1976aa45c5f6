package pgstore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

var combineT0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// fakeRun is a lease run that hands out numbered messages and records the
// leases it ran; a lease of queue "q" tells started and waits for gate.
type fakeRun struct {
	mu      sync.Mutex
	ran     []*store.LeaseParams
	nows    []time.Time
	next    int
	running atomic.Int32
	overlap atomic.Bool
	gate    chan struct{}
	started chan struct{}
}

func (f *fakeRun) run(ctx context.Context, p *store.LeaseParams, now time.Time) (store.LeaseResult, error) {
	if p.Queue == "q" { // other queues do not wait
		if f.running.Add(1) > 1 {
			f.overlap.Store(true)
		}
		defer f.running.Add(-1)
		f.started <- struct{}{}
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ran = append(f.ran, p)
	f.nows = append(f.nows, now)
	var res store.LeaseResult
	for range p.Max {
		f.next++
		res.Messages = append(res.Messages, store.Message{ID: string(rune('a' + f.next - 1))})
	}
	for i := range p.Acks {
		if p.Acks[i] == "bad" {
			res.Acked = append(res.Acked, store.ErrLeaseExpired)
		} else {
			res.Acked = append(res.Acked, nil)
		}
	}
	return res, nil
}

// While one lease of a queue runs, the calls that arrive wait, and then run
// as one lease: each gets as many messages as it asked for, in order, and
// the outcomes of its own acks.
func TestCombinerMergesWaitingCalls(t *testing.T) {
	c := newCombiner()
	f := &fakeRun{gate: make(chan struct{}), started: make(chan struct{}, 10)}
	ctx := context.Background()
	first := make(chan store.LeaseResult, 1)
	go func() {
		res, _ := c.lease(ctx, &store.LeaseParams{Queue: "q", Max: 1}, combineT0, f.run)
		first <- res
	}()
	<-f.started // the first runs alone and holds the queue's turn
	type out struct {
		res store.LeaseResult
		err error
	}
	params := []*store.LeaseParams{
		{Queue: "q", Max: 2, Acks: []string{"x", "bad"}, AckResults: [][]byte{[]byte(`1`), nil}},
		{Queue: "q", Max: 3},
		{Queue: "q", Max: 1, Acks: []string{"bad"}},
	}
	outs := make([]chan out, len(params))
	for i, p := range params {
		outs[i] = make(chan out, 1)
		go func() {
			res, err := c.lease(ctx, p, combineT0.Add(time.Duration(i)*time.Second), f.run)
			outs[i] <- out{res, err}
		}()
		waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting["q"]) == i+1 })
	}
	f.gate <- struct{}{} // the first ends; the three waiting go together
	<-f.started
	f.gate <- struct{}{}
	if res := <-first; len(res.Messages) != 1 || res.Messages[0].ID != "a" {
		t.Errorf("first call got %v, want message a", res.Messages)
	}
	want := [][]string{{"b", "c"}, {"d", "e", "f"}, {"g"}}
	wantAcks := [][]error{{nil, store.ErrLeaseExpired}, nil, {store.ErrLeaseExpired}}
	for i := range params {
		o := <-outs[i]
		var ids []string
		for _, m := range o.res.Messages {
			ids = append(ids, m.ID)
		}
		if o.err != nil || !slices.Equal(ids, want[i]) {
			t.Errorf("call %d got %v, %v; want %v", i, ids, o.err, want[i])
		}
		if !slices.EqualFunc(o.res.Acked, wantAcks[i], func(a, b error) bool { return errors.Is(a, b) || a == b }) {
			t.Errorf("call %d acks %v, want %v", i, o.res.Acked, wantAcks[i])
		}
	}
	if len(f.ran) != 2 {
		t.Fatalf("%d runs, want 2 (one alone, then the three together)", len(f.ran))
	}
	p := f.ran[1]
	if p.Max != 6 || !slices.Equal(p.Acks, []string{"x", "bad", "bad"}) || len(p.AckResults) != 3 ||
		string(p.AckResults[0]) != "1" || p.AckResults[2] != nil {
		t.Errorf("combined lease %+v: want max 6, the acks in order with their results", p)
	}
	if !f.nows[1].Equal(combineT0.Add(2 * time.Second)) {
		t.Errorf("combined lease at %v, want the latest of the calls' times", f.nows[1])
	}
	if f.overlap.Load() {
		t.Error("two leases of the queue ran at once")
	}
	if runs, calls := c.runs.Load(), c.calls.Load(); runs != 2 || calls != 4 {
		t.Errorf("runs %d calls %d, want 2 and 4", runs, calls)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.busy) != 0 || len(c.waiting) != 0 {
		t.Errorf("the turn was not given back: busy %v waiting %v", c.busy, c.waiting)
	}
}

// Calls with another visibility, or past the combined lease's bound, wait
// for a turn of their own; another queue never waits.
func TestCombinerKeepsApart(t *testing.T) {
	c := newCombiner()
	f := &fakeRun{gate: make(chan struct{}), started: make(chan struct{}, 10)}
	ctx := context.Background()
	var wg sync.WaitGroup
	lease := func(p *store.LeaseParams) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.lease(ctx, p, combineT0, f.run); err != nil {
				t.Error(err)
			}
		}()
	}
	lease(&store.LeaseParams{Queue: "q", Max: 1})
	<-f.started
	if _, err := c.lease(ctx, &store.LeaseParams{Queue: "other", Max: 1}, combineT0, f.run); err != nil {
		t.Fatal(err) // returned while q's lease runs: it did not wait
	}
	waiting := func(n int) func() bool {
		return func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting["q"]) == n }
	}
	lease(&store.LeaseParams{Queue: "q", Max: maxCombined - 1})
	waitFor(t, waiting(1))
	lease(&store.LeaseParams{Queue: "q", Max: 1, Visibility: time.Minute})
	waitFor(t, waiting(2))
	lease(&store.LeaseParams{Queue: "q", Max: 2})
	waitFor(t, waiting(3))
	for range 4 { // q's first lease, then the three, each alone
		f.gate <- struct{}{}
	}
	wg.Wait()
	var maxes []int
	for _, p := range f.ran {
		if p.Queue == "q" {
			maxes = append(maxes, p.Max)
		}
	}
	if !slices.Equal(maxes, []int{1, maxCombined - 1, 1, 2}) {
		t.Errorf("q's leases asked for %v, want [1 %d 1 2]: none of the three could go together", maxes, maxCombined-1)
	}
	if f.overlap.Load() {
		t.Error("two leases of q ran at once")
	}
}

// A waiting call whose caller gives up returns at once, and the others are
// served without it.
func TestCombinerWaitingCallGivesUp(t *testing.T) {
	c := newCombiner()
	f := &fakeRun{gate: make(chan struct{}), started: make(chan struct{}, 10)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 1}, combineT0, f.run)
	}()
	<-f.started
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.lease(ctx, &store.LeaseParams{Queue: "q", Max: 5}, combineT0, f.run)
		errc <- err
	}()
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting["q"]) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("gave up: %v, want context.Canceled", err)
	}
	f.gate <- struct{}{}
	<-done
	if len(f.ran) != 1 || f.next != 1 {
		t.Errorf("runs %d leasing %d messages: the call that gave up was run", len(f.ran), f.next)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.busy) != 0 {
		t.Error("the turn was not given back")
	}
}

// A call whose caller gives up after it was taken into a group that
// another call runs returns at once with nothing; its share, leased all
// the same, is handed back (giveBack) once the group's lease is done.
func TestCombinerTakenCallGivesUp(t *testing.T) {
	c := newCombiner()
	givenc := make(chan []string, 1)
	c.giveBack = func(p *store.LeaseParams, msgs []store.Message) {
		if p.Queue != "q" || p.Max != 2 {
			t.Errorf("giveBack of %+v; want the call that gave up", p)
		}
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		givenc <- ids
	}
	f := &fakeRun{gate: make(chan struct{}), started: make(chan struct{}, 10)}
	go func() { _, _ = c.lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 1}, combineT0, f.run) }()
	<-f.started // the first runs alone: a
	runner := make(chan store.LeaseResult, 1)
	go func() {
		res, _ := c.lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 1}, combineT0, f.run)
		runner <- res
	}()
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting["q"]) == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		res, err := c.lease(ctx, &store.LeaseParams{Queue: "q", Max: 2}, combineT0, f.run)
		if len(res.Messages) != 0 {
			t.Errorf("the call that gave up got %d messages", len(res.Messages))
		}
		errc <- err
	}()
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting["q"]) == 2 })
	f.gate <- struct{}{} // a is done; the two waiting calls go as one group
	<-f.started
	cancel() // taken, not its group's runner: it returns at once
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("gave up: %v, want context.Canceled", err)
	}
	f.gate <- struct{}{}
	if res := <-runner; len(res.Messages) != 1 || res.Messages[0].ID != "b" {
		t.Errorf("the runner got %+v; want b", res.Messages)
	}
	select {
	case given := <-givenc:
		if !slices.Equal(given, []string{"c", "d"}) {
			t.Errorf("handed back %v; want the share of the call that gave up, c and d", given)
		}
	case <-time.After(10 * time.Second):
		t.Error("the share of the call that gave up was not handed back")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(time.Millisecond)
	}
}
