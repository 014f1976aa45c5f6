package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pebblestore/gatefs"
)

// TestReceiveAcksDurableWhenAnswered: a long-poll that carries acks and
// ends with nothing (here its caller leaves) answers their outcome only
// once they are durable: a crash right after the answer keeps them acked.
func TestReceiveAcksDurableWhenAnswered(t *testing.T) {
	t.Parallel()
	fs := vfs.NewCrashableMem()
	e := setupOver(t, openStore(t, fs), broker.Options{})
	e.send(t, "q", msg(`1`))
	m := e.receiveOne(t, "q")

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	got, err := e.b.ReceiveAcking(ctx, "q", broker.ReceiveOptions{Wait: time.Minute, Ack: []string{m.Lease}})
	if err != nil || len(got.Acked) != 1 || got.Acked[0] != nil {
		t.Fatalf("ReceiveAcking = %+v, %v; want the ack applied", got, err)
	}
	r := openStore(t, fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0}))
	q, err := r.GetQueue(t.Context(), &store.GetQueueParams{Name: "q", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if q.Stats.InFlight != 0 || q.Stats.AckedTotal != 1 {
		t.Fatalf("after a crash right after the answer: %+v; want the message acked", q.Stats)
	}
}

// TestReceiveAcksShareTheSendsSync: a long-poll carrying acks, ended by a
// send that hands it a message, costs one fsync in all (the send's), and
// answers both the message and the acks' outcome.
func TestReceiveAcksShareTheSendsSync(t *testing.T) {
	t.Parallel()
	st := openStore(t, vfs.NewMem())
	e := setupOver(t, st, broker.Options{})
	e.send(t, "q", msg(`1`))
	m := e.receiveOne(t, "q")

	syncs := st.WALSyncs().Count
	done := make(chan broker.Received, 1)
	go func() {
		got, err := e.b.ReceiveAcking(t.Context(), "q", broker.ReceiveOptions{Wait: time.Minute, Ack: []string{m.Lease}})
		if err != nil {
			t.Errorf("ReceiveAcking: %v", err)
		}
		done <- got
	}()
	time.Sleep(200 * time.Millisecond) // the receive has applied its acks and waits
	e.send(t, "q", msg(`2`))
	got := <-done
	if len(got.Messages) != 1 || string(got.Messages[0].Body) != "2" || len(got.Acked) != 1 || got.Acked[0] != nil {
		t.Fatalf("ReceiveAcking = %+v; want message 2 and the ack applied", got)
	}
	if n := st.WALSyncs().Count - syncs; n != 1 {
		t.Fatalf("the carrying long-poll and the send took %d fsyncs, want 1", n)
	}
}

// TestEmptyReceiveDoesNotWaitForSyncs: a receive that finds nothing
// answers at once, even when what emptied the queue (an ack whose fsync is
// held) is not yet durable: an empty answer promises nothing, and waiting
// for other clients' syncs would only delay it (store.LeaseParams.NoReadWait).
func TestEmptyReceiveDoesNotWaitForSyncs(t *testing.T) {
	t.Parallel()
	fs := gatefs.New(vfs.NewMem())
	e := setupOver(t, openStore(t, fs), broker.Options{})
	e.send(t, "q", msg(`1`))
	m := e.receiveOne(t, "q")

	fs.Hold()
	defer fs.Release() // before the store's cleanup closes it
	acked := make(chan error, 1)
	go func() {
		res, err := e.b.Ack(t.Context(), "q", []string{m.Lease})
		if err == nil && res[0] != nil {
			err = res[0]
		}
		acked <- err
	}()
	<-fs.Entered() // the ack is applied and its fsync is held
	got := make(chan error, 1)
	go func() {
		msgs, err := e.b.Receive(t.Context(), "q", broker.ReceiveOptions{})
		if err == nil && len(msgs) != 0 {
			err = fmt.Errorf("got %d messages, want none", len(msgs))
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("empty receive: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an empty receive did not answer while another client's fsync was held")
	}
	fs.Release()
	if err := <-acked; err != nil {
		t.Fatalf("ack: %v", err)
	}
}
