package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/pgtest"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pgstore"
)

// BenchmarkChurn runs send+lease+ack cycles (batches of 100 messages of
// 128 bytes, a backlog of 1000 kept waiting) and reports, every tenth of
// the run, the throughput of that tenth and the size of the messages table
// and of its indexes: a design that bounds bloat keeps both flat however
// many cycles have gone by. b.N counts messages. autovacuum runs as the
// server's settings and the table's storage parameters (migrations) say.
//
//	go test -run '^$' -bench Churn -benchtime 2000000x ./internal/store/pgstore/
func BenchmarkChurn(b *testing.B) {
	ctx := context.Background()
	dsn := pgtest.Database(b, map[string]string{"synchronous_commit": "on"})
	s, err := pgstore.Open(ctx, pgstore.Options{DSN: dsn, Migrate: true, MaxConns: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "churn", Config: queueConfig(), Now: now}); err != nil {
		b.Fatal(err)
	}
	batch := make([]store.NewMessage, 100)
	for i := range batch {
		batch[i] = store.NewMessage{Body: []byte(fmt.Sprintf("%0128d", i)), Kind: store.BodyBinary}
	}
	send := func() {
		if _, err := s.Send(ctx, &store.SendParams{Queue: "churn", Messages: batch, Now: now}); err != nil {
			b.Fatal(err)
		}
	}
	for range 10 { // the backlog
		send()
	}
	retry := func(store.QueueConfig, int, *time.Duration) (time.Duration, bool) { return 0, false }
	cycles := max(b.N/len(batch), 10)
	b.ResetTimer()
	start := time.Now()
	for i := range cycles {
		send()
		res, err := s.Lease(ctx, &store.LeaseParams{Queue: "churn", Max: len(batch), Now: now, Retry: retry})
		if err != nil {
			b.Fatal(err)
		}
		ls := make([]string, len(res.Messages))
		for j, m := range res.Messages {
			ls[j] = m.Lease
		}
		if _, err := s.Ack(ctx, &store.AckParams{Queue: "churn", Leases: ls, Now: now}); err != nil {
			b.Fatal(err)
		}
		if (i+1)%(cycles/10) == 0 {
			table, indexes := sizes(b, s)
			el := time.Since(start)
			b.Logf("after %9d messages: %8.0f msgs/s, table %6d KiB, indexes %6d KiB",
				(i+1)*len(batch), float64((cycles/10)*len(batch))/el.Seconds(), table>>10, indexes>>10)
			start = time.Now()
		}
	}
	b.StopTimer()
	table, indexes := sizes(b, s)
	b.ReportMetric(float64(table>>10), "table-KiB")
	b.ReportMetric(float64(indexes>>10), "index-KiB")
}

// sizes are the messages table's size (with TOAST) and its indexes'.
func sizes(b *testing.B, s *pgstore.Store) (table, indexes int64) {
	err := pgstore.Pool(s).QueryRow(context.Background(), `SELECT pg_table_size('courier_messages'),
		pg_indexes_size('courier_messages')`).Scan(&table, &indexes)
	if err != nil {
		b.Fatal(err)
	}
	return table, indexes
}
