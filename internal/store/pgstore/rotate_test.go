package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/internal/pgtest"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pgstore"
)

var noRetry = func(store.QueueConfig, int, *time.Duration) (time.Duration, bool) { return 0, false }

// rotStore is a store whose rotator is driven by hand (rotate), with one
// queue "q" created.
func rotStore(t *testing.T, o pgstore.Options) *pgstore.Store {
	t.Helper()
	if o.RotateEvery == 0 {
		o.RotateEvery = -1
	}
	s := open(t, o)
	if _, err := s.CreateQueue(context.Background(), &store.CreateQueueParams{Name: "q", Config: queueConfig(), Now: t0}); err != nil {
		t.Fatal(err)
	}
	return s
}

func rotate(t *testing.T, s *pgstore.Store, now time.Time) pgstore.Rotation {
	t.Helper()
	r, err := pgstore.Rotate(context.Background(), s, now)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return r
}

func sendN(t *testing.T, s store.Store, n int, now time.Time) []string {
	t.Helper()
	msgs := make([]store.NewMessage, n)
	for i := range msgs {
		msgs[i] = store.NewMessage{Body: []byte(fmt.Sprintf(`"m%d"`, i)), Kind: store.BodyJSON}
	}
	return sendMsgs(t, s, msgs, now)
}

func sendMsgs(t *testing.T, s store.Store, msgs []store.NewMessage, now time.Time) []string {
	t.Helper()
	res, err := s.Send(context.Background(), &store.SendParams{Queue: "q", Messages: msgs, Now: now})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	ids := make([]string, len(res))
	for i, r := range res {
		ids[i] = r.ID
	}
	return ids
}

func leaseN(t *testing.T, s *pgstore.Store, n int, now time.Time) []store.Message {
	t.Helper()
	res, err := s.Lease(context.Background(), &store.LeaseParams{Queue: "q", Max: n, Visibility: time.Hour, Now: now, Retry: noRetry})
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	return res.Messages
}

func ack(t *testing.T, s *pgstore.Store, now time.Time, ms ...store.Message) {
	t.Helper()
	leases := make([]string, len(ms))
	for i, m := range ms {
		leases[i] = m.Lease
	}
	errs, err := s.Ack(context.Background(), &store.AckParams{Queue: "q", Leases: leases, Now: now})
	if err != nil {
		t.Fatalf("Ack: %v", err)
	}
	for i, e := range errs {
		if e != nil {
			t.Errorf("ack of %s: %v", ms[i].ID, e)
		}
	}
}

