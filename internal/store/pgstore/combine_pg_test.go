package pgstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pgstore"
)

// Many callers leasing one queue at once, each carrying the acks of what it
// got before: leases go together (combine.go), and still every message goes
// out exactly once, no call gets more than it asked for, every ack is
// applied once, and the queue's totals count them all.
func TestConcurrentLeasesCombine(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgstore.Options{})
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: queueConfig(), Now: t0}); err != nil {
		t.Fatal(err)
	}
	const total = 600
	msgs := make([]store.NewMessage, total)
	for i := range msgs {
		msgs[i] = store.NewMessage{Body: []byte(fmt.Sprint(i)), Kind: store.BodyJSON}
	}
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: t0}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var acks []string
			for {
				max := 1 + rand.IntN(10)
				p := &store.LeaseParams{Queue: "q", Max: max, Now: t0, Acks: acks}
				res, err := s.Lease(ctx, p)
				if err != nil {
					t.Error(err)
					return
				}
				for i, e := range res.Acked {
					if e != nil {
						t.Errorf("ack of %s: %v", acks[i], e)
					}
				}
				if len(res.Acked) != len(acks) {
					t.Errorf("%d ack outcomes for %d acks", len(res.Acked), len(acks))
				}
				if len(res.Messages) > max {
					t.Errorf("asked for %d, got %d", max, len(res.Messages))
				}
				acks = nil
				mu.Lock()
				for _, m := range res.Messages {
					got[string(m.Body)]++
					acks = append(acks, m.Lease)
				}
				done := len(got) == total
				mu.Unlock()
				if len(res.Messages) == 0 && done {
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := range total {
		if n := got[fmt.Sprint(i)]; n != 1 {
			t.Errorf("message %d delivered %d times", i, n)
		}
	}
	q, err := s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if st := q.Stats; st.Ready != 0 || st.InFlight != 0 || st.SentTotal != total || st.AckedTotal != total {
		t.Errorf("stats %+v: want all %d sent and acked, none left", st, total)
	}
	if runs, calls := pgstore.Combined(s); runs >= calls {
		t.Errorf("%d leases ran for %d calls: none went together", runs, calls)
	}
}

// The share of a caller that gave up while its combined lease ran is handed
// back by the store the combiner is given: ready again, the attempt not
// counted.
func TestCombinedShareGivenBack(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgstore.Options{})
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: queueConfig(), Now: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: t0, Messages: []store.NewMessage{
		{Body: []byte("1"), Kind: store.BodyJSON}, {Body: []byte("2"), Kind: store.BodyJSON}}}); err != nil {
		t.Fatal(err)
	}
	p := &store.LeaseParams{Queue: "q", Max: 2, Now: t0}
	res, err := s.Lease(ctx, p)
	if err != nil || len(res.Messages) != 2 {
		t.Fatalf("Lease = %d messages, %v", len(res.Messages), err)
	}
	pgstore.GiveBack(s)(p, res.Messages)
	again, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 2, Now: t0})
	if err != nil || len(again.Messages) != 2 || again.Messages[0].Attempt != 1 || again.Messages[1].Attempt != 1 {
		t.Fatalf("after giving back: %+v, %v; want both again, attempt 1", again.Messages, err)
	}
}
