package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
	"github.com/courierhq/courier/internal/store/pebblestore/quotafs"
)

// TestDiskFull fills a small disk through the server over HTTP: a byte
// budget over an in-memory filesystem, whose writes past the budget fail
// with ENOSPC and whose free space is what the server's guard sees. Sends
// answer 503 with Retry-After before the store can fail; receive and ack go
// on; the server stays ready; sends resume once the budget is raised (an
// operator freeing space); and after a restart every message whose send was
// answered 2xx and that was not acked is there.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const budget, reserve = 24 << 20, 12 << 20
	qfs := quotafs.New(vfs.NewMem(), budget)
	cfg := server.Config{Addr: "127.0.0.1:0", DataDir: "data", FS: qfs, MinFreeBytes: reserve, CacheBytes: 1 << 20}
	s, err := server.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := courier.NewClient(s.URL())
	stored := map[string]bool{} // answered 2xx, not acked
	send := func(i int) error {
		msgs := make([]courier.NewMessage, 4)
		for j := range msgs {
			msgs[j] = body(fmt.Sprintf("m%d-%d-%s", i, j, strings.Repeat("x", 16000)))
		}
		_, err := c.SendBatch(ctx, "q", msgs)
		if err == nil {
			for _, m := range msgs {
				stored[string(m.Body)] = true
			}
		}
		return err
	}
	isFull := func(err error) bool {
		var apiErr *courier.Error
		return errors.As(err, &apiErr) && apiErr.Status == 503 && apiErr.RetryAfter > 0
	}

	refusedAt := -1
	for i := range 1000 {
		err := send(i)
		if isFull(err) {
			refusedAt = i
			break
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if refusedAt < 0 {
		t.Fatalf("1000 sends of 64 KB fit in a budget of %d bytes", budget)
	}
	t.Logf("sends answered 503 after %d batches (%d messages), %d of %d bytes used", refusedAt, len(stored), qfs.Used(), budget)

	// On the full disk: receive and ack work, the server stays ready.
	msgs, err := c.Receive(ctx, "q", courier.ReceiveRequest{Max: 10})
	if err != nil || len(msgs) != 10 {
		t.Fatalf("receive on a full disk: %d messages, %v; want 10", len(msgs), err)
	}
	leases := make([]string, len(msgs))
	for i, m := range msgs {
		leases[i] = m.Lease
	}
	if _, err := c.AckBatch(ctx, "q", leases); err != nil {
		t.Fatalf("ack on a full disk: %v", err)
	}
	for _, m := range msgs {
		delete(stored, string(m.Body))
	}
	if err := send(refusedAt); !isFull(err) {
		t.Fatalf("send on a full disk: %v; want 503 with Retry-After", err)
	}
	if q, err := c.GetQueue(ctx, "q"); err != nil || q.Stats.Ready != int64(len(stored)) {
		t.Fatalf("queue on a full disk: %+v, %v; want %d ready", q.Stats, err, len(stored))
	}

	// The operator frees space: sends resume.
	qfs.SetLimit(2 * budget)
	if err := send(refusedAt); err != nil {
		t.Fatalf("send after space was freed: %v", err)
	}
	if n := qfs.Refused(); n != 0 {
		t.Errorf("the store met a full disk %d times; its guard should refuse sends first", n)
	}
	c.CloseIdleConnections()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// Restart on the same data: nothing acknowledged is lost.
	s, err = server.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c = courier.NewClient(s.URL())
	t.Cleanup(func() {
		c.CloseIdleConnections()
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	found := 0
	for {
		msgs, err := c.Receive(ctx, "q", courier.ReceiveRequest{Max: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			if !stored[string(m.Body)] {
				t.Errorf("%.12s… received after the restart, not expected", m.Body)
			}
			found++
		}
	}
	if found != len(stored) {
		t.Errorf("received %d messages after the restart, want %d: acknowledged sends lost", found, len(stored))
	}
}
