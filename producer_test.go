package courier_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
)

func closeProducer(t *testing.T, p *courier.Producer) {
	t.Helper()
	if err := p.Close(t.Context()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestProducerBatches sends many messages to two queues and checks that
// every one is stored once, with its id, in far fewer requests.
func TestProducerBatches(t *testing.T) {
	t.Parallel()
	_, url := setupURL(t)
	var requests atomic.Int32
	c := watchedClient(t, url, func(r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/messages") {
			requests.Add(1)
		}
	})
	p := courier.NewProducer(c, courier.ProducerOptions{})
	const n = 2500
	pending := make([]*courier.PendingSend, 0, 2*n)
	for i := range n {
		for _, q := range []string{"pa", "pb"} {
			pending = append(pending, p.Send(t.Context(), q, courier.NewMessage{Body: json.RawMessage(fmt.Sprint(i))}))
		}
	}
	ids := map[string]bool{}
	for _, ps := range pending {
		id, err := ps.Wait(t.Context())
		if err != nil || id == "" || ids[id] {
			t.Fatalf("Wait = %q, %v; want a new id", id, err)
		}
		ids[id] = true
	}
	closeProducer(t, p)
	for _, q := range []string{"pa", "pb"} {
		if s := stats(t, c, q); s.SentTotal != n || s.Ready != n {
			t.Errorf("%s: stats %+v, want %d sent", q, s, n)
		}
	}
	if r := requests.Load(); r > 2*n/100 {
		t.Errorf("%d messages took %d requests; want batches", 2*n, r)
	}
}

// TestProducerSplitsRefusedBatch: a batch refused for one bad message is
// split, and only that message fails.
func TestProducerSplitsRefusedBatch(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	p := courier.NewProducer(c, courier.ProducerOptions{Linger: time.Hour})
	var pending []*courier.PendingSend
	for i := range 10 {
		m := courier.NewMessage{Body: json.RawMessage(fmt.Sprint(i))}
		if i == 6 {
			m.Priority = 500 // out of range
		}
		pending = append(pending, p.Send(t.Context(), "split", m))
	}
	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, ps := range pending {
		select {
		case <-ps.Done():
		default:
			t.Fatalf("message %d has no outcome after Flush", i)
		}
		id, err := ps.Wait(t.Context())
		if i == 6 {
			if !errors.Is(err, courier.ErrInvalidArgument) || id != "" {
				t.Errorf("the bad message: %q, %v; want ErrInvalidArgument", id, err)
			}
		} else if err != nil || id == "" {
			t.Errorf("message %d: %q, %v", i, id, err)
		}
	}
	closeProducer(t, p)
	if s := stats(t, c, "split"); s.SentTotal != 9 {
		t.Errorf("stats %+v, want 9 sent", s)
	}
}

func TestProducerBufferFull(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ctx := t.Context()

	p := courier.NewProducer(c, courier.ProducerOptions{BufferSize: 2, Linger: time.Hour, NonBlocking: true})
	a, b := p.Send(ctx, "full", courier.NewMessage{Body: json.RawMessage(`1`)}), p.Send(ctx, "full", courier.NewMessage{Body: json.RawMessage(`2`)})
	if _, err := p.Send(ctx, "full", courier.NewMessage{Body: json.RawMessage(`3`)}).Wait(ctx); !errors.Is(err, courier.ErrBufferFull) {
		t.Errorf("third Send into a buffer of 2: %v, want ErrBufferFull", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ps := range []*courier.PendingSend{a, b} {
		if id, err := ps.Wait(ctx); err != nil || id == "" {
			t.Errorf("Wait = %q, %v", id, err)
		}
	}
	// Room again once answered.
	fourth := p.Send(ctx, "full", courier.NewMessage{Body: json.RawMessage(`4`)})
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := fourth.Wait(ctx); err != nil {
		t.Errorf("Send after Flush: %v", err)
	}
	closeProducer(t, p)

	// Blocking: Send waits for room until its context ends.
	p = courier.NewProducer(c, courier.ProducerOptions{BufferSize: 1, Linger: time.Hour})
	first := p.Send(ctx, "full", courier.NewMessage{Body: json.RawMessage(`5`)})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Send(cctx, "full", courier.NewMessage{Body: json.RawMessage(`6`)}).Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("blocked Send with a cancelled context: %v", err)
	}
	closeProducer(t, p) // sends the first
	if id, err := first.Wait(ctx); err != nil || id == "" {
		t.Errorf("message held at Close: %q, %v; want sent", id, err)
	}
	if s := stats(t, c, "full"); s.SentTotal != 4 {
		t.Errorf("stats %+v, want 4 sent", s)
	}
}

func TestProducerClose(t *testing.T) {
	t.Parallel()
	c := setup(t, server.Config{})
	ctx := t.Context()
	p := courier.NewProducer(c, courier.ProducerOptions{Linger: time.Hour})
	ps := p.Send(ctx, "closing", courier.NewMessage{Body: json.RawMessage(`1`)})
	closeProducer(t, p)
	if id, err := ps.Wait(ctx); err != nil || id == "" {
		t.Errorf("message held at Close: %q, %v; want sent", id, err)
	}
	if _, err := p.Send(ctx, "closing", courier.NewMessage{Body: json.RawMessage(`2`)}).Wait(ctx); !errors.Is(err, courier.ErrProducerClosed) {
		t.Errorf("Send after Close: %v, want ErrProducerClosed", err)
	}
	closeProducer(t, p) // again: nothing to do
	if _, err := p.Send(ctx, "", courier.NewMessage{}).Wait(ctx); !errors.Is(err, courier.ErrInvalidArgument) {
		t.Errorf("Send to no queue: %v", err)
	}
}

// TestProducerCloseDeadline: a Close that runs out of time cancels the
// requests in flight; their messages fail with ErrProducerClosed.
func TestProducerCloseDeadline(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that the server notices the client leave
		close(arrived)
		<-r.Context().Done()
	}))
	defer hang.Close()
	c := courier.NewClient(hang.URL)
	defer c.CloseIdleConnections()
	p := courier.NewProducer(c, courier.ProducerOptions{Linger: time.Millisecond})
	ps := p.Send(t.Context(), "q", courier.NewMessage{Body: json.RawMessage(`1`)})
	<-arrived
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close out of time: %v, want context.Canceled", err)
	}
	if _, err := ps.Wait(t.Context()); !errors.Is(err, courier.ErrProducerClosed) {
		t.Errorf("message in flight at Close: %v, want ErrProducerClosed", err)
	}
}
