package pebblestore

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// BenchmarkReceiveAfterChurn compares receive (lease + ack, batches of 100)
// on a fresh queue with the same queue after many send+lease+ack cycles,
// which leave tombstones behind in every keyspace. The store must not slow
// down: its scans start at cursors past the consumed keys. b.N counts
// messages received; the churn happens before the timer starts.
//
//	COURIER_CHURN_CYCLES=10000000 go test -run '^$' -bench ReceiveAfterChurn -benchtime 200000x -timeout 60m ./internal/store/pebblestore/
func BenchmarkReceiveAfterChurn(b *testing.B) {
	cycles := 1_000_000
	if v := os.Getenv("COURIER_CHURN_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("COURIER_CHURN_CYCLES: %v", err)
		}
		cycles = n
	}
	for _, c := range []int{0, cycles} {
		// One store per size, churned once: the testing package runs a
		// sub-benchmark more than once (b.N=1 first), and each run drains
		// what it filled, so the store is ready for the next.
		s, tick := openWithQueue(b, Options{Dir: b.TempDir()})
		churn(b, s, c, tick)
		b.Run(fmt.Sprintf("cycles=%d", c), func(b *testing.B) { benchReceive(b, s, tick) })
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// openWithQueue opens a store with o and creates queue "q" in it; tick
// is a clock that moves a microsecond at each call. The caller closes s.
func openWithQueue(tb testing.TB, o Options) (s *Store, tick func() time.Time) {
	tb.Helper()
	s, err := Open(o)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tick = func() time.Time { now = now.Add(time.Microsecond); return now }
	if _, err := s.CreateQueue(context.Background(), &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: now}); err != nil {
		s.Close()
		tb.Fatal(err)
	}
	return s, tick
}

func batchOf(n int) []store.NewMessage {
	body := make([]byte, 128)
	msgs := make([]store.NewMessage, n)
	for i := range msgs {
		msgs[i] = store.NewMessage{Body: body, Kind: store.BodyBinary}
	}
	return msgs
}

func churn(b *testing.B, s *Store, cycles int, tick func() time.Time) {
	start := time.Now()
	for done := 0; done < cycles; done += 1000 {
		send(b, s, batchOf(1000), tick())
		drain(b, s, 1000, 1000, tick)
	}
	if cycles > 0 {
		b.Logf("%d churn cycles in %v", cycles, time.Since(start).Round(time.Second))
	}
}

func benchReceive(b *testing.B, s *Store, tick func() time.Time) {
	for left := b.N; left > 0; left -= 1000 {
		send(b, s, batchOf(min(left, 1000)), tick())
	}
	b.ResetTimer()
	t0 := time.Now()
	drain(b, s, b.N, 100, tick)
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "msgs/s")
}

func send(tb testing.TB, s *Store, msgs []store.NewMessage, now time.Time) {
	if _, err := s.Send(context.Background(), &store.SendParams{Queue: "q", Messages: msgs, Now: now}); err != nil {
		tb.Fatal(err)
	}
}

// drain leases and acks n messages, max at a time.
func drain(tb testing.TB, s *Store, n, max int, tick func() time.Time) {
	ctx := context.Background()
	for got := 0; got < n; {
		res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: max, Now: tick(), Retry: retryNow})
		if err != nil || len(res.Messages) == 0 {
			tb.Fatalf("lease after %d of %d: %d messages, %v", got, n, len(res.Messages), err)
		}
		leases := make([]string, len(res.Messages))
		for i, m := range res.Messages {
			leases[i] = m.Lease
		}
		if _, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: leases, Now: tick()}); err != nil {
			tb.Fatal(err)
		}
		got += len(res.Messages)
	}
}
