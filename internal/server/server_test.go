package server_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/pgtest"
	"github.com/courierhq/courier/internal/server"
)

// The PostgreSQL tests (postgres_test.go) share one throwaway server.
func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.WithServer(m)) }

func start(t *testing.T, cfg server.Config) (*server.Server, *courier.Client) {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	s, err := server.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := courier.NewClient(s.URL())
	t.Cleanup(func() {
		c.CloseIdleConnections()
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s, c
}

func body(s string) courier.NewMessage { return courier.NewMessage{Body: []byte(`"` + s + `"`)} }

// TestDiskNearlyFull: below the free-space reserve, sends answer 503 with
// Retry-After and store nothing, while receive and ack go on; once space is
// back, sends resume, and nothing acknowledged was lost.
func TestDiskNearlyFull(t *testing.T) {
	t.Parallel()
	var free atomic.Uint64
	free.Store(1 << 40)
	_, c := start(t, server.Config{MinFreeBytes: 1 << 30, FreeBytes: func() (uint64, error) { return free.Load(), nil }})
	ctx := t.Context()
	for _, b := range []string{"a", "b"} {
		if _, err := c.Send(ctx, "q", body(b)); err != nil {
			t.Fatal(err)
		}
	}
	free.Store(1 << 29) // under the reserve
	_, err := c.Send(ctx, "q", body("refused"))
	var apiErr *courier.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 503 || apiErr.Code != courier.CodeUnavailable || apiErr.RetryAfter <= 0 {
		t.Fatalf("send on a full disk: %v; want 503 unavailable with Retry-After", err)
	}
	msgs, err := c.Receive(ctx, "q", courier.ReceiveRequest{Max: 10})
	if err != nil || len(msgs) != 2 {
		t.Fatalf("receive on a full disk: %d messages, %v; want both", len(msgs), err)
	}
	if err := c.Ack(ctx, "q", msgs[0].Lease); err != nil {
		t.Fatalf("ack on a full disk: %v", err)
	}
	if _, err := c.Nack(ctx, "q", courier.NackRequest{Lease: msgs[1].Lease, Delay: "0s"}); err != nil {
		t.Fatalf("nack on a full disk: %v", err)
	}
	free.Store(1 << 40)
	if _, err := c.Send(ctx, "q", body("c")); err != nil {
		t.Fatalf("send after space came back: %v", err)
	}
	q, err := c.GetQueue(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if q.Stats.Ready != 2 || q.Stats.SentTotal != 3 || q.Stats.AckedTotal != 1 {
		t.Fatalf("stats %+v; want b and c ready, 3 sent (the refused one not stored), 1 acked", q.Stats)
	}
}

// TestRestartKeepsState stops a server and starts another on its data.
func TestRestartKeepsState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := server.Start(t.Context(), server.Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := courier.NewClient(s.URL())
	ctx := t.Context()
	ids, err := c.SendBatch(ctx, "q", []courier.NewMessage{body("keep"), body("acked")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Receive(ctx, "q", courier.ReceiveRequest{Max: 2})
	if err != nil || len(got) != 2 {
		t.Fatal(len(got), err)
	}
	if err := c.Ack(ctx, "q", got[1].Lease); err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}

	_, c = start(t, server.Config{DataDir: dir})
	q, err := c.GetQueue(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	// The unacked message is still in flight after the restart; its lease
	// expires and it is delivered again. The acked one never returns.
	if q.Stats.InFlight != 1 || q.Stats.Ready != 0 || q.Stats.SentTotal != 2 || q.Stats.AckedTotal != 1 {
		t.Fatalf("after restart: %+v", q.Stats)
	}
	if got[0].ID != ids[0] {
		t.Fatalf("received %s first, want %s", got[0].ID, ids[0])
	}
}
