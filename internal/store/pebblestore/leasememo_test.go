package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// keysOf counts the stored keys of tag in the queue with id qid.
func keysOf(t *testing.T, s *Store, tag byte, qid uint32) int {
	t.Helper()
	pre := qprefix(tag, qid)
	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.SeekGE(pre); ok && bytes.HasPrefix(it.Key(), pre); ok = it.Next() {
		n++
	}
	return n
}

// leaseUpTo leases up to max messages of q for a minute.
func leaseUpTo(t *testing.T, s *Store, now time.Time, max int) []store.Message {
	t.Helper()
	res, err := s.Lease(context.Background(), &store.LeaseParams{Queue: "q", Max: max, Visibility: time.Minute, Now: now, Retry: retryNow})
	if err != nil {
		t.Fatal(err)
	}
	return res.Messages
}

func ackLeases(t *testing.T, s *Store, now time.Time, leases ...string) []error {
	t.Helper()
	res, err := s.Ack(context.Background(), &store.AckParams{Queue: "q", Leases: leases, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestLeaseMemoAcks: plain messages are memoed at lease (a grouped one and
// one with its body under its own key are not), and an ack through the
// memo deletes exactly what a read of the record would have: no record,
// no in-flight entry, no body is left, the counters agree, and a lease
// named twice in one ack is applied once.
func TestLeaseMemoAcks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := handoffStore(t, vfs.NewMem())
	nm := []store.NewMessage{
		{Body: []byte(`"grouped"`), Kind: store.BodyJSON, Group: "g"},
		{Body: bytes.Repeat([]byte("x"), inlineMax+1), Kind: store.BodyBinary},
	}
	for range 40 { // more than memoScanMax: the memo's map of dropped seqs
		nm = append(nm, store.NewMessage{Body: []byte(`"plain"`), Kind: store.BodyJSON})
	}
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: handoffNow, Messages: nm}); err != nil {
		t.Fatal(err)
	}
	got := leaseUpTo(t, s, handoffNow, 50)
	if len(got) != 42 {
		t.Fatalf("leased %d, want 42", len(got))
	}
	q := s.queues["q"]
	if len(q.memo) != 40 || s.memoN != 40 {
		t.Fatalf("memo of %d entries (store: %d), want the 40 plain messages'", len(q.memo), s.memoN)
	}
	var leases []string
	for _, m := range got {
		leases = append(leases, m.Lease)
	}
	leases = append(leases, got[len(got)-1].Lease) // named twice
	res := ackLeases(t, s, handoffNow, leases...)
	for i, err := range res[:42] {
		if err != nil {
			t.Errorf("ack %d: %v", i, err)
		}
	}
	if !errors.Is(res[42], store.ErrLeaseExpired) {
		t.Errorf("the same lease again in one ack: %v, want ErrLeaseExpired", res[42])
	}
	if st := queueStats(t, s); st.InFlight != 0 || st.Ready != 0 || st.AckedTotal != 42 {
		t.Errorf("stats after the acks: %+v; want nothing in flight or ready, 42 acked", st)
	}
	if len(q.memo) != 0 || s.memoN != 0 {
		t.Errorf("memo after the acks: %d entries (store: %d), want none", len(q.memo), s.memoN)
	}
	for _, tag := range []byte{tagMsg, tagLease, tagBody, tagReady, tagHead, tagWaiting} {
		if n := keysOf(t, s, tag, q.rec.ID); n != 0 {
			t.Errorf("%d keys of tag %q left after every message was acked", n, tag)
		}
	}
}

// TestLeaseMemoAcksTasks: a task's plain message is memoed too, and its
// ack through the memo (one lease, and many: the two ways ack reads)
// finishes the task as a read of the record would: succeeded, with its
// result, and nothing of the message left.
func TestLeaseMemoAcksTasks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, n := range []int{1, ackIterMin + 2} {
		s := handoffStore(t, vfs.NewMem())
		nm := make([]store.NewMessage, n)
		for i := range nm {
			nm[i] = store.NewMessage{Body: []byte(`"job"`), Kind: store.BodyJSON, Task: &store.NewTask{ResultTTL: time.Hour}}
		}
		sent, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: handoffNow, Messages: nm})
		if err != nil {
			t.Fatal(err)
		}
		got := leaseUpTo(t, s, handoffNow, n)
		q := s.queues["q"]
		if len(got) != n || len(q.memo) != n {
			t.Fatalf("%d tasks: leased %d, memo of %d entries; want all memoed", n, len(got), len(q.memo))
		}
		leases, results := make([]string, n), make([][]byte, n)
		for i, m := range got {
			leases[i], results[i] = m.Lease, []byte(fmt.Sprintf(`{"id":%q}`, m.ID))
		}
		res, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: leases, Results: results, Now: handoffNow.Add(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		for i, err := range res {
			if err != nil {
				t.Fatalf("%d tasks: ack %d: %v", n, i, err)
			}
		}
		ids := make([]string, n)
		for i, r := range sent {
			ids[i] = r.ID
		}
		tasks, err := s.GetTasks(ctx, &store.GetTasksParams{IDs: ids, Now: handoffNow.Add(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		for i, tk := range tasks {
			want := fmt.Sprintf(`{"id":%q}`, ids[i])
			if tk.State != store.TaskSucceeded || string(tk.Result) != want || tk.FinishedAt.IsZero() {
				t.Errorf("%d tasks: task %d after its ack: %s, result %s, finished %v; want succeeded, %s", n, i, tk.State, tk.Result, tk.FinishedAt, want)
			}
		}
		if st := queueStats(t, s); st.InFlight != 0 || st.AckedTotal != int64(n) {
			t.Errorf("%d tasks: stats after the acks: %+v", n, st)
		}
		if len(q.memo) != 0 {
			t.Errorf("%d tasks: memo of %d entries after the acks, want none", n, len(q.memo))
		}
		for _, tag := range []byte{tagMsg, tagLease, tagReady} {
			if k := keysOf(t, s, tag, q.rec.ID); k != 0 {
				t.Errorf("%d tasks: %d keys of tag %q left", n, k, tag)
			}
		}
	}
}

// TestLeaseMemoFollowsTheRecord: a change of the record after the lease
// (extend, nack, expiry) makes the memo forget it: an ack after an extend
// deletes the in-flight entry of the new expiry; the old lease of a nacked
// or expired message is refused, and its new lease acks. Acks of one and
// of many leases (the two ways ack reads records) both.
func TestLeaseMemoFollowsTheRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := handoffStore(t, vfs.NewMem())
	sendBodies(t, s, `1`, `2`, `3`)
	got := leaseUpTo(t, s, handoffNow, 3)
	if len(got) != 3 {
		t.Fatalf("leased %d, want 3", len(got))
	}
	if _, err := s.Extend(ctx, &store.ExtendParams{Queue: "q", Lease: got[0].Lease, Visibility: time.Hour, Now: handoffNow}); err != nil {
		t.Fatal(err)
	}
	zero := time.Duration(0)
	if _, err := s.Nack(ctx, &store.NackParams{Queue: "q", Lease: got[1].Lease, Delay: &zero, Now: handoffNow, Retry: retryNow}); err != nil {
		t.Fatal(err)
	}
	later := handoffNow.Add(2 * time.Minute) // past the third's lease, within the first's
	if _, err := s.Tick(ctx, &store.TickParams{Now: later, Retry: retryNow}); err != nil {
		t.Fatal(err)
	}
	res := ackLeases(t, s, later, got[0].Lease, got[1].Lease, got[2].Lease)
	if res[0] != nil || !errors.Is(res[1], store.ErrLeaseExpired) || !errors.Is(res[2], store.ErrLeaseExpired) {
		t.Fatalf("acks after extend, nack, expiry: %v; want nil, expired, expired", res)
	}
	again := leaseUpTo(t, s, later, 10)
	if len(again) != 2 {
		t.Fatalf("leased again %d, want the nacked and the expired", len(again))
	}
	// Eight leases or more read records through one iterator: the two new
	// ones among six stale ones.
	leases := []string{again[0].Lease, again[1].Lease}
	for range 3 {
		leases = append(leases, got[1].Lease, got[2].Lease)
	}
	res = ackLeases(t, s, later, leases...)
	if res[0] != nil || res[1] != nil {
		t.Fatalf("acks of the new leases: %v", res[:2])
	}
	for i, err := range res[2:] {
		if !errors.Is(err, store.ErrLeaseExpired) {
			t.Errorf("stale lease %d: %v, want ErrLeaseExpired", i, err)
		}
	}
	q := s.queues["q"]
	if st := queueStats(t, s); st.InFlight != 0 || st.Ready != 0 || st.AckedTotal != 3 {
		t.Errorf("stats: %+v; want nothing in flight or ready, 3 acked", st)
	}
	for _, tag := range []byte{tagMsg, tagLease, tagReady} {
		if n := keysOf(t, s, tag, q.rec.ID); n != 0 {
			t.Errorf("%d keys of tag %q left", n, tag)
		}
	}
	if len(q.memo) != 0 || s.memoN != 0 {
		t.Errorf("memo: %d entries (store: %d), want none", len(q.memo), s.memoN)
	}
}

// TestLeaseMemoGoesWithItsQueue: deleting a queue drops its memo; the old
// leases, acked on a queue of the same name made anew, are refused and
// change nothing.
func TestLeaseMemoGoesWithItsQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := handoffStore(t, vfs.NewMem())
	sendBodies(t, s, `1`, `2`)
	got := leaseUpTo(t, s, handoffNow, 2)
	if s.memoN != 2 {
		t.Fatalf("memo of %d entries, want 2", s.memoN)
	}
	if err := s.DeleteQueue(ctx, &store.DeleteQueueParams{Name: "q", Now: handoffNow}); err != nil {
		t.Fatal(err)
	}
	if s.memoN != 0 {
		t.Errorf("memo of %d entries after the queue's deletion, want 0", s.memoN)
	}
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: handoffNow}); err != nil {
		t.Fatal(err)
	}
	res := ackLeases(t, s, handoffNow, got[0].Lease, got[1].Lease)
	for i, err := range res {
		if !errors.Is(err, store.ErrLeaseExpired) {
			t.Errorf("old lease %d on the new queue: %v, want ErrLeaseExpired", i, err)
		}
	}
	if st := queueStats(t, s); st != (store.Stats{}) {
		t.Errorf("new queue's stats: %+v, want zero", st)
	}
}

