package pebblestore

import "testing"

// TestTablesStayWithinTag fills a queue, drains most of it, and checks
// that no table the store wrote (by flushes and compactions, with
// memtables small enough for many of each) holds keys of two keyspaces:
// a table from the drain's deletes must not span the live records between
// the head of one keyspace and the next (see tablesWithinTag).
func TestTablesStayWithinTag(t *testing.T) {
	s, tick := openWithQueue(t, Options{Dir: t.TempDir(), MemTableBytes: 256 << 10, CacheBytes: 1 << 20})
	defer s.Close()
	const n = 20000
	for left := n; left > 0; left -= 1000 {
		send(t, s, batchOf(1000), tick())
	}
	drain(t, s, n*3/4, 500, tick)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	levels, err := s.db.SSTables()
	if err != nil {
		t.Fatal(err)
	}
	tables, tags := 0, map[byte]bool{}
	for level, ts := range levels {
		for _, tb := range ts {
			tables++
			lo, hi := tb.Smallest.UserKey, tb.Largest.UserKey
			tags[lo[0]] = true
			if lo[0] != hi[0] {
				t.Errorf("L%d table %s spans keyspaces %q to %q", level, tb.FileNum, lo[:1], hi[:1])
			}
		}
	}
	// The check means something only if there were tables of several
	// keyspaces to keep apart.
	if len(tags) < 3 || tables <= len(tags) {
		t.Fatalf("%d tables of %d keyspaces: too few to check", tables, len(tags))
	}
	t.Logf("%d tables, keyspaces %q", tables, keys(tags))
}

func keys(m map[byte]bool) []byte {
	var b []byte
	for k := range m {
		b = append(b, k)
	}
	return b
}
