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
	"github.com/courierhq/courier/internal/pgtest"
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

// BenchmarkPostgresNodes measures the same round trip on one, two and three
// nodes over one PostgreSQL database (the throwaway server of the tests, on
// a database with synchronous_commit back on, so that every 2xx is a
// durable commit). Producers and consumers are spread over the nodes.
//
//	go test -run '^$' -bench PostgresNodes -benchtime 100000x ./internal/server/
func BenchmarkPostgresNodes(b *testing.B) {
	for _, batch := range []int{1, 100} {
		for nodes := 1; nodes <= 3; nodes++ {
			b.Run(fmt.Sprintf("batch=%d/nodes=%d", batch, nodes), func(b *testing.B) {
				dsn := pgtest.Database(b, map[string]string{"synchronous_commit": "on"})
				cfgs := make([]server.Config, nodes)
				for i := range cfgs {
					cfgs[i] = server.Config{Addr: "127.0.0.1:0", Store: dsn, Migrate: true}
				}
				benchRoundTripOn(b, cfgs, batch, 4, 4)
			})
		}
	}
}

func benchRoundTrip(b *testing.B, batch, producers, consumers int) {
	benchRoundTripOn(b, []server.Config{{Addr: "127.0.0.1:0", DataDir: b.TempDir()}}, batch, producers, consumers)
}

// benchRoundTripOn starts a server per config; client i talks to node i mod n.
func benchRoundTripOn(b *testing.B, cfgs []server.Config, batch, producers, consumers int) {
	b.Cleanup(server.TuneGCAsServe()) // as courier serve runs
	ctx := context.Background()
	var clients []*courier.Client
	for _, cfg := range cfgs {
		s, err := server.Start(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Stop(ctx)
		c := courier.NewClient(s.URL())
		defer c.CloseIdleConnections()
		clients = append(clients, c)
	}
	c := clients[0]
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
	for p := range producers {
		c := clients[p%len(clients)]
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
	for k := range consumers {
		c := clients[k%len(clients)]
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
