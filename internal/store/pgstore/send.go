package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/internal/store"
)

// counterSlots is how many rows may hold a queue's sent and acked totals.
// A transaction counts in the slot of its connection's server process, so
// that two running at once seldom share a row: the row stays locked until
// the COMMIT's flush, and with a few slots picked at random, sends and acks
// of one request per message queued up behind each other's commits (32
// clients over 8 slots: 1.9 ms a counting statement, most of it waiting).
const counterSlots = 64

// count adds to a queue's totals when the transaction commits (queueCounts).
func count(t *txn, queue string, sent, acked int) error {
	if sent == 0 && acked == 0 {
		return nil
	}
	c := t.counts[queue]
	c[0] += int64(sent)
	c[1] += int64(acked)
	t.counts[queue] = c
	return nil
}

// queueCounts queues, for the end of t, the statements that add its
// counts to its queues' totals, in order of queue name: two transactions
// that count in the same queues take their row locks in the same order, so
// they cannot deadlock.
func queueCounts(t *txn, b *pgx.Batch) {
	if len(t.counts) == 0 {
		return
	}
	slot := int(t.backend() % counterSlots)
	for _, q := range slices.Sorted(maps.Keys(t.counts)) {
		c := t.counts[q]
		b.Queue(`INSERT INTO courier_counters (queue, slot, sent, acked) VALUES ($1, $2, $3, $4)
			ON CONFLICT (queue, slot) DO UPDATE SET sent = courier_counters.sent + excluded.sent,
			acked = courier_counters.acked + excluded.acked`, q, slot, c[0], c[1])
	}
}

func (s *Store) Send(ctx context.Context, p *store.SendParams) ([]store.SendResult, error) {
	var out []store.SendResult
	err := s.write(ctx, func(t *txn) error {
		q, err := lockQueueTracked(t, p.Queue)
		if err != nil {
			return err
		}
		out, err = send(t, q, p.Messages, us(p.Now))
		return err
	})
	return out, err
}

// row is a message about to be inserted.
type row struct {
	id  int64
	msg *store.NewMessage
}

// send stores msgs in q: dedup first, then one INSERT for every new message.
func send(t *txn, q store.Queue, msgs []store.NewMessage, now time.Time) ([]store.SendResult, error) {
	ids, err := nextIDs(t, len(msgs))
	if err != nil {
		return nil, err
	}
	out := make([]store.SendResult, len(msgs))
	var rows []row
	for i := range msgs {
		m := &msgs[i]
		if w := q.Config.DedupWindow; w > 0 && m.DedupKey != "" {
			first, dup, err := dedup(t, q.Name, m.DedupKey, ids[i], now, w)
			if err != nil {
				return nil, err
			}
			if dup {
				out[i] = store.SendResult{ID: formatID(first), Duplicate: true}
				continue
			}
		}
		rows = append(rows, row{ids[i], m})
		out[i] = store.SendResult{ID: formatID(ids[i])}
	}
	if err := insertMessages(t, q.Name, rows, now); err != nil {
		return nil, err
	}
	for _, r := range rows {
		if r.msg.Task != nil {
			if err := insertTask(t, r.id, q.Name, r.msg.Task, now); err != nil {
				return nil, err
			}
		}
	}
	if len(rows) > 0 {
		t.wakeQueue(q.Name)
		t.noteDue(q.Name, now.Add(q.Config.Retention))
		for _, r := range rows {
			if r.msg.NotBefore.After(now) {
				t.noteDue(q.Name, us(r.msg.NotBefore))
			}
		}
	}
	return out, count(t, q.Name, len(rows), 0)
}

// nextIDs takes n message numbers, in increasing order.
func nextIDs(t *txn, n int) ([]int64, error) {
	rows, err := t.Query(t.ctx, `SELECT nextval('courier_message_seq') FROM generate_series(1, $1)`, n)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	slices.Sort(ids)
	return ids, err
}

// dedup claims key for message id, unless a message claimed it less than
// window ago: then dup is true and first is that message. The claim is an
// upsert, so that two sends racing for one key cannot both win.
func dedup(t *txn, queue, key string, id int64, now time.Time, window time.Duration) (first int64, dup bool, err error) {
	tag, err := t.Exec(t.ctx, `INSERT INTO courier_dedup (queue, key, id, at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (queue, key) DO UPDATE SET id = excluded.id, at = excluded.at
		WHERE courier_dedup.at + ($5::bigint / 1000) * interval '1 microsecond' <= excluded.at`,
		queue, key, id, now, int64(window))
	if err != nil || tag.RowsAffected() == 1 {
		return 0, false, err
	}
	err = t.QueryRow(t.ctx, `SELECT id FROM courier_dedup WHERE queue = $1 AND key = $2`, queue, key).Scan(&first)
	return first, true, err
}

func insertMessages(t *txn, queue string, rows []row, now time.Time) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	ids, kinds, prios := make([]int64, n), make([]int16, n), make([]int16, n)
	bodies, headers, groups := make([][]byte, n), make([]*string, n), make([]*string, n)
	ready, delayed, tasks := make([]time.Time, n), make([]bool, n), make([]bool, n)
	for i, r := range rows {
		m := r.msg
		ids[i], kinds[i], prios[i], bodies[i] = r.id, int16(m.Kind), int16(m.Priority), m.Body
		if bodies[i] == nil {
			bodies[i] = []byte{}
		}
		h, err := encodeHeaders(m.Headers)
		if err != nil {
			return err
		}
		headers[i] = h
		if m.Group != "" {
			groups[i] = &m.Group
		}
		ready[i] = now
		if m.NotBefore.After(now) {
			ready[i], delayed[i] = us(m.NotBefore), true
		}
		tasks[i] = m.Task != nil
	}
	// The partition is the current one as this statement sees it (read
	// once); see rotate.go for why a rotation meanwhile is harmless.
	_, err := t.Exec(t.ctx, `INSERT INTO courier_messages
			(part, id, queue, body, kind, headers, priority, grp, sent_at, ready_at, delayed, is_task)
		SELECT (SELECT current FROM courier_rotation), id, $1, body, kind, headers::jsonb, priority, grp, $2, ready_at, delayed, is_task
		FROM unnest($3::bigint[], $4::bytea[], $5::smallint[], $6::text[], $7::smallint[], $8::text[],
			$9::timestamptz[], $10::boolean[], $11::boolean[])
			AS u(id, body, kind, headers, priority, grp, ready_at, delayed, is_task)`,
		queue, now, ids, bodies, kinds, headers, prios, groups, ready, delayed, tasks)
	return err
}

func encodeHeaders(h map[string]string) (*string, error) {
	if len(h) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

func decodeHeaders(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var h map[string]string
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, errors.New("message headers: " + err.Error())
	}
	if len(h) == 0 {
		return nil, nil
	}
	return h, nil
}
