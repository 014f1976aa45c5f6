package pebblestore

// Index keys go by single deletes (see unindex), which are correct only if
// no index key is ever written twice without a delete between. Pebble
// notices a break of that rule when a single delete and both writes meet
// in one flush or compaction. The randomized tests of every verb
// (TestRandomRoundTrips, TestLeaseMemoRandom) end with checkSingleDeletes:
// their whole history sits in one memtable (or the few level-0 files of
// their reopenings), so every write of a key meets the others there.

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// checkSingleDeletes compacts s and fails the test if Pebble reported a
// single delete that met two writes of its key; with exact, also one that
// met none (harmless after a queue's range deletion, so only stores whose
// queues were never deleted are held to it).
func checkSingleDeletes(t *testing.T, s *Store, exact bool) {
	t.Helper()
	flushAndCompact(t, s)
	if n := s.health.nondeterministic.Load(); n != 0 {
		t.Errorf("Pebble saw %d single deletes of a key written twice", n)
	}
	if n := s.health.ineffectual.Load(); exact && n != 0 {
		t.Errorf("Pebble saw %d single deletes of a key never written", n)
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
