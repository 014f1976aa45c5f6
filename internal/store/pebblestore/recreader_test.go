package pebblestore

import (
	"bytes"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestRecReaderSeek: a recReader finds a record, or none, as a point
// read does, whatever it read before: in seq order (where it steps to the
// next), in a gap, skipping records, backwards, beyond the last, and after
// running off the end.
func TestRecReaderSeek(t *testing.T) {
	t.Parallel()
	s := handoffStore(t, vfs.NewMem())
	sendBodies(t, s, `1`, `2`, `3`, `4`, `5`)
	err := s.update(handoffNow, func(t2 *txn) error {
		w, _ := t2.queue("q")
		var seqs []uint64
		it, err := t2.iter(qprefix(tagMsg, w.rec.ID), prefixEnd(qprefix(tagMsg, w.rec.ID)))
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			seq, err := keySeq(it.Key())
			if err != nil {
				return err
			}
			seqs = append(seqs, seq)
		}
		if err := it.Close(); err != nil {
			return err
		}
		if len(seqs) != 5 {
			t.Fatalf("%d records, want 5", len(seqs))
		}
		// The third record goes (in this txn's batch), leaving a gap.
		if err := t2.b.Delete(t2.recordKey(w, seqs[2]), nil); err != nil {
			return err
		}
		r, err := t2.records(w)
		if err != nil {
			return err
		}
		defer r.close()
		absent := []uint64{seqs[0] - 1, seqs[2], seqs[4] + 1}
		order := []uint64{
			seqs[0], seqs[1], // in order: each the next
			absent[1], seqs[3], // between two: the next is above it
			seqs[3],          // the same again
			seqs[4], seqs[3], // a skip, then back
			seqs[1], seqs[3], absent[2], // beyond the last: the iterator runs off
			seqs[4], absent[0], seqs[0], // after that, found again
		}
		for i, seq := range order {
			v, want, err := t2.get(t2.recordKey(w, seq))
			if err != nil {
				return err
			}
			m, err := r.get(seq)
			got := err == nil
			if got != want {
				t.Fatalf("step %d, seq %d: recReader found %v (err %v), a point read %v", i, seq, got, err, want)
			}
			if got {
				wm, err := decodeMsg(v)
				if err != nil {
					return err
				}
				if !bytes.Equal(m.body, wm.body) {
					t.Fatalf("step %d, seq %d: body %q, want %q", i, seq, m.body, wm.body)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
