package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// cursorInvariant: for every queue, no live key of the delayed or lease
// keyspace lies below its cursor, a live marker (cursors.liveLease) is a
// live key, and one the cursor still holds is the keyspace's first live
// key — what nextDue then answers without reading.
func cursorInvariant(t *testing.T, s *Store, when string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, q := range s.queues {
		for _, d := range []struct {
			what      string
			tag       byte
			cur, live []byte
		}{{"delayed", tagDelayed, q.cur.delayed, q.cur.liveDelayed}, {"lease", tagLease, q.cur.lease, q.cur.liveLease}} {
			pre := qprefix(d.tag, q.rec.ID)
			it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: pre, UpperBound: prefixEnd(pre)})
			if err != nil {
				t.Fatal(err)
			}
			var first []byte
			if it.First() {
				first = append([]byte(nil), it.Key()...)
			}
			if err := it.Close(); err != nil {
				t.Fatal(err)
			}
			if first != nil && d.cur != nil && string(first) < string(d.cur) {
				t.Fatalf("%s: queue %s: live %s key %x below the cursor %x", when, name, d.what, first, d.cur)
			}
			if d.live != nil {
				if _, closer, err := s.db.Get(d.live); err != nil {
					t.Fatalf("%s: queue %s: %s marker %x is not live: %v", when, name, d.what, d.live, err)
				} else {
					closer.Close()
				}
			}
			if d.live != nil && d.cur != nil && string(d.live) == string(d.cur) && string(first) != string(d.live) {
				t.Fatalf("%s: queue %s: %s marker %x on the cursor, first live key %x", when, name, d.what, d.live, first)
			}
		}
	}
}

