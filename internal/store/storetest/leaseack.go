package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// A lease that carries acks (LeaseParams.Acks): a worker's next receive
// acknowledging the messages it has finished, in one change.

// leaseAcking leases up to max messages of queue, acknowledging acks first.
func (e *env) leaseAcking(queue string, max int, acks []string, results [][]byte) store.LeaseResult {
	e.t.Helper()
	res, err := e.s.Lease(e.ctx, &store.LeaseParams{Queue: queue, Max: max, Now: e.now, Retry: e.retry,
		Acks: acks, AckResults: results})
	if err != nil {
		e.t.Fatalf("Lease(%q) with %d acks: %v", queue, len(acks), err)
	}
	if len(res.Acked) != len(acks) {
		e.t.Fatalf("Lease(%q) with %d acks answered %d outcomes", queue, len(acks), len(res.Acked))
	}
	return res
}

func testLeaseAck(t *testing.T, newStore newStoreFunc) {
	t.Run("AcksThenLeases", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.sendText("q", "1", "2", "3")
		got := e.lease("q", 2)
		res := e.leaseAcking("q", 10, []string{got[0].Lease, "garbage", got[1].Lease, got[0].Lease}, nil)
		wantErr(t, "first ack", res.Acked[0], nil)
		wantErr(t, "malformed ack", res.Acked[1], store.ErrInvalidLease, store.ErrLeaseExpired)
		wantErr(t, "second ack", res.Acked[2], nil)
		wantErr(t, "repeated ack", res.Acked[3], store.ErrLeaseExpired)
		wantIDs(t, "leased with the acks", res.Messages, ids[2])
		wantStats(t, "after", e.stats("q"), store.Stats{InFlight: 1, SentTotal: 3, AckedTotal: 2})
		// Acked for good: long after, only the third comes back.
		e.advance(time.Hour)
		e.tick()
		e.leaseOne("q", ids[2])
	})

	t.Run("NoMessageLeft", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.sendText("q", "1")
		m := e.lease("q", 1)[0]
		res := e.leaseAcking("q", 5, []string{m.Lease}, nil)
		wantErr(t, "ack", res.Acked[0], nil)
		if len(res.Messages) != 0 {
			t.Errorf("leased %v from a queue whose last message was just acked", ids(res.Messages))
		}
		wantStats(t, "after", e.stats("q"), store.Stats{SentTotal: 1, AckedTotal: 1})
	})

	t.Run("StaleLeaseStays", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.VisibilityTimeout = 10 * time.Second
		cfg.Backoff.Initial = 0
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1")
		old := e.lease("q", 1)[0]
		e.advance(10 * time.Second)
		// The ack of the expired lease is refused, and the message it held
		// is handed out again by the same lease.
		res := e.leaseAcking("q", 5, []string{old.Lease}, nil)
		wantErr(t, "ack of an expired lease", res.Acked[0], store.ErrLeaseExpired)
		wantIDs(t, "leased again", res.Messages, ids[0])
		if res.Messages[0].Attempt != 2 {
			t.Errorf("attempt %d, want 2", res.Messages[0].Attempt)
		}
	})

	t.Run("FreesTheNextOfItsGroup", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.send("q", gmsg("g1", "g"), gmsg("g2", "g"))
		head := e.leaseOne("q", ids[0])
		res := e.leaseAcking("q", 5, []string{head.Lease}, nil)
		wantErr(t, "ack of the group's head", res.Acked[0], nil)
		wantIDs(t, "the next of the group, in the same lease", res.Messages, ids[1])
	})

	t.Run("PausedQueueAcksOnly", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		sent := e.sendText("q", "1", "2")
		m := e.leaseFirst("q", sent[0])
		e.setPaused("q", true)
		res := e.leaseAcking("q", 5, []string{m.Lease}, nil)
		wantErr(t, "ack in a paused queue", res.Acked[0], nil)
		if len(res.Messages) != 0 {
			t.Errorf("a paused queue handed out %v", ids(res.Messages))
		}
		wantStats(t, "after", e.stats("q"), store.Stats{Ready: 1, SentTotal: 2, AckedTotal: 1, OldestReady: base})
	})

	t.Run("TaskResult", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		task := e.sendTask("q", store.NewTask{ResultTTL: taskTTL})
		plain := e.sendText("q", "plain")[0]
		got := e.lease("q", 2)
		wantIDs(t, "leased", got, task, plain)
		e.advance(time.Second)
		res := e.leaseAcking("q", 1, leases(got), [][]byte{[]byte(`{"ok":true}`), nil})
		wantErr(t, "task's ack", res.Acked[0], nil)
		wantErr(t, "plain message's ack", res.Acked[1], nil)
		tk := e.task(task)
		if tk.State != store.TaskSucceeded || !bytes.Equal(tk.Result, []byte(`{"ok":true}`)) {
			t.Errorf("task after its ack rode on a lease: state %s, result %s; want succeeded, {\"ok\":true}", tk.State, tk.Result)
		}
		wantTime(t, "FinishedAt", tk.FinishedAt, e.now)
	})

	t.Run("MissingQueue", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		_, err := e.s.Lease(e.ctx, &store.LeaseParams{Queue: "nope", Max: 1, Now: e.now, Retry: e.retry,
			Acks: []string{"garbage"}})
		wantErr(t, "Lease with acks of a missing queue", err, store.ErrQueueNotFound)
	})
}