// TestLeaseMemoBound: past leaseMemoMax entries leases are not memoed, and
// their acks read the record.
func TestLeaseMemoBound(t *testing.T) {
	t.Parallel()
	s := handoffStore(t, vfs.NewMem())
	sendBodies(t, s, `1`, `2`, `3`)
	s.memoN = leaseMemoMax - 1 // as if other queues held the rest
	got := leaseUpTo(t, s, handoffNow, 3)
	if n := len(s.queues["q"].memo); n != 1 || s.memoN != leaseMemoMax {
		t.Fatalf("memo of %d entries (store: %d), want 1 (%d)", n, s.memoN, leaseMemoMax)
	}
	for i, err := range ackLeases(t, s, handoffNow, got[0].Lease, got[1].Lease, got[2].Lease) {
		if err != nil {
			t.Errorf("ack %d: %v", i, err)
		}
	}
	if s.memoN != leaseMemoMax-1 {
		t.Errorf("store's memo count %d after the acks, want %d", s.memoN, leaseMemoMax-1)
	}
}

// memoInvariant: every memo entry is the record as stored (plain, in
// flight, same nonce and expiry, a task's if the record is), memoN is the
// number of entries.
func memoInvariant(t *testing.T, s *Store, when string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for name, q := range s.queues {
		n += len(q.memo)
		for seq, e := range q.memo {
			v, closer, err := s.db.Get(seqKey(tagMsg, q.rec.ID, seq))
			if err != nil {
				t.Fatalf("%s: memo of %s has %d, record: %v", when, name, seq, err)
			}
			m, err := decodeMsg(v)
			closer.Close()
			if err != nil || m.state != stInFlight || m.nonce != e.nonce || unixNano(m.leaseExp) != e.leaseExp ||
				!m.inline || m.group != "" || m.task != e.task || m.deadFrom != 0 {
				t.Fatalf("%s: memo of %s, seq %d: %+v; record %+v (%v)", when, name, seq, e, m, err)
			}
		}
	}
	if n != s.memoN {
		t.Fatalf("%s: memoN %d, entries %d", when, s.memoN, n)
	}
}

