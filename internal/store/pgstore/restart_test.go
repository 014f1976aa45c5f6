package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/pgtest"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pgstore"
)

// PostgreSQL restarted under load: sends go on throughout; while the
// server is away they fail as unavailable (or, for a commit cut off on its
// way, as of unknown outcome), never otherwise; once it is back the store
// serves again on new connections, and every send that was acknowledged is
// there.
func TestPostgresRestartUnderLoad(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtest.Start(ctx) // a server of its own, to restart
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	s := open(t, pgstore.Options{DSN: srv.DSN(), MaxConns: 4})
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: queueConfig(), Now: t0}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // guards acked, unknown, failed
	acked := map[string]bool{}
	var unknown, failed int
	stop := make(chan struct{})
	progress := make(chan struct{}, 1) // signalled after each acknowledged send
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				res, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: t0,
					Messages: []store.NewMessage{{Body: fmt.Appendf(nil, `"%d-%d"`, w, i), Kind: store.BodyJSON}}})
				mu.Lock()
				switch {
				case err == nil:
					acked[res[0].ID] = true
					select {
					case progress <- struct{}{}:
					default:
					}
				case errors.Is(err, store.ErrOutcomeUnknown):
					unknown++
				case errors.Is(err, store.ErrUnavailable):
					failed++
				default:
					t.Errorf("send during a restart: %v, want success, unavailable or unknown", err)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond) // a client's backoff, not a wait for a condition
				}
			}
		})
	}
	waitAcked := func(n int) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n {
				return
			}
			select {
			case <-progress:
			case <-deadline:
				t.Fatalf("only %d sends acknowledged, want %d", got, n)
			}
		}
	}
	waitAcked(50)
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	waitAcked(before + 50) // the store serves again
	close(stop)
	wg.Wait()

	var got map[string]bool
	for range 10 { // reads may meet a connection from before the restart
		got, err = leaseAll(ctx, s)
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	for id := range acked {
		if !got[id] {
			t.Errorf("acknowledged send %s lost over the restart", id)
		}
	}
	t.Logf("%d acknowledged, %d failed as unavailable, %d unknown", len(acked), failed, unknown)
}

func leaseAll(ctx context.Context, s *pgstore.Store) (map[string]bool, error) {
	got := map[string]bool{}
	retry := func(store.QueueConfig, int, *time.Duration) (time.Duration, bool) { return 0, false }
	for {
		res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 500, Visibility: time.Hour, Now: t0, Retry: retry})
		if err != nil {
			return nil, err
		}
		if len(res.Messages) == 0 {
			return got, nil
		}
		for _, m := range res.Messages {
			got[m.ID] = true
		}
	}
}
