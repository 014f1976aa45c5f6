package storetest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

func testSend(t *testing.T, newStore newStoreFunc) {
	t.Run("IDsUniqueInSendOrder", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("a", config())
		e.createQueue("b", config())
		var all []string
		// Singles at one instant, a batch, sends spread over time and over
		// two queues: ids sort by send order as plain strings.
		for i := range 12 {
			all = append(all, e.sendText("a", fmt.Sprint(i))...)
		}
		all = append(all, e.sendText("b", "10", "11", "12", "13", "14")...)
		for i := range 12 {
			e.advance(time.Millisecond * time.Duration(i*i))
			all = append(all, e.sendText([]string{"a", "b"}[i%2], fmt.Sprint(i))...)
		}
		e.advance(1000 * time.Hour)
		all = append(all, e.sendText("a", "late")...)
		for i, id := range all {
			if id == "" {
				t.Fatalf("id %d is empty", i)
			}
		}
		if !slices.IsSorted(all) {
			t.Errorf("ids do not sort by send order: %q", all)
		}
		if len(slices.Compact(slices.Clone(all))) != len(all) {
			t.Errorf("ids are not unique: %q", all)
		}
	})

	t.Run("BodyExact", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		every := make([]byte, 256)
		for i := range every {
			every[i] = byte(i)
		}
		big := bytes.Repeat([]byte("0123456789abcdef\x00\xff"), (1<<20)/18)
		cases := []store.NewMessage{
			{Body: []byte(`{"order":42,"items":["a","b"],"note":"héllo ✓"}`), Kind: store.BodyJSON},
			{Body: []byte(`"just a string"`), Kind: store.BodyJSON},
			{Body: []byte{0, 0, 0}, Kind: store.BodyBinary},
			{Body: []byte{0xff, 0xfe, 0x00, 'a', 0x80, 0xc3, 0x28, 0xed, 0xa0, 0x80}, Kind: store.BodyBinary},
			{Body: every, Kind: store.BodyBinary},
			{Body: []byte{}, Kind: store.BodyBinary},
			{Body: []byte(`{"a":1}`), Kind: store.BodyBinary}, // JSON-looking bytes sent as binary stay binary
			{Body: big, Kind: store.BodyBinary},
		}
		ids := e.send("q", cases...)
		got := e.lease("q", len(cases))
		wantIDs(t, "lease", got, ids...)
		for i, m := range got {
			wantBody(t, m, cases[i].Body, cases[i].Kind)
		}
	})

	t.Run("FieldsReturned", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.advance(1234 * time.Millisecond)
		sentAt := e.now
		hdrs := map[string]string{
			"trace-id":      "abc",
			"empty":         "",
			"Mixed-Case":    "Value With Spaces",
			"ünïcode-ключ":  "значение ✓",
			"courier-other": "x",
		}
		body := []byte(`"one"`)
		ids := e.send("q",
			store.NewMessage{Body: body, Kind: store.BodyJSON, Headers: hdrs, Priority: 100, Group: "grp-1"},
			store.NewMessage{Body: []byte("2"), Kind: store.BodyJSON, Priority: -100},
			store.NewMessage{Body: []byte("3"), Kind: store.BodyJSON, Headers: map[string]string{}},
		)
		// The store keeps its own copies: the caller may reuse its buffers.
		want := maps.Clone(hdrs)
		hdrs["trace-id"] = "changed after send"
		body[1] = 'X'
		e.advance(time.Second)
		got := e.lease("q", 3)
		wantIDs(t, "lease", got, ids[0], ids[2], ids[1])
		wantBody(t, got[0], []byte(`"one"`), store.BodyJSON)
		wantHeaders(t, got[0], want)
		wantHeaders(t, got[1], nil)
		wantHeaders(t, got[2], nil)
		for i, want := range []struct {
			prio  int
			group string
		}{{100, "grp-1"}, {0, ""}, {-100, ""}} {
			m := got[i]
			if m.Priority != want.prio || m.Group != want.group || m.Queue != "q" {
				t.Errorf("message %d: priority %d group %q queue %q, want %d %q %q", i, m.Priority, m.Group, m.Queue, want.prio, want.group, "q")
			}
			wantTime(t, fmt.Sprintf("message %d SentAt", i), m.SentAt, sentAt)
		}
	})

	t.Run("BatchResultsInOrder", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		var msgs []store.NewMessage
		for i := range 50 {
			msgs = append(msgs, msg(fmt.Sprint(i)))
		}
		ids := e.send("q", msgs...)
		got := e.lease("q", 100)
		wantIDs(t, "lease after batch", got, ids...)
		for i, m := range got {
			if string(m.Body) != fmt.Sprint(i) {
				t.Fatalf("message %s: body %q, want %q (results out of order)", m.ID, m.Body, fmt.Sprint(i))
			}
		}
		if s := e.stats("q"); s.SentTotal != 50 {
			t.Errorf("SentTotal %d, want 50", s.SentTotal)
		}
	})

	t.Run("MissingQueueStoresNothing", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		_, err := e.s.Send(e.ctx, &store.SendParams{Queue: "nope", Messages: []store.NewMessage{msg("1"), msg("2")}, Now: e.now})
		wantErr(t, "Send to a missing queue", err, store.ErrQueueNotFound)
		// The queue is not created by a failed send, and a later queue of
		// that name starts empty.
		if names := e.queueNames(); len(names) != 0 {
			t.Fatalf("queues after failed send: %v", names)
		}
		e.createQueue("nope", config())
		wantStats(t, "queue created after failed send", e.stats("nope"), store.Stats{})
	})

	t.Run("BatchAllOrNone", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		// A send whose context is already cancelled either fails and stores
		// nothing, or succeeds and stores everything.
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		batch := []store.NewMessage{msg("1"), msg("2"), msg("3"), msg("4")}
		res, err := e.s.Send(ctx, &store.SendParams{Queue: "q", Messages: batch, Now: e.now})
		want := int64(0)
		if err == nil {
			want = int64(len(res))
			if len(res) != len(batch) {
				t.Fatalf("Send returned %d results for %d messages", len(res), len(batch))
			}
		}
		s := e.stats("q")
		if s.Ready != want || s.SentTotal != want {
			t.Errorf("after Send with a cancelled context (err %v): Ready %d SentTotal %d, want %d", err, s.Ready, s.SentTotal, want)
		}
	})

	t.Run("BatchVisibleAtOnce", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		// A consumer leasing everything while batches of 10 arrive only
		// ever sees whole batches. Choice: with no other consumer, Lease
		// hands out min(Max, leasable) messages, never fewer.
		const batches, size = 30, 10
		done := make(chan error, 1)
		go func() {
			for b := range batches {
				msgs := make([]store.NewMessage, size)
				for i := range msgs {
					msgs[i] = msg(fmt.Sprint(b*size + i))
				}
				if _, err := e.s.Send(e.ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: e.now}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		seen, sent := 0, false
		for !sent || seen < batches*size {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				sent = true
			default:
			}
			res, err := e.s.Lease(e.ctx, &store.LeaseParams{Queue: "q", Max: 1000, Visibility: time.Hour, Now: e.now, Retry: e.retry})
			if err != nil {
				t.Fatalf("Lease: %v", err)
			}
			if n := len(res.Messages); n%size != 0 {
				t.Fatalf("Lease saw %d messages: part of a batch", n)
			}
			seen += len(res.Messages)
			runtime.Gosched()
		}
		if seen != batches*size {
			t.Errorf("leased %d messages, want %d", seen, batches*size)
		}
	})
}
