package storetest

import (
	"errors"
	"testing"

	"github.com/courierhq/courier/internal/store"
)

func testClose(t *testing.T, newStore newStoreFunc) {
	t.Run("CallsAfterClose", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.sendText("q", "1", "2")
		m := e.lease("q", 1)[0]
		if err := e.s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		ctx, now, s := e.ctx, e.now, e.s
		calls := []struct {
			name string
			call func() error
		}{
			{"Send", func() error {
				_, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: []store.NewMessage{msg("3")}, Now: now})
				return err
			}},
			{"Lease", func() error {
				_, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Now: now, Retry: e.retry})
				return err
			}},
			{"Ack", func() error {
				res, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{m.Lease}, Now: now})
				if err == nil && len(res) == 1 {
					err = res[0]
				}
				return err
			}},
			{"Nack", func() error {
				_, err := s.Nack(ctx, &store.NackParams{Queue: "q", Lease: m.Lease, Now: now, Retry: e.retry})
				return err
			}},
			{"Extend", func() error {
				_, err := s.Extend(ctx, &store.ExtendParams{Queue: "q", Lease: m.Lease, Now: now})
				return err
			}},
			{"CreateQueue", func() error {
				_, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "new", Config: config(), Now: now})
				return err
			}},
			{"UpdateQueue", func() error {
				_, err := s.UpdateQueue(ctx, &store.UpdateQueueParams{Name: "q", Config: config(), Now: now})
				return err
			}},
			{"GetQueue", func() error {
				_, err := s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: now})
				return err
			}},
			{"ListQueues", func() error {
				_, err := s.ListQueues(ctx, &store.ListQueuesParams{Now: now})
				return err
			}},
			{"PurgeQueue", func() error {
				_, err := s.PurgeQueue(ctx, &store.PurgeQueueParams{Name: "q", Now: now})
				return err
			}},
			{"SetPaused", func() error {
				_, err := s.SetPaused(ctx, &store.SetPausedParams{Name: "q", Paused: true, Now: now})
				return err
			}},
			{"Redrive", func() error {
				_, err := s.Redrive(ctx, &store.RedriveParams{Queue: "q", Max: 1, Now: now})
				return err
			}},
			{"Tick", func() error {
				_, err := s.Tick(ctx, &store.TickParams{Now: now, Retry: e.retry})
				return err
			}},
			{"DeleteQueue", func() error { return s.DeleteQueue(ctx, &store.DeleteQueueParams{Name: "q"}) }},
			{"Ready", func() error { return s.Ready(ctx) }},
		}
		for _, c := range calls {
			err := c.call()
			if !errors.Is(err, store.ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", c.name, err)
			}
		}
		// Watch has no error to return; it must not panic.
		_ = s.Watch("q")
		// Choice: a second Close is harmless: nil or ErrClosed.
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("second Close: %v", err)
		}
	})
}