func ids(ms []store.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// rowsByPart counts the live rows of each partition.
func rowsByPart(t *testing.T, s *pgstore.Store) map[int]int {
	t.Helper()
	rows, err := pgstore.Pool(s).Query(context.Background(), `SELECT part, count(*) FROM courier_messages GROUP BY part`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	var p int16
	var n int
	for rows.Next() {
		if err := rows.Scan(&p, &n); err != nil {
			t.Fatal(err)
		}
		out[int(p)] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// pages is the size of partition p's heap: 0 once truncated.
func pages(t *testing.T, s *pgstore.Store, p int) int64 {
	t.Helper()
	name := fmt.Sprintf("courier_messages_%d", p)
	if p == pgstore.LongPart {
		name = "courier_messages_long"
	}
	var n int64
	if err := pgstore.Pool(s).QueryRow(context.Background(), `SELECT pg_relation_size($1)`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Churn fills the current partition with dead rows; once it has grown to
// RotateBytes, the rotator moves sends on to the next partition and then
// truncates the old one, whose space goes back at once.
func TestRotationTruncatesWhatChurnLeaves(t *testing.T) {
	ctx := context.Background()
	s := rotStore(t, pgstore.Options{RotateBytes: 1 << 20})
	if r := rotate(t, s, t0); r.Rotated || r.Current != 0 {
		t.Fatalf("rotation before any send: %+v", r)
	}
	// 20 bodies of 64 KiB that do not compress: 1.25 MiB of TOAST.
	rng := rand.NewChaCha8([32]byte{})
	big := make([]store.NewMessage, 20)
	for i := range big {
		big[i] = store.NewMessage{Body: make([]byte, 64<<10), Kind: store.BodyBinary}
		_, _ = rng.Read(big[i].Body)
	}
	sendMsgs(t, s, big[:2], t0)
	ack(t, s, t0, leaseN(t, s, 10, t0)...)
	if r := rotate(t, s, t0); r.Rotated {
		t.Fatalf("rotation at 128 KiB of bodies: %+v, want none below 1 MiB", r)
	}
	sendMsgs(t, s, big[2:], t0)
	ack(t, s, t0, leaseN(t, s, 20, t0)...)
	if r := rotate(t, s, t0); !r.Rotated || r.Current != 1 {
		t.Fatalf("at 1.25 MiB of bodies: %+v, want a rotation to 1", r)
	}
	if r := rotate(t, s, t0); !slices.Equal(r.Truncated, []int{0}) || r.Rotated {
		t.Fatalf("next run: %+v, want partition 0 truncated and no rotation", r)
	}
	if n := pages(t, s, 0); n != 0 {
		t.Errorf("partition 0 has %d bytes after its truncation", n)
	}
	sendN(t, s, 3, t0)
	if got := rowsByPart(t, s); !maps.Equal(got, map[int]int{1: 3}) {
		t.Errorf("rows by partition after the rotation: %v, want the 3 new ones in 1", got)
	}
	if r := rotate(t, s, t0); r.Rotated || len(r.Truncated) != 0 {
		t.Errorf("3 small sends later: %+v, want nothing done", r)
	}
	// By time: a rotation after RotateEvery, if anything was sent.
	s2 := rotStore(t, pgstore.Options{RotateBytes: -1, RotateEvery: time.Minute})
	later := time.Now().Add(2 * time.Minute) // the migration stamped the database's now
	if r := rotate(t, s2, later); r.Rotated {
		t.Errorf("rotation by time with nothing sent: %+v", r)
	}
	sendN(t, s2, 1, t0)
	if r := rotate(t, s2, later); !r.Rotated {
		t.Errorf("rotation by time after a send: %+v", r)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

// Messages still alive two rotations after they were sent (in flight,
// waiting in a group, delayed, or simply not received yet) are moved to the
// long-lived partition, a bounded batch per run; then their partition is
// truncated. Nothing about them changes: leases, group order, delays.
func TestRotationMovesLeftovers(t *testing.T) {
	s := rotStore(t, pgstore.Options{RotateBytes: 1})
	pgstore.SetRotator(s, 2, time.Second)
	inFlight := sendN(t, s, 1, t0)
	held := leaseN(t, s, 1, t0)
	if len(held) != 1 || held[0].ID != inFlight[0] {
		t.Fatalf("leased %v, want %v", ids(held), inFlight)
	}
	left := sendMsgs(t, s, []store.NewMessage{
		{Body: []byte(`"g1"`), Kind: store.BodyJSON, Group: "g"},
		{Body: []byte(`"g2"`), Kind: store.BodyJSON, Group: "g"},
		{Body: []byte(`"later"`), Kind: store.BodyJSON, NotBefore: t0.Add(time.Hour)},
		{Body: []byte(`"plain"`), Kind: store.BodyJSON},
	}, t0)
	g1, g2, later, plain := left[0], left[1], left[2], left[3]
	if r := rotate(t, s, t0); !r.Rotated || r.Moved != 0 {
		t.Fatalf("first rotation: %+v", r)
	}
	sendN(t, s, 3, t0) // partition 1's share, to make the next rotation due
	if r := rotate(t, s, t0); !r.Rotated || r.Current != 2 || r.Moved != 0 {
		t.Fatalf("second rotation: %+v", r)
	}
	// Partition 0 is now two rotations old: its 5 rows move, 2 per run.
	moved := 0
	for run := 0; pages(t, s, 0) != 0; run++ {
		if run == 5 {
			t.Fatalf("partition 0 not truncated after %d runs; rows %v", run, rowsByPart(t, s))
		}
		r := rotate(t, s, t0)
		if r.Moved > 2 {
			t.Errorf("run %d moved %d rows, more than the batch of 2", run, r.Moved)
		}
		moved += r.Moved
	}
	if moved != 5 {
		t.Errorf("moved %d rows, want 5", moved)
	}
	if got := rowsByPart(t, s); got[pgstore.LongPart] != 5 || got[0] != 0 {
		t.Errorf("rows by partition: %v, want 5 in the long-lived one", got)
	}
	// The lease taken before the move still holds, and only it.
	ack(t, s, t0, held...)
	// Group order and delays survive: g1 and plain (and the 3 fillers) now;
	// g2 after g1 is acked; "later" after its hour.
	got := leaseN(t, s, 10, t0)
	var gotIDs []string
	for _, m := range got {
		if m.ID == g1 || m.ID == g2 || m.ID == later || m.ID == plain {
			gotIDs = append(gotIDs, m.ID)
		}
	}
	if !slices.Equal(gotIDs, []string{g1, plain}) {
		t.Errorf("leased %v of the moved ones, want g1 and plain %v", gotIDs, []string{g1, plain})
	}
	ack(t, s, t0, got...)
	if got := leaseN(t, s, 10, t0); !slices.Equal(ids(got), []string{g2}) {
		t.Errorf("after g1: leased %v, want g2 %s", ids(got), g2)
	} else {
		ack(t, s, t0, got...)
	}
	if got := leaseN(t, s, 10, t0.Add(time.Hour)); !slices.Equal(ids(got), []string{later}) {
		t.Errorf("an hour later: leased %v, want %s", ids(got), later)
	} else {
		ack(t, s, t0, got...)
	}
	// The long-lived partition, empty now, is truncated too.
	if r := rotate(t, s, t0); !slices.Contains(r.Truncated, pgstore.LongPart) {
		t.Errorf("run after the long-lived partition emptied: %+v, want it truncated", r)
	}
}

// TRUNCATE never takes a row that a transaction still running inserted into
// the partition just rotated out (here an application's transaction, the
// transactional enqueue): while it runs, the truncation's lock is not
// granted and the truncation is postponed; once it commits, the partition
// holds a live row and is left alone.
func TestTruncationSparesAnInsertInFlight(t *testing.T) {
	ctx := context.Background()
	s := rotStore(t, pgstore.Options{RotateBytes: 1})
	pgstore.SetRotator(s, 100, 20*time.Millisecond)
	tx, err := pgstore.Pool(s).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	in, err := pgstore.InTx(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	id := sendN(t, in, 1, t0)[0]
	if r := rotate(t, s, t0); !r.Rotated {
		t.Fatalf("rotation: %+v", r)
	}
	if r := rotate(t, s, t0); len(r.Truncated) != 0 || !slices.Equal(r.Postponed, []int{0}) {
		t.Fatalf("run beside the open transaction: %+v, want partition 0 postponed", r)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if r := rotate(t, s, t0.Add(time.Hour)); len(r.Truncated) != 0 || len(r.Postponed) != 0 {
		t.Fatalf("run after the commit: %+v, want nothing truncated", r)
	}
	if got := leaseN(t, s, 10, t0); !slices.Equal(ids(got), []string{id}) {
		t.Fatalf("leased %v, want the message sent in the transaction %s", ids(got), id)
	}
}

// The same race, one step later: the unlocked look finds the partition
// empty, the truncation waits for its lock, and meanwhile the inserting
// transaction commits. The look under the lock sees the row.
func TestTruncationLooksAgainUnderItsLock(t *testing.T) {
	ctx := context.Background()
	s := rotStore(t, pgstore.Options{RotateBytes: 1})
	pgstore.SetRotator(s, 100, time.Minute)
	tx, err := pgstore.Pool(s).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	in, err := pgstore.InTx(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	id := sendN(t, in, 1, t0)[0]
	if r := rotate(t, s, t0); !r.Rotated {
		t.Fatalf("rotation: %+v", r)
	}
	done := make(chan pgstore.Rotation, 1)
	go func() {
		r, err := pgstore.Rotate(ctx, s, t0)
		if err != nil {
			t.Errorf("Rotate: %v", err)
		}
		done <- r
	}()
	waitLockWait(t, s, "courier_messages_0")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-done; len(r.Truncated) != 0 {
		t.Fatalf("run that waited for its lock: %+v, want nothing truncated", r)
	}
	if got := leaseN(t, s, 10, t0); !slices.Equal(ids(got), []string{id}) {
		t.Fatalf("leased %v, want %s", ids(got), id)
	}
}

// waitLockWait waits until a session waits for a lock on table. PostgreSQL
// signals lock waits to nobody, so this asks pg_locks until it says so.
func waitLockWait(t *testing.T, s *pgstore.Store, table string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting bool
		err := pgstore.Pool(s).QueryRow(context.Background(), `SELECT EXISTS (SELECT FROM pg_locks
			WHERE relation = $1::regclass AND NOT granted)`, table).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobody waits for a lock on %s", table)
		}
	}
}

// An ack looks for its messages in the current partition first, and
// everywhere for those not there: a message moved to the long-lived
// partition after it was leased, and messages of a partition rotated out,
// are acked with the rest of their batch; a stale lease is refused either
// way.
func TestAckOutsideCurrentPartition(t *testing.T) {
	ctx := context.Background()
	s := rotStore(t, pgstore.Options{RotateBytes: 1})
	sendN(t, s, 3, t0)
	held := leaseN(t, s, 3, t0)
	if len(held) != 3 {
		t.Fatalf("leased %d, want 3", len(held))
	}
	moved, err := pgstore.Pool(s).Exec(ctx,
		`UPDATE courier_messages SET part = $1 WHERE id = (SELECT min(id) FROM courier_messages)`, pgstore.LongPart)
	if err != nil || moved.RowsAffected() != 1 {
		t.Fatalf("moving a message: %v, %d rows", err, moved.RowsAffected())
	}
	ack(t, s, t0, held[2]) // in the current partition
	if r := rotate(t, s, t0); !r.Rotated || r.Current != 1 {
		t.Fatalf("rotation: %+v, want partition 1 current", r)
	}
	ack(t, s, t0, held[0], held[1]) // moved, and in a partition rotated out
	if got := rowsByPart(t, s); len(got) != 0 {
		t.Errorf("rows left after the acks: %v", got)
	}
	errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{held[0].Lease, held[2].Lease}, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if !errors.Is(e, store.ErrLeaseExpired) {
			t.Errorf("second ack %d: %v, want ErrLeaseExpired", i, e)
		}
	}
}

// Senders and consumers run while the rotator rotates, moves and truncates
// as fast as it can, until it has gone around the ring (so truncated
// partitions took sends again). Every message sent is received and acked
// exactly once (nothing acknowledged is lost, nothing comes back),
// including a message held across rotations and a delayed one, both moved.
func TestRotationUnderTraffic(t *testing.T) {
	ctx := context.Background()
	// Bodies of 512 bytes: a rotation every few hundred messages.
	s := rotStore(t, pgstore.Options{RotateBytes: 256 << 10, MaxConns: 8})
	// A lock timeout below deadlock_timeout (1s): a truncation queued
	// behind traffic gives up before any deadlock is looked for.
	pgstore.SetRotator(s, 15, 200*time.Millisecond)
	delayed := sendMsgs(t, s, []store.NewMessage{{Body: []byte(`"later"`), Kind: store.BodyJSON, NotBefore: t0.Add(time.Hour)}}, t0)[0]
	sendN(t, s, 1, t0)
	held := leaseN(t, s, 1, t0)

	tr := newTraffic(s, 100)
	tr.run(t, 2, 2)
	var total pgstore.Rotation
	runs, rotations := 0, 0
	deadline := time.Now().Add(time.Minute)
	for stopped := false; !tr.consumed(); {
		if !stopped && (rotations >= 2*4 || time.Now().After(deadline)) {
			close(tr.stop) // twice around the ring: let the consumers finish
			stopped = true
		}
		r, err := pgstore.Rotate(ctx, s, t0.Add(time.Duration(runs)*2*time.Minute)) // past any backoff
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		runs++
		total.Moved += r.Moved
		total.Truncated = append(total.Truncated, r.Truncated...)
		total.Postponed = append(total.Postponed, r.Postponed...)
		if r.Rotated {
			rotations++
		}
	}
	tr.wait()
	for range 3 {
		if _, err := pgstore.Rotate(ctx, s, t0.Add(time.Duration(runs+1)*2*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}

	// The held and the delayed messages were moved, and still behave.
	ack(t, s, t0, held...)
	if got := leaseN(t, s, 10, t0.Add(time.Hour)); !slices.Equal(ids(got), []string{delayed}) {
		t.Errorf("after the run, an hour later: leased %v, want the delayed %s", ids(got), delayed)
	} else {
		ack(t, s, t0.Add(time.Hour), got...)
	}
	tr.check(t)
	t.Logf("%d runs: %d rotations, %d rows moved, %d truncations, %d postponed; %d messages",
		runs, rotations, total.Moved, len(total.Truncated), len(total.Postponed), len(tr.sent))
	if rotations < 2*4 || total.Moved == 0 {
		t.Errorf("the rotator did too little to test anything in a minute: %d rotations, %d moved", rotations, total.Moved)
	}
	if got := rowsByPart(t, s); len(got) != 0 {
		t.Errorf("rows left: %v", got)
	}
}

// traffic is senders and consumers of queue "q", recording what was sent
// and acked. The senders keep at most a backlog's worth of messages unacked,
// as a system whose consumers keep up does.
type traffic struct {
	s    *pgstore.Store
	stop chan struct{} // closed: senders stop; consumers stop once all is acked
	room chan struct{} // a token per message that may still be sent

	sendWG, consumeWG sync.WaitGroup
	sendsDone         chan struct{}

	mu    sync.Mutex // guards sent, acked
	sent  map[string]bool
	acked map[string]int
}

var body512 = make([]byte, 512)

func newTraffic(s *pgstore.Store, backlog int) *traffic {
	tr := &traffic{s: s, stop: make(chan struct{}), room: make(chan struct{}, backlog),
		sent: map[string]bool{}, acked: map[string]int{}}
	for range backlog {
		tr.room <- struct{}{}
	}
	return tr
}

func (tr *traffic) run(t *testing.T, senders, consumers int) {
	tr.sendsDone = make(chan struct{})
	for range senders {
		tr.sendWG.Go(func() { tr.send(t) })
	}
	go func() { tr.sendWG.Wait(); close(tr.sendsDone) }()
	for range consumers {
		tr.consumeWG.Go(func() { tr.consume(t) })
	}
}

func (tr *traffic) send(t *testing.T) {
	ctx := context.Background()
	for {
		msgs := make([]store.NewMessage, 10)
		for i := range msgs {
			select {
			case <-tr.stop:
				for range i {
					tr.room <- struct{}{}
				}
				return
			case <-tr.room:
			}
			msgs[i] = store.NewMessage{Body: body512, Kind: store.BodyBinary}
		}
		res, err := tr.s.Send(ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: t0})
		if err != nil {
			t.Errorf("Send: %v", err)
			return
		}
		tr.mu.Lock()
		for _, r := range res {
			tr.sent[r.ID] = true
		}
		tr.mu.Unlock()
	}
}

func (tr *traffic) consume(t *testing.T) {
	ctx := context.Background()
	for !tr.consumed() {
		res, err := tr.s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 7, Visibility: time.Hour, Now: t0, Retry: noRetry})
		if err != nil {
			t.Errorf("Lease: %v", err)
			return
		}
		if len(res.Messages) == 0 {
			continue
		}
		leases := make([]string, len(res.Messages))
		for i, m := range res.Messages {
			leases[i] = m.Lease
		}
		errs, err := tr.s.Ack(ctx, &store.AckParams{Queue: "q", Leases: leases, Now: t0})
		if err != nil {
			t.Errorf("Ack: %v", err)
			return
		}
		tr.mu.Lock()
		for i, e := range errs {
			if e != nil {
				t.Errorf("ack of %s: %v", res.Messages[i].ID, e)
			}
			tr.acked[res.Messages[i].ID]++
			tr.room <- struct{}{}
		}
		tr.mu.Unlock()
	}
}

// consumed reports whether the senders have stopped and all they sent was
// acked (or a consumer gave up on an error).
func (tr *traffic) consumed() bool {
	select {
	case <-tr.sendsDone:
	default:
		return false
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.acked) >= len(tr.sent)
}

func (tr *traffic) wait() {
	tr.sendWG.Wait()
	tr.consumeWG.Wait()
}

// check: every message sent was acked exactly once, and nothing else was.
func (tr *traffic) check(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for id := range tr.sent {
		if tr.acked[id] != 1 {
			t.Errorf("message %s acked %d times, want once", id, tr.acked[id])
		}
	}
	for id := range tr.acked {
		if !tr.sent[id] {
			t.Errorf("acked %s, which was never sent", id)
		}
	}
}

// Messages of a version 1 schema (one plain table) survive the migration to
// the partitioned one: ready, delayed, in flight (its lease still valid)
// and dead-lettered, and numbering goes on where it was.
func TestMigrationKeepsMessages(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	if _, err := pgstore.MigrateTo(ctx, dsn, 1); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`INSERT INTO courier_queues (name, visibility_ns, max_attempts, backoff_initial_ns, backoff_max_ns,
			backoff_multiplier, backoff_jitter, dead_letter_queue, retention_ns, max_message_bytes, dedup_window_ns, created_at)
			VALUES ('q', 30e9, 5, 1e9, 60e9, 2, 0, '', 3600e9 * 24, 1048576, 0, '2026-03-01 12:00:00Z'),
			       ('q.dead', 30e9, 5, 1e9, 60e9, 2, 0, '', 3600e9 * 24, 1048576, 0, '2026-03-01 12:00:00Z')`,
		`SELECT setval('courier_message_seq', 10), setval('courier_lease_seq', 7)`,
		`INSERT INTO courier_messages (id, queue, body, kind, priority, sent_at, ready_at, delayed, attempt, lease, lease_exp, dead_from, is_task) VALUES
			(1, 'q', '"ready"', 1, 0, '2026-03-01 12:00:00Z', '2026-03-01 12:00:00Z', false, 0, NULL, NULL, NULL, false),
			(2, 'q', '"later"', 1, 0, '2026-03-01 12:00:00Z', '2026-03-01 13:00:00Z', true, 0, NULL, NULL, NULL, false),
			(3, 'q', '"held"', 1, 0, '2026-03-01 12:00:00Z', '2026-03-01 12:00:00Z', false, 1, 7, '2026-03-01 12:30:00Z', NULL, false),
			(4, 'q.dead', '"dead"', 1, 0, '2026-03-01 12:00:00Z', '2026-03-01 12:00:00Z', false, 0, NULL, NULL, 'q', false)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := open(t, pgstore.Options{DSN: dsn}) // migrates to the latest
	if got := rowsByPart(t, s); !maps.Equal(got, map[int]int{pgstore.LongPart: 4}) {
		t.Errorf("rows by partition after the migration: %v, want all 4 in the long-lived one", got)
	}
	q, err := s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if st := q.Stats; st.Ready != 1 || st.Delayed != 1 || st.InFlight != 1 || st.Dead != 1 {
		t.Errorf("stats after the migration: %+v, want 1 ready, 1 delayed, 1 in flight, 1 dead", st)
	}
	ack(t, s, t0, store.Message{ID: pgstore.FormatID(3), Lease: pgstore.FormatLease(3, 7)})
	got := leaseN(t, s, 10, t0)
	if !slices.Equal(ids(got), []string{pgstore.FormatID(1)}) {
		t.Errorf("leased %v, want the ready one", ids(got))
	}
	if n := sendN(t, s, 1, t0); n[0] != pgstore.FormatID(11) {
		t.Errorf("first id after the migration: %s, want %s", n[0], pgstore.FormatID(11))
	}
	if got := rowsByPart(t, s); got[0] != 1 {
		t.Errorf("rows by partition after a send: %v, want the new one in partition 0", got)
	}
}
