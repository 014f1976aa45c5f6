package server_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
)

// BenchmarkHTTPRoundTrip measures messages/s through the whole HTTP path on
// a real data directory: producers send batches of 128-byte messages,
// consumers receive batches (long-poll) and ack them in one request. Every
// 2xx is fsynced. b.N counts messages; "msgs/s" is sent+received+acked.
//
//	go test -run '^$' -bench HTTPRoundTrip -benchtime 200000x ./internal/server/
func BenchmarkHTTPRoundTrip(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchRoundTrip(b, batch, 4, 4) })
	}
}

func benchRoundTrip(b *testing.B, batch, producers, consumers int) {
	ctx := context.Background()
	s, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop(ctx)
	c := courier.NewClient(s.URL())
	defer c.CloseIdleConnections()
	body := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 128)))
	msgs := make([]courier.NewMessage, batch)
	for i := range msgs {
		msgs[i] = courier.NewMessage{BodyBase64: &body}
	}
	if _, err := c.PutQueue(ctx, "bench", courier.QueueSettings{}); err != nil {
		b.Fatal(err)
	}
	total := int64(b.N)
	var sent, acked atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(int64(batch)) <= total+int64(batch)-1 {
				if _, err := c.SendBatch(ctx, "bench", msgs); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for acked.Load() < total {
				got, err := c.Receive(ctx, "bench", courier.ReceiveRequest{Max: batch, Wait: "100ms"})
				if err != nil {
					b.Error(err)
					return
				}
				if len(got) == 0 {
					continue
				}
				leases := make([]string, len(got))
				for i, m := range got {
					leases[i] = m.Lease
				}
				if batch == 1 {
					err = c.Ack(ctx, "bench", leases[0])
				} else {
					_, err = c.AckBatch(ctx, "bench", leases)
				}
				if err != nil {
					b.Error(err)
					return
				}
				acked.Add(int64(len(got)))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(acked.Load())/el.Seconds(), "msgs/s")
}
