package pebblestore

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// rawRecord is the stored value of a message's record, as Pebble merges it.
func rawRecord(t *testing.T, s *Store, qid uint32, seq uint64) []byte {
	t.Helper()
	v, closer, err := s.db.Get(seqKey(tagMsg, qid, seq))
	if err != nil {
		t.Fatalf("record %d: %v", seq, err)
	}
	defer closer.Close()
	return bytes.Clone(v)
}

// flushAndCompact flushes s's memtable and compacts every key, so that
// records and their operands are folded into one value in a table.
func flushAndCompact(t *testing.T, s *Store) {
	t.Helper()
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		t.Fatal(err)
	}
}

// handedOff runs send while a receive of up to 10 waits on q, and returns
// the n messages the send handed to it.
func handedOff(t *testing.T, s *Store, n int, send func()) []store.Message {
	t.Helper()
	c := s.Claim(&store.LeaseParams{Queue: "q", Max: 10, Visibility: time.Hour})
	send()
	got, err := c.Withdraw()
	if err != nil || len(got) != n {
		t.Fatalf("claim: %d messages, %v; want %d", len(got), err, n)
	}
	return got
}

// TestLeaseMergesOneOperand: a lease leaves the stored record as it
// was plus one operand (not a rewrite), through a regrouped batch; a flush
// and a full compaction fold operand and record into one value that reads
// the same; the leases still ack, through the iterator path (>= 8 leases).
func TestLeaseMergesOneOperand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := handoffStore(t, vfs.NewMem())
	big := string(bytes.Repeat([]byte("x"), inlineMax+1)) // body under its own key
	res := sendBodies(t, s, `"a"`, `"b"`, `"c"`, `"d"`, `"e"`, `"f"`, `"g"`, `"h"`, `"`+big+`"`)
	qid := s.queues["q"].rec.ID
	before := map[uint64][]byte{}
	for _, r := range res {
		seq, _ := parseID(r.ID)
		before[seq] = rawRecord(t, s, qid, seq)
	}
	lr, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 20, Visibility: time.Hour, Now: handoffNow})
	if err != nil || len(lr.Messages) != len(res) {
		t.Fatalf("lease: %d messages, %v", len(lr.Messages), err)
	}
	check := func(when string) {
		t.Helper()
		for _, m := range lr.Messages {
			seq, nonce, err := parseLease(m.Lease)
			if err != nil {
				t.Fatal(err)
			}
			raw := rawRecord(t, s, qid, seq)
			if !bytes.HasPrefix(raw, before[seq]) {
				t.Fatalf("%s: record %d rewritten at lease: %x, was %x", when, seq, raw, before[seq])
			}
			got, err := decodeMsg(raw)
			if err != nil {
				t.Fatalf("%s: record %d: %v", when, seq, err)
			}
			want := got
			want.state, want.attempt, want.nonce, want.leaseExp = stInFlight, 1, nonce, m.LeaseExpiresAt
			if op := appendLeaseOp(nil, &want); !bytes.Equal(raw[len(before[seq]):], op) {
				t.Fatalf("%s: record %d ends %x; want exactly one operand %x", when, seq, raw[len(before[seq]):], op)
			}
			if d := diffMsg(want, got); d != "" {
				t.Fatalf("%s: record %d: %s", when, seq, d)
			}
		}
	}
	check("in the memtable")
	flushAndCompact(t, s)
	check("compacted")
	var leases []string
	for _, m := range lr.Messages {
		leases = append(leases, m.Lease)
	}
	errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: leases, Now: handoffNow})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("ack %d: %v", i, e)
		}
	}
}

// TestHandoffSetThenMergeOneBatch: a send that hands its messages to
// a waiting receive writes each record (Set) and its lease operand (Merge)
// in one regrouped batch; the record read back, after a flush, compaction
// and reopening, is in flight with the claim's lease, and a nack rewrites
// it whole (no operand left).
func TestHandoffSetThenMergeOneBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fs := vfs.NewMem()
	s := handoffStore(t, fs)
	got := handedOff(t, s, 8, func() { sendBodies(t, s, `1`, `2`, `3`, `4`, `5`, `6`, `7`, `8`) })
	flushAndCompact(t, s)
	s = reopen(t, s, fs)
	qid := s.queues["q"].rec.ID
	for _, m := range got {
		seq, nonce, _ := parseLease(m.Lease)
		raw := rawRecord(t, s, qid, seq)
		r, err := decodeMsg(raw)
		if err != nil || r.state != stInFlight || r.nonce != nonce || r.attempt != 1 || !r.leaseExp.Equal(m.LeaseExpiresAt) {
			t.Fatalf("record %d after hand-off: %+v, %v", seq, r, err)
		}
	}
	m := got[3]
	if _, err := s.Nack(ctx, &store.NackParams{Queue: "q", Lease: m.Lease, Retry: retryNow, Now: handoffNow}); err != nil {
		t.Fatal(err)
	}
	seq, _, _ := parseLease(m.Lease)
	raw := rawRecord(t, s, qid, seq)
	r, err := decodeMsg(raw)
	if err != nil || r.state == stInFlight {
		t.Fatalf("record after nack: %+v, %v", r, err)
	}
	if enc := r.encode(); !bytes.Equal(raw, enc) {
		t.Fatalf("record after nack still carries an operand: %x; its encoding %x", raw, enc)
	}
}
