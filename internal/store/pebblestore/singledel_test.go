package pebblestore

// Index keys go by single deletes (see unindex), which are correct only if
// no index key is ever written twice without a delete between. Broken, the
// rule shows as an index key come back after a compaction: checkSingleDeletes
// compacts the whole store and checks every index key against the records
// (fsckIndex). Pebble itself reports a break only when a single delete and
// both writes meet in one flush or compaction; when the older write is in
// a table and the newer meets the single delete in the next flush, the
// pair vanishes unreported and the older write is back. The randomized
// tests of every verb (TestRandomRoundTrips, TestRandomVerbs) and the
// power-loss workloads end with checkSingleDeletes.

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// checkSingleDeletes compacts s and fails the test if an index key does
// not match its record (fsckIndex), or Pebble reported a single delete that
// met two writes of its key; with exact, also one that met none (harmless
// after a queue's range deletion, so only stores whose queues were never
// deleted are held to it).
func checkSingleDeletes(t *testing.T, s *Store, exact bool) {
	t.Helper()
	flushAndCompact(t, s)
	if n := s.health.nondeterministic.Load(); n != 0 {
		t.Errorf("Pebble saw %d single deletes of a key written twice", n)
	}
	if n := s.health.ineffectual.Load(); exact && n != 0 {
		t.Errorf("Pebble saw %d single deletes of a key never written", n)
	}
	fsckIndex(t, s, "after compacting everything")
}

// fsckIndex fails the test unless every record of every queue has its
// index key, every index key its record, no index key belongs to an
// unknown queue, and the counters agree with the records.
func fsckIndex(t *testing.T, s *Store, when string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	iter := func(lo, hi []byte) *pebble.Iterator {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	for name, q := range s.queues {
		id := q.rec.ID
		want := map[string]uint64{}
		var c counters
		pre := qprefix(tagMsg, id)
		it := iter(pre, prefixEnd(pre))
		for ok := it.First(); ok; ok = it.Next() {
			seq, err := keySeq(it.Key())
			if err != nil {
				t.Fatalf("%s: queue %s: record key %x: %v", when, name, it.Key(), err)
			}
			m, err := decodeMsg(it.Value())
			if err != nil {
				t.Fatalf("%s: queue %s: record %d: %v", when, name, seq, err)
			}
			want[string(indexKey(id, seq, &m))] = seq
			switch m.state {
			case stReady, stWaiting:
				c.ready++
			case stDelayed:
				c.delayed++
			case stInFlight:
				c.inFlight++
			}
		}
		it.Close()
		for _, tag := range []byte{tagReady, tagDelayed, tagLease, tagWaiting} {
			pre := qprefix(tag, id)
			it := iter(pre, prefixEnd(pre))
			for ok := it.First(); ok; ok = it.Next() {
				if _, ok := want[string(it.Key())]; !ok {
					s, _ := keySeq(it.Key())
					t.Errorf("%s: queue %s: index key %c %x (seq %d) without a record in that state", when, name, tag, it.Key(), s)
					continue
				}
				delete(want, string(it.Key()))
			}
			it.Close()
		}
		for k, seq := range want {
			t.Errorf("%s: queue %s: record %d without its index key %x", when, name, seq, k)
		}
		if c.ready != q.c.ready || c.delayed != q.c.delayed || c.inFlight != q.c.inFlight {
			t.Errorf("%s: queue %s: records ready %d delayed %d in flight %d; counters %d %d %d",
				when, name, c.ready, c.delayed, c.inFlight, q.c.ready, q.c.delayed, q.c.inFlight)
		}
	}
	// No index key of a queue the store does not know.
	for _, tag := range []byte{tagReady, tagDelayed, tagLease, tagWaiting} {
		it := iter([]byte{tag}, []byte{tag + 1})
		for ok := it.First(); ok; ok = it.Next() {
			k := it.Key()
			if len(k) < 5 {
				t.Errorf("%s: short index key %x", when, k)
				continue
			}
			qid := uint32(k[1])<<24 | uint32(k[2])<<16 | uint32(k[3])<<8 | uint32(k[4])
			if _, ok := s.byID[qid]; !ok {
				t.Errorf("%s: index key %x of unknown queue %d", when, k, qid)
			}
		}
		it.Close()
	}
}

// TestSingleDeleteMisuseIsReported: the check above fails when the rule is
// broken — a key written twice, then single-deleted, brings the first
// write back — so a pass means something. The three writes share a
// memtable, so that they meet in its flush (in separate level-0 files, a
// background compaction could merge the two writes first, and the break
// would go unseen).
func TestSingleDeleteMisuseIsReported(t *testing.T) {
	t.Parallel()
	s, err := Open(Options{Dir: "db", FS: vfs.NewMem(), FreeBytes: plenty})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := []byte("Zkey")
	for _, err := range []error{
		s.db.Set(k, []byte("first"), pebble.Sync),
		s.db.Set(k, []byte("second"), pebble.Sync),
		s.db.SingleDelete(k, pebble.Sync),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	flushAndCompact(t, s)
	if n := s.health.nondeterministic.Load(); n == 0 {
		t.Fatal("a single delete of a key written twice went unreported")
	}
	v, closer, err := s.db.Get(k)
	if err != nil {
		t.Fatalf("after the compaction: %v; the first write should be back (this is what the rule prevents)", err)
	}
	defer closer.Close()
	if string(v) != "first" {
		t.Fatalf("after the compaction: %q, want the first write back", v)
	}
}