// TestNextDueTrustsItsMarker: once nextDue has found the first live lease,
// it answers from the marked cursor without reading (shown by a marker whose
// time no key has); deleting the marked key (an ack) makes it read again,
// and a keyspace its counter says is empty is not read at all.
func TestNextDueTrustsItsMarker(t *testing.T) {
	t.Parallel()
	s := handoffStore(t, vfs.NewMem())
	sendBodies(t, s, `1`, `2`)
	var leases []string
	next := func(f func(w *qwork)) (at time.Time) {
		t.Helper()
		err := s.update(handoffNow, func(t *txn) error {
			w, _ := t.queue("q")
			if f != nil {
				f(w)
			}
			var err error
			at, err = t.nextDue(w)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	if at := next(nil); !at.IsZero() {
		t.Fatalf("nextDue with nothing in flight or delayed = %v, want zero", at)
	}
	for i, vis := range []time.Duration{time.Minute, 2 * time.Minute} {
		err := s.update(handoffNow, func(t *txn) error {
			w, _ := t.queue("q")
			ms, err := t.lease(w, 1, 0, vis)
			if err == nil && len(ms) == 1 {
				leases = append(leases, ms[0].Lease)
			}
			return err
		})
		if err != nil || len(leases) != i+1 {
			t.Fatalf("lease %d: %v, %d leases", i, err, len(leases))
		}
	}
	if at := next(nil); !at.Equal(handoffNow.Add(time.Minute)) {
		t.Fatalf("nextDue = %v, want the first lease's expiry %v", at, handoffNow.Add(time.Minute))
	}
	// A marker on the cursor is believed: one a minute earlier than any key.
	fake := handoffNow.Add(30 * time.Second)
	at := next(func(w *qwork) {
		k := timeKey(tagLease, w.rec.ID, fake, 1)
		w.cur.lease, w.cur.liveLease = k, k
	})
	if !at.Equal(fake) {
		t.Fatalf("nextDue with the cursor marked = %v, want the marker's %v", at, fake)
	}
	// Unmarked, the same cursor is read from: the first lease again.
	at = next(func(w *qwork) { w.cur.liveLease = nil })
	if !at.Equal(handoffNow.Add(time.Minute)) {
		t.Fatalf("nextDue unmarked = %v, want %v", at, handoffNow.Add(time.Minute))
	}
	// The ack of the first lease deletes the marked key: the second's expiry.
	if errs := ackLeases(t, s, handoffNow, leases[0]); errs[0] != nil {
		t.Fatalf("ack 0: %v", errs[0])
	}
	if at := next(nil); !at.Equal(handoffNow.Add(2 * time.Minute)) {
		t.Fatalf("nextDue after the first ack = %v, want %v", at, handoffNow.Add(2*time.Minute))
	}
	if errs := ackLeases(t, s, handoffNow, leases[1]); errs[0] != nil {
		t.Fatalf("ack 1: %v", errs[0])
	}
	// Nothing in flight: the cursor skips the whole lease index.
	next(func(w *qwork) {
		if string(w.cur.lease) == string(prefixEnd(qprefix(tagLease, w.rec.ID))) {
			t.Fatalf("the lease cursor was at the end before the check")
		}
	})
	next(func(w *qwork) {})
	s.mu.Lock()
	q := s.queues["q"]
	atEnd := string(q.cur.lease) == string(prefixEnd(qprefix(tagLease, q.rec.ID)))
	s.mu.Unlock()
	if !atEnd {
		t.Fatalf("with nothing in flight, nextDue left the lease cursor at %x, want the keyspace's end", q.cur.lease)
	}
	// And a marker is not read.
	at = next(func(w *qwork) {
		k := timeKey(tagLease, w.rec.ID, fake, 1)
		w.cur.lease, w.cur.liveLease = k, k
	})
	if !at.IsZero() {
		t.Fatalf("nextDue with nothing in flight = %v, want zero", at)
	}
}

// TestNextDueAfterAnEarlierLease: a lease that expires before the marked
// first one moves the cursor below it (lower), and nextDue answers the
// earlier expiry, not the marker's.
func TestNextDueAfterAnEarlierLease(t *testing.T) {
	t.Parallel()
	s := handoffStore(t, vfs.NewMem())
	sendBodies(t, s, `1`, `2`)
	for _, c := range []struct {
		vis  time.Duration
		want time.Duration
	}{{2 * time.Minute, 2 * time.Minute}, {time.Minute, time.Minute}} {
		var at time.Time
		err := s.update(handoffNow, func(t *txn) error {
			w, _ := t.queue("q")
			if _, err := t.lease(w, 1, 0, c.vis); err != nil {
				return err
			}
			var err error
			at, err = t.nextDue(w)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !at.Equal(handoffNow.Add(c.want)) {
			t.Fatalf("after a lease of %v: nextDue %v, want %v", c.vis, at, handoffNow.Add(c.want))
		}
	}
}

// TestOpenCorrectsTimedCounts: a directory whose counters say no message
// is delayed or in flight while the index holds one of each (no path
// writes that; a bug of some older build could have) opens with the
// counters counted again from the index, says so in the log, and the
// delayed message still comes due, which nextDue's and the due scans'
// trust in the counters would otherwise prevent for good.
func TestOpenCorrectsTimedCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fs := vfs.NewMem()
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: handoffNow}); err != nil {
		t.Fatal(err)
	}
	sendBodies(t, s, `1`)
	sendMessages(t, s, store.NewMessage{Body: []byte(`2`), Kind: store.BodyJSON, NotBefore: handoffNow.Add(10 * time.Second)})
	if res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Now: handoffNow}); err != nil || len(res.Messages) != 1 {
		t.Fatalf("lease: %v, %d messages", err, len(res.Messages))
	}
	s.mu.Lock()
	qid, c := s.queues["q"].rec.ID, s.queues["q"].c
	s.mu.Unlock()
	if c.delayed != 1 || c.inFlight != 1 {
		t.Fatalf("counters %+v, want one delayed and one in flight", c)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Break the counters with Pebble alone.
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	broken := c
	broken.delayed, broken.inFlight = 0, 0
	if err := errors.Join(db.Set(statsKey(qid), broken.encode(), pebble.Sync), db.Close()); err != nil {
		t.Fatal(err)
	}

	var logged bytes.Buffer
	s, err = Open(Options{Dir: "db", FS: fs, FreeBytes: plenty, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := queueStats(t, s); st.Delayed != 1 || st.InFlight != 1 {
		t.Errorf("after reopening: %d delayed, %d in flight; want 1 and 1", st.Delayed, st.InFlight)
	}
	for _, want := range []string{"messages=delayed stored=0 counted=1", `messages="in flight" stored=0 counted=1`} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("log %q does not say %q", logged.String(), want)
		}
	}
	res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 2, Now: handoffNow.Add(11 * time.Second)})
	if err != nil || len(res.Messages) != 1 || string(res.Messages[0].Body) != `2` {
		t.Fatalf("lease once the delayed message is due: %v, %+v", err, res.Messages)
	}
}
