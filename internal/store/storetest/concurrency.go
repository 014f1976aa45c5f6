package storetest

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

const workers = 8

// fill sends n JSON messages to queue in batches of 50 and returns their ids.
func (e *env) fill(queue string, n int) []string {
	e.t.Helper()
	var out []string
	for len(out) < n {
		msgs := make([]store.NewMessage, min(50, n-len(out)))
		for i := range msgs {
			msgs[i] = msg(fmt.Sprint(len(out) + i))
		}
		out = append(out, e.send(queue, msgs...)...)
	}
	return out
}

func testConcurrency(t *testing.T, newStore newStoreFunc) {
	t.Run("LeaseExactlyOnce", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		const n = 400
		sent := e.fill("q", n)
		var mu sync.Mutex // guards seen
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					res, err := e.s.Lease(e.ctx, &store.LeaseParams{Queue: "q", Max: 4, Visibility: time.Hour, Now: e.now, Retry: e.retry})
					if err != nil {
						t.Errorf("Lease: %v", err)
						return
					}
					if len(res.Messages) == 0 {
						return
					}
					mu.Lock()
					for _, m := range res.Messages {
						seen[m.ID]++
					}
					mu.Unlock()
					acks, err := e.s.Ack(e.ctx, &store.AckParams{Queue: "q", Leases: leases(res.Messages), Now: e.now})
					if err != nil {
						t.Errorf("Ack: %v", err)
						return
					}
					for i, err := range acks {
						if err != nil {
							t.Errorf("Ack of %s: %v", res.Messages[i].ID, err)
						}
					}
				}
			})
		}
		wg.Wait()
		for _, id := range sent {
			if seen[id] != 1 {
				t.Errorf("message %s leased %d times, want once", id, seen[id])
			}
		}
		if len(seen) != n {
			t.Errorf("leased %d distinct messages, want %d", len(seen), n)
		}
		wantStats(t, "after all acks", e.stats("q"), store.Stats{SentTotal: n, AckedTotal: n})
	})

	t.Run("ConcurrentSends", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		var mu sync.Mutex // guards all
		var all []string
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range 20 {
					msgs := []store.NewMessage{msg(fmt.Sprint(w, i))}
					if i%5 == 0 {
						msgs = append(msgs, msg("x"), msg("y"))
					}
					res, err := e.s.Send(e.ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: e.now})
					if err != nil {
						t.Errorf("Send: %v", err)
						return
					}
					mu.Lock()
					for _, r := range res {
						all = append(all, r.ID)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		const n = workers * (20 + 4*2)
		if len(slices.Compact(slices.Sorted(slices.Values(all)))) != n {
			t.Errorf("%d distinct ids for %d messages", len(slices.Compact(slices.Sorted(slices.Values(all)))), n)
		}
		wantStats(t, "after concurrent sends", e.stats("q"), store.Stats{Ready: n, SentTotal: n, OldestReady: base})
	})

	t.Run("OneLeaseOneOutcome", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		const n = 30
		e.fill("q", n)
		got := e.lease("q", n)
		if len(got) != n {
			t.Fatalf("leased %d, want %d", len(got), n)
		}
		// Two acks, or an ack and a nack, race for each lease: exactly one wins.
		var wg sync.WaitGroup
		wins := make([]int, n)
		var mu sync.Mutex // guards wins
		for i, m := range got {
			for k := range 2 {
				wg.Go(func() {
					var err error
					if k == 1 && i%2 == 0 {
						_, err = e.s.Nack(e.ctx, &store.NackParams{Queue: "q", Lease: m.Lease, Delay: ptr(time.Hour), Now: e.now, Retry: e.retry})
					} else {
						var res []error
						res, err = e.s.Ack(e.ctx, &store.AckParams{Queue: "q", Leases: []string{m.Lease}, Now: e.now})
						if err == nil {
							err = res[0]
						}
					}
					switch {
					case err == nil:
						mu.Lock()
						wins[i]++
						mu.Unlock()
					case !errors.Is(err, store.ErrLeaseExpired):
						t.Errorf("losing call: %v, want ErrLeaseExpired", err)
					}
				})
			}
		}
		wg.Wait()
		for i, w := range wins {
			if w != 1 {
				t.Errorf("lease %d: %d calls succeeded, want exactly 1", i, w)
			}
		}
		s := e.stats("q")
		if s.InFlight != 0 || s.Ready != 0 || s.AckedTotal+s.Delayed != n {
			t.Errorf("stats %+v: every message should be acked or waiting to retry", s)
		}
	})

	t.Run("ExpiryRedeliversOnce", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.Backoff.Initial = 0
		e.createQueue("q", cfg)
		const n = 100
		sent := e.fill("q", n)
		if got := e.lease("q", n); len(got) != n {
			t.Fatalf("leased %d, want %d", len(got), n)
		}
		// Long after every lease expired, Ticks and Leases race to release
		// them: each message comes back exactly once, at attempt 2.
		e.advance(time.Hour)
		var mu sync.Mutex // guards seen
		seen := map[string]int{}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for {
					if w%3 == 0 {
						if _, err := e.s.Tick(e.ctx, &store.TickParams{Now: e.now, Retry: e.retry}); err != nil {
							t.Errorf("Tick: %v", err)
							return
						}
					}
					res, err := e.s.Lease(e.ctx, &store.LeaseParams{Queue: "q", Max: 3, Visibility: time.Hour, Now: e.now, Retry: e.retry})
					if err != nil {
						t.Errorf("Lease: %v", err)
						return
					}
					if len(res.Messages) == 0 {
						return
					}
					mu.Lock()
					for _, m := range res.Messages {
						seen[m.ID]++
						if m.Attempt != 2 {
							t.Errorf("message %s: attempt %d, want 2", m.ID, m.Attempt)
						}
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, id := range sent {
			if seen[id] != 1 {
				t.Errorf("message %s redelivered %d times, want once", id, seen[id])
			}
		}
	})

	t.Run("GroupsUnderConcurrency", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		const groups, per = 5, 12
		order := map[string][]string{}
		for i := range per {
			for g := range groups {
				name := fmt.Sprint("g", g)
				order[name] = append(order[name], e.send("q", gmsg(fmt.Sprint(i), name))...)
			}
		}
		var mu sync.Mutex // guards next, inFlight
		next, inFlight := map[string]int{}, map[string]bool{}
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				// Spin while other workers hold the group heads; the cap
				// only turns a store that never frees a group into a failure
				// instead of a hang.
				for empty := 0; ; {
					res, err := e.s.Lease(e.ctx, &store.LeaseParams{Queue: "q", Max: 3, Visibility: time.Hour, Now: e.now, Retry: e.retry})
					if err != nil {
						t.Errorf("Lease: %v", err)
						return
					}
					if len(res.Messages) == 0 {
						mu.Lock()
						done := 0
						for _, n := range next {
							done += n
						}
						mu.Unlock()
						if done == groups*per {
							return
						}
						if empty++; empty > 100000 {
							t.Error("no progress: group heads never became available")
							return
						}
						runtime.Gosched()
						continue
					}
					mu.Lock()
					for _, m := range res.Messages {
						g := m.Group
						if inFlight[g] {
							t.Errorf("two messages of group %s in flight at once", g)
						}
						if next[g] >= per || order[g][next[g]] != m.ID {
							t.Errorf("group %s: got %s out of order", g, m.ID)
						}
						inFlight[g] = true
						next[g]++
					}
					mu.Unlock()
					// Hold the messages a moment, so that a store handing out
					// the next of a group too early is caught above.
					runtime.Gosched()
					mu.Lock()
					for _, m := range res.Messages {
						inFlight[m.Group] = false
					}
					mu.Unlock()
					e.ackAsync(t, res.Messages)
				}
			})
		}
		wg.Wait()
		for g, n := range next {
			if n != per {
				t.Errorf("group %s: %d of %d delivered", g, n, per)
			}
		}
	})
}

// ackAsync acks ms from a worker goroutine, reporting failures with Errorf.
func (e *env) ackAsync(t *testing.T, ms []store.Message) {
	res, err := e.s.Ack(e.ctx, &store.AckParams{Queue: ms[0].Queue, Leases: leases(ms), Now: e.now})
	if err != nil {
		t.Errorf("Ack: %v", err)
		return
	}
	for i, err := range res {
		if err != nil {
			t.Errorf("Ack of %s: %v", ms[i].ID, err)
		}
	}
}
