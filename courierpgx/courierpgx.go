// Package courierpgx enqueues courier messages and tasks inside the
// application's own PostgreSQL transaction (pgx), for a courier cluster
// that keeps its data in that database: a message exists if and only if
// the transaction commits, together with the business change it belongs
// to. No outbox table, no two-phase commit, no message sent for an order
// that was rolled back.
//
//	tx, _ := pool.Begin(ctx)
//	tx.Exec(ctx, "INSERT INTO orders …")
//	ids, err := courierpgx.Send(ctx, tx, "emails", courier.NewMessage{Body: json.RawMessage(`{"order":42}`)})
//	…
//	tx.Commit(ctx) // the message exists from here on, and the nodes' long-polls wake up
//
// The messages mean exactly what they mean sent over HTTP: the same checks,
// the same defaults (a missing queue is created with the default settings),
// the same errors (*courier.Error, so errors.Is(err, courier.ErrInvalidArgument)
// works). Their time is the database's. A refused message changes nothing:
// each call is a savepoint, and tx stays usable.
//
// The transaction must be on the database (and schema: search_path) that
// the courier nodes use, migrated by `courier migrate`. The SDK at the
// module root stays free of dependencies; this package brings pgx.
package courierpgx

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/httpapi"
	"github.com/courierhq/courier/internal/netguard"
	"github.com/courierhq/courier/internal/store/pgstore"
)

// Send stores msgs (1 to 1000) in queue inside tx and returns their ids, in
// order. A message whose dedup_key was seen within the queue's window is
// not stored again; its id is the first message's.
func Send(ctx context.Context, tx pgx.Tx, queue string, msgs ...courier.NewMessage) ([]string, error) {
	bms := make([]broker.Message, len(msgs))
	for i := range msgs {
		m, err := httpapi.Message(&msgs[i])
		if err != nil {
			return nil, httpapi.ErrorOf(err)
		}
		bms[i] = m
	}
	b, err := brokerIn(ctx, tx)
	if err != nil {
		return nil, err
	}
	res, err := b.Send(ctx, queue, bms)
	if err != nil {
		return nil, httpapi.ErrorOf(err)
	}
	ids := make([]string, len(res))
	for i, r := range res {
		ids[i] = r.ID
	}
	return ids, nil
}

// SubmitTask stores a task in queue inside tx and returns its id; its
// outcome is then read like any task's (Client.GetTask, events, webhook,
// reply_to).
func SubmitTask(ctx context.Context, tx pgx.Tx, queue string, req courier.SubmitTask) (string, error) {
	tr, err := httpapi.TaskRequest(&req)
	if err != nil {
		return "", httpapi.ErrorOf(err)
	}
	b, err := brokerIn(ctx, tx)
	if err != nil {
		return "", err
	}
	t, err := b.Submit(ctx, queue, tr)
	if err != nil {
		return "", httpapi.ErrorOf(err)
	}
	return t.ID, nil
}

// brokerIn is a broker over tx, on the database's clock.
func brokerIn(ctx context.Context, tx pgx.Tx) (*broker.Broker, error) {
	st, err := pgstore.InTx(ctx, tx)
	if err != nil {
		return nil, err
	}
	var now time.Time
	if err := tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return nil, err
	}
	guard, err := netguard.New(nil) // webhooks reach public addresses only, as the server's default
	if err != nil {
		return nil, err
	}
	return broker.New(st, broker.Options{Clock: fixed{now}, CheckURL: guard.CheckURL}), nil
}

// fixed is a clock stopped at the database's time of the call: one call
// stamps all it stores with one time, as a verb of the server does.
type fixed struct{ now time.Time }

func (f fixed) Now() time.Time                     { return f.now }
func (fixed) NewTimer(d time.Duration) clock.Timer { return clock.Real().NewTimer(d) }
