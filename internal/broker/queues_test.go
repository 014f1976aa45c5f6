package broker_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

func TestSendAutoCreates(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	res := e.send(t, "orders", msg(`1`), msg(`2`))
	if len(res) != 2 || res[0].ID == "" || res[0].ID == res[1].ID {
		t.Fatalf("send results %+v, want two distinct ids", res)
	}
	q, err := e.b.GetQueue(t.Context(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if q.Config != store.DefaultConfig("orders") {
		t.Fatalf("config %+v, want the defaults %+v", q.Config, store.DefaultConfig("orders"))
	}
	if q.Stats.Ready != 2 || q.Stats.SentTotal != 2 {
		t.Fatalf("stats %+v, want 2 ready", q.Stats)
	}
}

func TestReceiveAutoCreates(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.receiveNone(t, "jobs")
	if names := e.queueNames(t); !slices.Equal(names, []string{"jobs"}) {
		t.Fatalf("queues %q, want [jobs]", names)
	}
	q, err := e.b.GetQueue(t.Context(), "jobs")
	if err != nil || q.Config != store.DefaultConfig("jobs") {
		t.Fatalf("GetQueue = %+v, %v; want the defaults", q.Config, err)
	}
}

func TestNoAutoCreate(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{NoAutoCreate: true})
	if _, err := e.b.Send(t.Context(), "q", []broker.Message{msg(`1`)}); !errors.Is(err, store.ErrQueueNotFound) {
		t.Fatalf("Send: %v, want ErrQueueNotFound", err)
	}
	if _, err := e.b.Receive(t.Context(), "q", broker.ReceiveOptions{}); !errors.Is(err, store.ErrQueueNotFound) {
		t.Fatalf("Receive: %v, want ErrQueueNotFound", err)
	}
	added := e.clk.TimerAdded()
	if _, err := e.b.Receive(t.Context(), "q", broker.ReceiveOptions{Wait: time.Minute}); !errors.Is(err, store.ErrQueueNotFound) {
		t.Fatalf("Receive with wait: %v, want ErrQueueNotFound at once", err)
	}
	select {
	case <-added:
		t.Fatal("Receive on a missing queue waited")
	default:
	}
	e.noQueues(t)

	// A queue made explicitly works as usual.
	e.put(t, "q", broker.QueueSettings{})
	e.send(t, "q", msg(`1`))
	e.receiveOne(t, "q")
}

func TestPutQueueCreateThenUpdate(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	q := e.put(t, "q", broker.QueueSettings{
		VisibilityTimeout: ptr(time.Minute),
		MaxAttempts:       ptr(7),
		Backoff:           &broker.BackoffSettings{Initial: ptr(2 * time.Second)},
		DeadLetterQueue:   ptr("graveyard"),
	})
	want := store.DefaultConfig("q")
	want.VisibilityTimeout = time.Minute
	want.MaxAttempts = 7
	want.Backoff.Initial = 2 * time.Second
	want.DeadLetterQueue = "graveyard"
	if q.Config != want {
		t.Fatalf("created %+v, want %+v", q.Config, want)
	}

	q = e.put(t, "q", broker.QueueSettings{
		Backoff:         &broker.BackoffSettings{Jitter: ptr(0.5)},
		Retention:       ptr(time.Hour),
		MaxMessageBytes: ptr(1000),
		DedupWindow:     ptr(time.Duration(0)),
	})
	want.Backoff.Jitter = 0.5
	want.Retention = time.Hour
	want.MaxMessageBytes = 1000
	want.DedupWindow = 0
	if q.Config != want {
		t.Fatalf("updated %+v, want %+v (untouched settings kept)", q.Config, want)
	}
	got, err := e.b.GetQueue(t.Context(), "q")
	if err != nil || got.Config != want {
		t.Fatalf("GetQueue = %+v, %v; want %+v", got.Config, err, want)
	}

	// An empty update changes nothing; an empty dead_letter_queue turns it off.
	if q := e.put(t, "q", broker.QueueSettings{}); q.Config != want {
		t.Fatalf("empty update: %+v, want %+v", q.Config, want)
	}
	want.DeadLetterQueue = ""
	if q := e.put(t, "q", broker.QueueSettings{DeadLetterQueue: ptr("")}); q.Config != want {
		t.Fatalf("dead_letter_queue \"\": %+v, want %+v", q.Config, want)
	}
}

// Updating a queue keeps its messages and applies the new settings to them.
func TestPutQueueUpdateKeepsMessages(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	e.send(t, "q", msg(`1`))
	e.put(t, "q", broker.QueueSettings{VisibilityTimeout: ptr(5 * time.Second)})
	m := e.receiveOne(t, "q")
	if !m.LeaseExpiresAt.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("lease expires at %v, want %v (the new visibility)", m.LeaseExpiresAt, t0.Add(5*time.Second))
	}
}

func TestDefaultDeadLetterQueueNameLimit(t *testing.T) {
	t.Parallel()
	e := setup(t, broker.Options{})
	fits := strings.Repeat("a", broker.MaxNameLen-len(store.DeadSuffix))
	e.put(t, fits, broker.QueueSettings{}) // its dead-letter queue name is exactly 80 characters
	e.put(t, strings.Repeat("c", broker.MaxNameLen), broker.QueueSettings{DeadLetterQueue: ptr("")})
	e.put(t, strings.Repeat("d", broker.MaxNameLen), broker.QueueSettings{DeadLetterQueue: ptr("d.dead")})
	e.put(t, strings.Repeat("e", broker.MaxNameLen-len(store.DeadSuffix))+store.DeadSuffix, broker.QueueSettings{}) // itself a dead-letter queue
	if n := len(e.queueNames(t)); n != 4 {
		t.Fatalf("%d queues, want 4", n)
	}
}

// TestSendRejectsNonText: header names and values, groups and dedup keys are
// text every backend can store: UTF-8 without NUL.
func TestSendRejectsNonText(t *testing.T) {
	t.Parallel()
	for name, m := range map[string]broker.Message{
		"NUL in a header value":        {Headers: map[string]string{"k": "a\x00b"}},
		"invalid UTF-8 in header name": {Headers: map[string]string{"\xff": "v"}},
		"NUL in a group":               {Group: "g\x00"},
		"invalid UTF-8 in a dedup key": {DedupKey: "\xfe\xff"},
	} {
		b := setup(t, broker.Options{}).b
		m.Body, m.Kind = []byte(`1`), store.BodyJSON
		_, err := b.Send(t.Context(), "q", []broker.Message{m})
		if !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
		if qs, _ := b.ListQueues(t.Context()); len(qs) != 0 {
			t.Errorf("%s: a refused send created %d queues", name, len(qs))
		}
	}
}
