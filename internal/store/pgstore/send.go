package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
		var err error
		if plain(p.Messages) {
			out, err = sendPlain(t, p.Queue, p.Messages, us(p.Now))
			return err
		}
		q, err := lockQueueTracked(t, p.Queue)
		if err != nil {
			return err
		}
		out, err = send(t, q, p.Messages, us(p.Now))
		return err
	})
	return out, err
}

// plain: no message of msgs has a dedup key or is a task.
func plain(msgs []store.NewMessage) bool {
	for i := range msgs {
		if msgs[i].DedupKey != "" || msgs[i].Task != nil {
			return false
		}
	}
	return true
}

// sendPlain is send for plain messages (no dedup key, no task) in one round
// trip before the COMMIT's, where send takes four (BEGIN, the queue's lock,
// the ids, the INSERT): the INSERT takes the ids from the sequence itself,
// in the messages' order. One request per message spends most of its time
// in round trips. Should the queue be missing, the INSERT's rows go with
// the rollback.
func sendPlain(t *txn, queue string, msgs []store.NewMessage, now time.Time) ([]store.SendResult, error) {
	rows := make([]row, len(msgs))
	for i := range msgs {
		rows[i].msg = &msgs[i]
	}
	args, err := insertArgs(queue, rows, now)
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	b.Queue(lockQueueSQL, queue)
	b.Queue(insertSQL(`nextval('courier_message_seq')`, ``)+` RETURNING id`, args...)
	br := t.SendBatch(t.ctx, b)
	var q store.Queue
	var ids []int64
	err = func() error {
		if q, err = scanQueue(br.QueryRow()); err != nil {
			return err
		}
		r, err := br.Query()
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(r, pgx.RowTo[int64])
		return err
	}()
	if err := errors.Join(err, br.Close()); err != nil {
		return nil, err
	}
	if len(ids) != len(msgs) {
		return nil, fmt.Errorf("pgstore: send inserted %d messages of %d", len(ids), len(msgs))
	}
	out := make([]store.SendResult, len(msgs))
	for i, id := range ids {
		// The rows come back in the order inserted, the messages' order, and
		// the ids were taken in that order: increasing, as send's. Should a
		// plan ever do otherwise, the send fails rather than pair a message
		// with another's id.
		if i > 0 && id <= ids[i-1] {
			return nil, errors.New("pgstore: send: ids not in the messages' order")
		}
		out[i] = store.SendResult{ID: formatID(id)}
		rows[i].id = id
	}
	noteSent(t, q, rows, now)
	return out, count(t, queue, len(rows), 0)
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
	noteSent(t, q, rows, now)
	return out, count(t, q.Name, len(rows), 0)
}

// noteSent tells t what the messages of rows, stored in q, make available
// and due.
func noteSent(t *txn, q store.Queue, rows []row, now time.Time) {
	if len(rows) == 0 {
		return
	}
	t.wakeQueue(q.Name)
	t.noteDue(q.Name, now.Add(q.Config.Retention))
	for _, r := range rows {
		if r.msg.NotBefore.After(now) {
			t.noteDue(q.Name, us(r.msg.NotBefore))
		}
	}
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
	args, err := insertArgs(queue, rows, now)
	if err != nil {
		return err
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.id
	}
	_, err = t.Exec(t.ctx, insertSQL(`id`, `$11::bigint[]`), append(args, ids)...)
	return err
}

// insertSQL inserts the messages of insertArgs, with ids from idExpr (a
// column of the unnest, or an expression). The partition is the current
// one as the statement sees it (read once); see rotate.go for why a
// rotation meanwhile is harmless.
func insertSQL(idExpr, idArray string) string {
	cols := `body, kind, headers, priority, grp, ready_at, delayed, is_task`
	from := `unnest($3::bytea[], $4::smallint[], $5::text[], $6::smallint[], $7::text[],
			$8::timestamptz[], $9::boolean[], $10::boolean[]`
	if idArray != "" {
		cols, from = cols+`, id`, from+`, `+idArray
	}
	return `INSERT INTO courier_messages
			(part, id, queue, body, kind, headers, priority, grp, sent_at, ready_at, delayed, is_task)
		SELECT (SELECT current FROM courier_rotation), ` + idExpr + `, $1, body, kind, headers::jsonb, priority, grp, $2, ready_at, delayed, is_task
		FROM ` + from + `) AS u(` + cols + `)`
}

// insertArgs are the arguments $1 to $10 of insertSQL for rows.
func insertArgs(queue string, rows []row, now time.Time) ([]any, error) {
	n := len(rows)
	kinds, prios := make([]int16, n), make([]int16, n)
	bodies, headers, groups := make([][]byte, n), make([]*string, n), make([]*string, n)
	ready, delayed, tasks := make([]time.Time, n), make([]bool, n), make([]bool, n)
	for i, r := range rows {
		m := r.msg
		kinds[i], prios[i], bodies[i] = int16(m.Kind), int16(m.Priority), m.Body
		if bodies[i] == nil {
			bodies[i] = []byte{}
		}
		h, err := encodeHeaders(m.Headers)
		if err != nil {
			return nil, err
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
	return []any{queue, now, bodies, kinds, headers, prios, groups, ready, delayed, tasks}, nil
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
