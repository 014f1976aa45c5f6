package pebblestore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// TestHandoffStress: receivers that lease, else claim and wait a little,
// against concurrent senders: every message is delivered exactly once, and
// no claim is left registered.
func TestHandoffStress(t *testing.T) {
	s := handoffStore(t, vfs.NewMem())
	ctx := context.Background()
	const senders, perSender, receivers = 4, 200, 6
	total := senders * perSender
	var mu sync.Mutex
	seen := map[string]int{}
	got := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < receivers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			note := func(ms []store.Message) {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range ms {
					seen[m.ID]++
					got++
				}
				if len(ms) > 0 && got == total {
					close(stop)
				}
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1 + r%3, Now: handoffNow, Retry: retryNow})
				if err != nil {
					t.Error(err)
					return
				}
				if len(res.Messages) > 0 {
					note(res.Messages)
					continue
				}
				w := s.Watch("q")
				c := s.Claim(&store.LeaseParams{Queue: "q", Max: 1 + r%3})
				if c == nil {
					t.Error("no claim")
					return
				}
				tm := time.NewTimer(time.Duration(r%3) * time.Millisecond)
				select {
				case <-c.Done():
				case <-w:
				case <-tm.C:
				case <-stop:
				}
				tm.Stop()
				ms, err := c.Withdraw()
				if err != nil {
					t.Error(err)
					return
				}
				note(ms)
			}
		}(r)
	}
	var sw sync.WaitGroup
	for i := 0; i < senders; i++ {
		sw.Add(1)
		go func() {
			defer sw.Done()
			for j := 0; j < perSender; j++ {
				if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: handoffNow,
					Messages: []store.NewMessage{{Body: []byte(`1`), Kind: store.BodyJSON}}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	sw.Wait()
	select {
	case <-stop:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Fatalf("received %d of %d", got, total)
	}
	wg.Wait()
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	if len(seen) != total {
		t.Errorf("%d distinct of %d", len(seen), total)
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if len(s.claims) != 0 {
		t.Errorf("claims left: %v", s.claims)
	}
}
