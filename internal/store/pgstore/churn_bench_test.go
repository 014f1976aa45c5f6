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
// the run, the throughput of that tenth and the size of the messages
// table (every partition, with TOAST) and of its indexes: a design that
// bounds bloat keeps both flat however many cycles have gone by. b.N
// counts messages. Tick is called once a second of the run, as a leader's
// maintenance loop would; autovacuum runs as the server's settings and the
// tables' storage parameters (migrations) say.
//
//	go test -run '^$' -bench Churn -benchtime 2000000x -v ./internal/store/pgstore/
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
	begin := time.Now()
	start, ticked := begin, begin
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
		if time.Since(ticked) >= time.Second {
			// Tick's clock moves, as a leader's does (it paces the
			// rotator); no lease is taken between an ack and a tick.
			tickNow := now.Add(time.Since(begin))
			if _, err := s.Tick(ctx, &store.TickParams{Now: tickNow, Retry: retry}); err != nil {
				b.Fatal(err)
			}
			ticked = time.Now()
		}
		if (i+1)%(cycles/10) == 0 {
			el := time.Since(start)
			sz := sizes(b, s)
			b.Logf("after %9d messages: %6.0f msgs/s, table %7d KiB, indexes %7d KiB, dead rows %8d",
				(i+1)*len(batch), float64((cycles/10)*len(batch))/el.Seconds(), sz.table>>10, sz.indexes>>10, sz.dead)
			start = time.Now()
		}
	}
	b.StopTimer()
	sz := sizes(b, s)
	b.ReportMetric(float64(sz.table>>10), "table-KiB")
	b.ReportMetric(float64(sz.indexes>>10), "index-KiB")
}

type tableSizes struct{ table, indexes, dead int64 }

// sizes are the messages table's size (every partition, with TOAST), its
// indexes' and its dead rows as last counted by the statistics collector.
// A plain table (an older schema) counts as its own only partition.
func sizes(b *testing.B, s *pgstore.Store) tableSizes {
	var sz tableSizes
	err := pgstore.Pool(s).QueryRow(context.Background(), `WITH t AS (
			SELECT relid FROM pg_partition_tree('courier_messages') WHERE isleaf
			UNION SELECT oid FROM pg_class WHERE oid = 'courier_messages'::regclass AND relkind = 'r')
		SELECT coalesce(sum(pg_table_size(t.relid)), 0)::bigint, coalesce(sum(pg_indexes_size(t.relid)), 0)::bigint,
			coalesce(sum(st.n_dead_tup), 0)::bigint
		FROM t LEFT JOIN pg_stat_user_tables st ON st.relid = t.relid`).Scan(&sz.table, &sz.indexes, &sz.dead)
	if err != nil {
		b.Fatal(err)
	}
	return sz
}
