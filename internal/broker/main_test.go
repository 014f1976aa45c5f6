package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pebblestore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// env is a broker over a fresh in-memory Pebble store, on a fake clock.
type env struct {
	b   *broker.Broker
	clk *clock.Fake
}

func setup(t *testing.T, o broker.Options) *env {
	t.Helper()
	return setupOver(t, memStore(t), o)
}

// setupOver is setup over st.
func setupOver(t *testing.T, st store.Store, o broker.Options) *env {
	t.Helper()
	clk := clock.NewFake(t0)
	o.Clock = clk
	return &env{b: broker.New(st, o), clk: clk}
}

// memStore is a fresh in-memory Pebble store, closed when t ends.
func memStore(t *testing.T) store.Store {
	t.Helper()
	return openStore(t, vfs.NewMem())
}

// openStore opens a Pebble store on fs, closed when t ends.
func openStore(t *testing.T, fs vfs.FS) *pebblestore.Store {
	t.Helper()
	st, err := pebblestore.Open(pebblestore.Options{
		Dir:        "db",
		FS:         fs,
		CacheBytes: 1 << 20,
		FreeBytes:  func() (uint64, error) { return 1 << 40, nil },
	})
	if err != nil {
		t.Fatalf("pebblestore.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
}

func ptr[T any](v T) *T { return &v }

func msg(body string) broker.Message {
	return broker.Message{Body: []byte(body), Kind: store.BodyJSON}
}

// put creates (or updates) a queue, failing the test on error.
func (e *env) put(t *testing.T, name string, s broker.QueueSettings) store.Queue {
	t.Helper()
	q, err := e.b.PutQueue(t.Context(), name, s)
	if err != nil {
		t.Fatalf("PutQueue(%q): %v", name, err)
	}
	return q
}

func (e *env) send(t *testing.T, queue string, msgs ...broker.Message) []store.SendResult {
	t.Helper()
	res, err := e.b.Send(t.Context(), queue, msgs)
	if err != nil {
		t.Fatalf("Send(%q): %v", queue, err)
	}
	return res
}

// receive leases without waiting.
func (e *env) receive(t *testing.T, queue string, o broker.ReceiveOptions) []store.Message {
	t.Helper()
	if o.Wait != 0 {
		t.Fatal("receive is for Wait 0; use receiveAsync")
	}
	msgs, err := e.b.Receive(t.Context(), queue, o)
	if err != nil {
		t.Fatalf("Receive(%q): %v", queue, err)
	}
	return msgs
}

// receiveOne leases exactly one message.
func (e *env) receiveOne(t *testing.T, queue string) store.Message {
	t.Helper()
	msgs := e.receive(t, queue, broker.ReceiveOptions{})
	if len(msgs) != 1 {
		t.Fatalf("Receive(%q) at %v: %d messages, want 1", queue, e.clk.Now(), len(msgs))
	}
	return msgs[0]
}

// receiveNone asserts that nothing is handed out now.
func (e *env) receiveNone(t *testing.T, queue string) {
	t.Helper()
	if msgs := e.receive(t, queue, broker.ReceiveOptions{}); len(msgs) != 0 {
		t.Fatalf("Receive(%q) at %v: %d messages, want none", queue, e.clk.Now(), len(msgs))
	}
}

func (e *env) stats(t *testing.T, queue string) store.Stats {
	t.Helper()
	q, err := e.b.GetQueue(t.Context(), queue)
	if err != nil {
		t.Fatalf("GetQueue(%q): %v", queue, err)
	}
	return q.Stats
}

// queueNames lists the queues that exist.
func (e *env) queueNames(t *testing.T) []string {
	t.Helper()
	qs, err := e.b.ListQueues(t.Context())
	if err != nil {
		t.Fatalf("ListQueues: %v", err)
	}
	var names []string
	for _, q := range qs {
		names = append(names, q.Name)
	}
	return names
}

// noQueues asserts that no queue exists.
func (e *env) noQueues(t *testing.T) {
	t.Helper()
	if names := e.queueNames(t); len(names) != 0 {
		t.Fatalf("queues %q exist, want none", names)
	}
}

type received struct {
	msgs []store.Message
	err  error
}

// receiveAsync runs a Receive in its own goroutine; its result arrives on the channel.
func (e *env) receiveAsync(ctx context.Context, queue string, o broker.ReceiveOptions) <-chan received {
	ch := make(chan received, 1)
	go func() {
		msgs, err := e.b.Receive(ctx, queue, o)
		ch <- received{msgs, err}
	}()
	return ch
}

// pending asserts that a Receive has not returned.
func pending(t *testing.T, ch <-chan received) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Receive returned %d messages, err %v; want it still waiting", len(r.msgs), r.err)
	default:
	}
}

func wantInvalid(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, broker.ErrInvalid) {
		t.Fatalf("%s: err = %v, want ErrInvalid", what, err)
	}
}