// TestLeaseMemoLeaseThenChangeInOneTxn: a txn that leases a plain message
// and then changes its record (no verb does today) leaves no memo entry:
// the ack of the lease is refused and changes nothing.
func TestLeaseMemoLeaseThenChangeInOneTxn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := handoffStore(t, vfs.NewMem())
	sendBodies(t, s, `1`)
	var lease string
	err := s.update(handoffNow, func(t *txn) error {
		w, _ := t.queue("q")
		ms, err := t.lease(w, 1, 0, time.Minute)
		if err != nil {
			return err
		}
		lease = ms[0].Lease
		seq, m, err := t.held(w, lease)
		if err != nil {
			return err
		}
		return t.remove(w, seq, &m) // e.g. an ack of it in the same txn
	})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{lease}, Now: handoffNow})
	st := queueStats(t, s)
	if res[0] == nil || st.InFlight != 0 || s.memoN != 0 {
		t.Errorf("ack of a deleted message: %v; in flight %d; memoN %d", res[0], st.InFlight, s.memoN)
	}
}

// TestLeaseMemoLeaseThenDeleteInOneTxn: a lease in a queue that the same
// txn deletes (no verb does today) leaves no entry counted in memoN.
func TestLeaseMemoLeaseThenDeleteInOneTxn(t *testing.T) {
	t.Parallel()
	s := handoffStore(t, vfs.NewMem())
	sendBodies(t, s, `1`)
	err := s.update(handoffNow, func(t *txn) error {
		w, _ := t.queue("q")
		if _, err := t.lease(w, 1, 0, time.Minute); err != nil {
			return err
		}
		for _, tag := range queueTags {
			pre := qprefix(tag, w.rec.ID)
			t.b.DeleteRange(pre, prefixEnd(pre), nil)
		}
		t.b.Delete(queueKey("q"), nil)
		w.deleted = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.memoN != 0 {
		t.Errorf("memoN %d with no queue left", s.memoN)
	}
}
