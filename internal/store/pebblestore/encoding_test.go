package pebblestore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Unit tests for the key layout and the record encodings in keys.go and
// record.go; encoding_fuzz_test.go holds the fuzz targets, which share the
// helpers below.

// testSeqs are seqs around the byte and word boundaries of the big-endian
// encoding.
var testSeqs = []uint64{0, 1, 0xff, 0x100, 1<<32 - 1, 1 << 32, 1<<63 - 1, 1 << 63, math.MaxUint64 - 1, math.MaxUint64}

// testTimes are instants from 1970 on, the range the keys encode, in order.
var testTimes = []time.Time{
	time.Unix(0, 0).UTC(),
	time.Unix(0, 1).UTC(),
	time.Unix(0, 0xff).UTC(),
	time.Unix(0, 0x100).UTC(),
	time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC),
	time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC),
	time.Unix(0, math.MaxInt64-1).UTC(),
	time.Unix(0, math.MaxInt64).UTC(),
}

// sign is the sign of a comparison result, for comparing two of them.
func sign(c int) int { return cmp.Compare(c, 0) }

func TestKeyReadyOrder(t *testing.T) {
	t.Parallel()
	type entry struct {
		prio int
		seq  uint64
		key  []byte
	}
	var all []entry
	for prio := -100; prio <= 100; prio++ {
		for _, seq := range testSeqs {
			all = append(all, entry{prio, seq, readyKey(7, prio, seq)})
		}
	}
	for _, a := range all {
		for _, b := range all {
			// Higher priority first, then older (lower seq) first.
			want := cmp.Or(cmp.Compare(b.prio, a.prio), cmp.Compare(a.seq, b.seq))
			if got := sign(bytes.Compare(a.key, b.key)); got != want {
				t.Fatalf("readyKey(prio %d, seq %d) vs (prio %d, seq %d): bytes.Compare = %d, want %d",
					a.prio, a.seq, b.prio, b.seq, got, want)
			}
		}
	}
}

func TestKeyTimeOrder(t *testing.T) {
	t.Parallel()
	for _, tag := range []byte{tagDelayed, tagLease} {
		for i, ta := range testTimes {
			for j, tb := range testTimes {
				for _, sa := range testSeqs {
					for _, sb := range testSeqs {
						ka, kb := timeKey(tag, 7, ta, sa), timeKey(tag, 7, tb, sb)
						want := cmp.Or(cmp.Compare(i, j), cmp.Compare(sa, sb))
						if got := sign(bytes.Compare(ka, kb)); got != want {
							t.Fatalf("timeKey(%c, %v, %d) vs (%v, %d): bytes.Compare = %d, want %d",
								tag, ta, sa, tb, sb, got, want)
						}
					}
				}
			}
		}
	}
}

func TestKeyQueuesDoNotInterleave(t *testing.T) {
	t.Parallel()
	// Every key of queue 1 sorts before every key of queue 2, in each keyspace,
	// and inside [qprefix, prefixEnd(qprefix)) of its own queue.
	qids := []uint32{0, 1, 2, 0xff, 0x100, math.MaxUint32}
	keysOf := func(qid uint32) [][]byte {
		var ks [][]byte
		for _, seq := range []uint64{0, math.MaxUint64} {
			ks = append(ks, seqKey(tagMsg, qid, seq), readyKey(qid, -100, seq), readyKey(qid, 100, seq),
				timeKey(tagDelayed, qid, testTimes[len(testTimes)-1], seq), waitingKey(qid, strings.Repeat("\xff", 255), seq))
		}
		return append(ks, statsKey(qid), groupPrefix(tagHead, qid, ""), dedupKey(qid, "\xff\xff"),
			dedupByKey(qid, testTimes[len(testTimes)-1], "\xff"))
	}
	for i, qa := range qids {
		for _, ka := range keysOf(qa) {
			pre := qprefix(ka[0], qa)
			if end := prefixEnd(pre); !bytes.HasPrefix(ka, pre) || (end != nil && bytes.Compare(ka, end) >= 0) {
				t.Fatalf("key %x of queue %d is outside [%x, %x)", ka, qa, pre, end)
			}
			for _, qb := range qids[i+1:] {
				for _, kb := range keysOf(qb) {
					if ka[0] == kb[0] && bytes.Compare(ka, kb) >= 0 {
						t.Fatalf("key %x of queue %d does not sort before key %x of queue %d", ka, qa, kb, qb)
					}
				}
			}
		}
	}
}

func TestKeyTimeUpTo(t *testing.T) {
	t.Parallel()
	for _, tag := range []byte{tagDelayed, tagLease, tagDedupBy} {
		for _, at := range testTimes[:len(testTimes)-1] { // the last has no t+1ns
			up := timeUpTo(tag, 7, at)
			next := at.Add(time.Nanosecond)
			for _, seq := range testSeqs {
				if k := timeKey(tag, 7, at, seq); bytes.Compare(k, up) >= 0 {
					t.Errorf("timeUpTo(%c, %v) = %x excludes the key at t, seq %d: %x", tag, at, up, seq, k)
				}
				if k := timeKey(tag, 7, next, seq); bytes.Compare(k, up) < 0 {
					t.Errorf("timeUpTo(%c, %v) = %x includes the key at t+1ns, seq %d: %x", tag, at, up, seq, k)
				}
			}
			if tag != tagDedupBy {
				continue
			}
			// Dedup-by keys end in the dedup key instead of a seq.
			for _, dk := range []string{"", "\x00", "\xff\xff\xff\xff\xff\xff\xff\xff\xff"} {
				if k := dedupByKey(7, at, dk); bytes.Compare(k, up) >= 0 {
					t.Errorf("timeUpTo(%c, %v) excludes dedupByKey %q at t", tag, at, dk)
				}
				if k := dedupByKey(7, next, dk); bytes.Compare(k, up) < 0 {
					t.Errorf("timeUpTo(%c, %v) includes dedupByKey %q at t+1ns", tag, at, dk)
				}
			}
		}
	}
	// The bound at the last representable instant still includes it.
	last := testTimes[len(testTimes)-1]
	if k, up := timeKey(tagDelayed, 7, last, math.MaxUint64), timeUpTo(tagDelayed, 7, last); bytes.Compare(k, up) >= 0 {
		t.Errorf("timeUpTo(%v) = %x excludes %x", last, up, k)
	}
}

func TestKeyPrefixEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ p, want string }{
		{"", ""}, // no prefix: no upper bound
		{"a", "b"},
		{"a\x00", "a\x01"},
		{"a\xff", "b"},
		{"a\xfe\xff\xff", "a\xff"},
		{"\xff", ""},
		{"\xff\xff\xff", ""},
		{"\x00\xff", "\x01"},
	} {
		p := []byte(tc.p)
		end := prefixEnd(p)
		if string(p) != tc.p {
			t.Errorf("prefixEnd(%q) changed its argument to %q", tc.p, p)
		}
		if tc.want == "" {
			if end != nil {
				t.Errorf("prefixEnd(%q) = %q, want nil (no bound)", tc.p, end)
			}
		} else if string(end) != tc.want {
			t.Errorf("prefixEnd(%q) = %q, want %q", tc.p, end, tc.want)
		}
		// Keys around the bound: exactly those with the prefix are in [p, end).
		keys := []string{"", tc.p, tc.p + "\x00", tc.p + "\xff\xff\xff\xff", tc.want, tc.want + "\x00", "\xff\xff\xff\xff\xff"}
		if n := len(tc.p); n > 0 {
			keys = append(keys, tc.p[:n-1], tc.p[:n-1]+"\xff\xff\xff\xff\xff\xff")
		}
		if n := len(tc.want); n > 0 {
			// The largest keys below end: the last byte lowered, then 0xff bytes.
			below := tc.want[:n-1] + string(tc.want[n-1]-1)
			keys = append(keys, below, below+"\xff\xff\xff\xff\xff\xff")
		}
		for _, k := range keys {
			checkPrefixEnd(t, p, end, []byte(k))
		}
	}
}

// checkPrefixEnd asserts that k has prefix p exactly when p <= k < end (end
// nil: no bound). That makes end an upper bound of the keys with prefix p
// and the smallest one: any smaller u in [p, end) would itself have prefix p.
func checkPrefixEnd(t *testing.T, p, end, k []byte) {
	t.Helper()
	inRange := bytes.Compare(p, k) <= 0 && (end == nil || bytes.Compare(k, end) < 0)
	if has := bytes.HasPrefix(k, p); has != inRange {
		t.Errorf("prefixEnd(%q) = %q: key %q has prefix %v, in [p, end) %v", p, end, k, has, inRange)
	}
}

func TestKeyGroupPrefixIsLengthPrefixed(t *testing.T) {
	t.Parallel()
	for _, tag := range []byte{tagWaiting, tagHead} {
		for _, tc := range []struct{ a, b string }{{"a", "ab"}, {"ab", "a"}, {"", "a"}, {"a", "a\x00"}} {
			pa := groupPrefix(tag, 7, tc.a)
			if pb := groupPrefix(tag, 7, tc.b); bytes.HasPrefix(pb, pa) {
				t.Errorf("groupPrefix(%c, %q) = %x is a prefix of groupPrefix(%q) = %x", tag, tc.a, pa, tc.b, pb)
			}
			// 'b'<<56: a seq whose first byte continues group "a" as "ab".
			for _, seq := range append([]uint64{'b' << 56}, testSeqs...) {
				if kb := waitingKey(7, tc.b, seq); bytes.HasPrefix(kb, pa) {
					t.Errorf("groupPrefix(%c, %q) = %x is a prefix of waitingKey(%q, %d) = %x", tag, tc.a, pa, tc.b, seq, kb)
				}
			}
		}
	}
	for _, seq := range testSeqs {
		if k, p := waitingKey(7, "a", seq), groupPrefix(tagWaiting, 7, "a"); !bytes.HasPrefix(k, p) {
			t.Errorf("waitingKey(a, %d) = %x lacks its group prefix %x", seq, k, p)
		}
	}
}

func TestKeyFieldsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, seq := range testSeqs {
		for _, k := range [][]byte{seqKey(tagMsg, 7, seq), readyKey(7, 3, seq), timeKey(tagLease, 7, testTimes[4], seq), waitingKey(7, "g", seq)} {
			if got, err := keySeq(k); err != nil || got != seq {
				t.Errorf("keySeq(%x) = %d, %v; want %d", k, got, err, seq)
			}
		}
	}
	for _, at := range testTimes {
		if got, err := keyTime(timeKey(tagDelayed, 7, at, 5)); err != nil || !got.Equal(at) {
			t.Errorf("keyTime(timeKey(%v)) = %v, %v", at, got, err)
		}
	}
	for _, k := range [][]byte{nil, qprefix(tagMsg, 7), append(qprefix(tagMsg, 7), 1, 2, 3, 4, 5, 6, 7)} {
		if _, err := keySeq(k); err == nil {
			t.Errorf("keySeq(%x) accepted a short key", k)
		}
		if _, err := keyTime(k); err == nil {
			t.Errorf("keyTime(%x) accepted a short key", k)
		}
	}
}

func TestEncodingID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		seq uint64
		id  string
	}{
		{0, "0000000000000"},
		{1, "0000000000001"},
		{31, "000000000000Z"},
		{32, "0000000000010"},
		{1 << 60, "1000000000000"},
		{1 << 61, "2000000000000"},
		{1<<63 - 1, "7ZZZZZZZZZZZZ"},
		{math.MaxUint64, "FZZZZZZZZZZZZ"},
	} {
		if got := formatID(tc.seq); got != tc.id {
			t.Errorf("formatID(%d) = %q, want %q", tc.seq, got, tc.id)
		}
		if got, err := parseID(tc.id); err != nil || got != tc.seq {
			t.Errorf("parseID(%q) = %d, %v; want %d", tc.id, got, err, tc.seq)
		}
	}
	for _, bad := range []string{
		"", "000000000000", "00000000000000", // length
		"G000000000000", "Z000000000000", // beyond 64 bits
		"000000000000I", "000000000000L", "000000000000O", "000000000000U", // not in the alphabet
		"000000000000a", "0000000000z00", // lower case: one spelling only
		"000000000000-", "\xff" + strings.Repeat("0", 12),
	} {
		if seq, err := parseID(bad); err == nil {
			t.Errorf("parseID(%q) = %d, want an error", bad, seq)
		}
	}
}

func TestEncodingLease(t *testing.T) {
	t.Parallel()
	for _, tc := range [][2]uint64{{0, 0}, {1, 2}, {math.MaxUint64, math.MaxUint64}, {1 << 63, 1}} {
		s := formatLease(tc[0], tc[1])
		if len(s) != 22 {
			t.Errorf("formatLease(%d, %d) = %q: %d characters, want 22", tc[0], tc[1], s, len(s))
		}
		if seq, nonce, err := parseLease(s); err != nil || seq != tc[0] || nonce != tc[1] {
			t.Errorf("parseLease(%q) = %d, %d, %v; want %d, %d", s, seq, nonce, err, tc[0], tc[1])
		}
	}
	for _, bad := range []string{
		"", "AAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAA", // length
		"AAAAAAAAAAAAAAAAAAAAAB",  // non-zero padding bits: a second spelling of …AA
		"AAAAAAAAAAAAAAAAAAAA==",  // padded
		"AAAAAAAAAAAAAAAAAAAAA\n", // the decoder skips newlines
		"AAAAAAAAAA\nAAAAAAAAAAA", //
		"AAAAAAAAAAAAAAAAAAAA+/",  // standard, not URL, alphabet
		"AAAAAAAAAAAAAAAAAAAAA\r", //
	} {
		if seq, nonce, err := parseLease(bad); err == nil {
			t.Errorf("parseLease(%q) = %d, %d, want an error", bad, seq, nonce)
		}
	}
}

// testMsg is a record with every field set.
func testMsg() msg {
	return msg{
		state: stInFlight, kind: 2, priority: -7, attempt: 3,
		sentAt:   time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC),
		due:      time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC),
		nonce:    math.MaxUint64 - 5,
		leaseExp: time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC),
		deadFrom: 9, group: "g", dedupKey: "d", lastError: "boom",
		headers: map[string]string{"a": "1", "": "", "b": "\x00"},
		inline:  true, body: []byte(`{"x":1}`),
	}
}

func TestEncodingMsgRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []msg{testMsg(), {state: stReady}, {state: stWaiting, inline: true, body: []byte{}}} {
		got, err := decodeMsg(m.encode())
		if err != nil {
			t.Fatalf("decodeMsg(encode(%+v)): %v", m, err)
		}
		if d := diffMsg(m, got); d != "" {
			t.Errorf("decodeMsg(encode(m)) differs: %s", d)
		}
	}
}

func TestEncodingMsgDeterministic(t *testing.T) {
	t.Parallel()
	m := testMsg()
	for i := range 16 {
		m.headers[fmt.Sprint("h", i)] = fmt.Sprint(i)
	}
	first := m.encode()
	for range 50 { // map iteration order varies from one range to the next
		if b := m.encode(); !bytes.Equal(b, first) {
			t.Fatalf("encoding one record twice gave %x, then %x", first, b)
		}
	}
}

func TestEncodingMsgRejects(t *testing.T) {
	t.Parallel()
	tm := testMsg()
	good := tm.encode()
	for i := range good {
		if _, err := decodeMsg(good[:i]); err == nil {
			t.Errorf("decodeMsg accepted a record cut to %d of %d bytes", i, len(good))
		}
	}
	if _, err := decodeMsg(append(good[:len(good):len(good)], 0)); err == nil {
		t.Error("decodeMsg accepted trailing bytes")
	}
	for _, st := range []msgState{0, stWaiting + 1, 0xff} {
		m := testMsg()
		m.state = st
		if _, err := decodeMsg(m.encode()); err == nil {
			t.Errorf("decodeMsg accepted state %d", st)
		}
	}
	// A time past the int64 nanosecond range would decode to an instant
	// before 1970 that encodes back as "unset".
	// The rest of the record is valid: with sentAt 1<<63-1 it decodes.
	for sentAt, ok := range map[uint64]bool{1<<63 - 1: true, 1 << 63: false, math.MaxUint64: false} {
		b := binary.AppendUvarint([]byte{recordVersion, byte(stReady), 1, 0, 0}, sentAt)
		b = append(b, make([]byte, 17)...) // due, nonce (8), leaseExp … inline, flags
		if m, err := decodeMsg(b); (err == nil) != ok {
			t.Errorf("decodeMsg with sentAt %d ns: %v, %v; want ok %v", sentAt, m.sentAt, err, ok)
		}
	}
}

// TestEncodingMsgLengthPrefixAlloc feeds records whose length prefixes claim
// more than the input holds: each must fail without allocating for the claim.
func TestEncodingMsgLengthPrefixAlloc(t *testing.T) {
	// Not parallel: it measures the bytes allocated while it runs.
	head := []byte{recordVersion, byte(stReady), 1, 0, 0, 0, 0}
	head = append(head, make([]byte, 8)...)                                           // nonce
	head = append(head, 0, 0)                                                         // leaseExp, deadFrom
	if _, err := decodeMsg(append(bytes.Clone(head), 0, 0, 0, 0, 0, 0)); err != nil { // … inline, flags
		t.Fatalf("the valid record these cases start from: %v", err)
	}
	for name, b := range map[string][]byte{
		"group":   binary.AppendUvarint(bytes.Clone(head), 1<<40),
		"headers": binary.AppendUvarint(append(bytes.Clone(head), 0, 0, 0), 1<<20),
		"header":  binary.AppendUvarint(append(bytes.Clone(head), 0, 0, 0, 1), 1<<40),
		"body":    binary.AppendUvarint(append(bytes.Clone(head), 0, 0, 0, 0, 1), 1<<40),
	} {
		var err error
		if n := allocated(func() { _, err = decodeMsg(b) }); n > maxDecodeAlloc(len(b)) {
			t.Errorf("%s: decodeMsg of %d bytes allocated %d bytes", name, len(b), n)
		}
		if err == nil {
			t.Errorf("%s: decodeMsg accepted a length beyond the input", name)
		}
	}
}

// allocated returns the bytes f allocates, at least: the fewest counted in
// three runs of f. The count is the process's, so it also holds what other
// goroutines allocate meanwhile (the fuzzing engine's, under -fuzz); an
// allocation of f's own shows in every run, theirs rarely in all three.
// f must do the same each time it runs.
func allocated(f func()) uint64 {
	least := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// maxDecodeAlloc bounds what decoding n bytes may allocate: the strings it
// copies, a header map sized by at most n entries, and slack for anything
// else running. A length prefix beyond the input must not count.
func maxDecodeAlloc(n int) uint64 { return 128*uint64(n) + 1<<20 }

func TestEncodingCounters(t *testing.T) {
	t.Parallel()
	for _, c := range []counters{{}, {1, 2, 3, 4, 5, 6, 7}, {math.MinInt64, -1, 0, 1, math.MaxInt64, math.MaxInt64, 3}} {
		b := c.encode()
		got, err := decodeCounters(b)
		if err != nil || got != c {
			t.Errorf("decodeCounters(encode(%+v)) = %+v, %v", c, got, err)
		}
		if _, err := decodeCounters(b[:len(b)-1]); err == nil {
			t.Errorf("decodeCounters accepted %+v cut by a byte", c)
		}
		if _, err := decodeCounters(append(b, 0)); err == nil {
			t.Errorf("decodeCounters accepted %+v with a trailing byte", c)
		}
	}
}

// diffMsg names the fields where two records differ; "" if none do. Times
// compare as instants, headers as maps (nil equals empty), the body only
// when inline.
func diffMsg(a, b msg) string {
	var d []string
	field := func(name string, equal bool, x, y any) {
		if !equal {
			d = append(d, fmt.Sprintf("%s: %#v != %#v", name, x, y))
		}
	}
	field("state", a.state == b.state, a.state, b.state)
	field("kind", a.kind == b.kind, a.kind, b.kind)
	field("priority", a.priority == b.priority, a.priority, b.priority)
	field("attempt", a.attempt == b.attempt, a.attempt, b.attempt)
	field("sentAt", a.sentAt.Equal(b.sentAt), a.sentAt, b.sentAt)
	field("due", a.due.Equal(b.due), a.due, b.due)
	field("nonce", a.nonce == b.nonce, a.nonce, b.nonce)
	field("leaseExp", a.leaseExp.Equal(b.leaseExp), a.leaseExp, b.leaseExp)
	field("deadFrom", a.deadFrom == b.deadFrom, a.deadFrom, b.deadFrom)
	field("group", a.group == b.group, a.group, b.group)
	field("dedupKey", a.dedupKey == b.dedupKey, a.dedupKey, b.dedupKey)
	field("lastError", a.lastError == b.lastError, a.lastError, b.lastError)
	field("headers", maps.Equal(a.headers, b.headers), a.headers, b.headers)
	field("inline", a.inline == b.inline, a.inline, b.inline)
	if a.inline && b.inline {
		field("body", bytes.Equal(a.body, b.body), a.body, b.body)
	}
	return strings.Join(d, "; ")
}

// TestEncodingLeaseOperands: a record followed by lease operands reads as
// the record in flight with the last operand's lease; anything else after
// a record is refused.
func TestEncodingLeaseOperands(t *testing.T) {
	t.Parallel()
	base := testMsg()
	base.state, base.attempt, base.nonce, base.leaseExp = stReady, 1, 0, time.Time{}
	rec := base.encode()
	lease := func(attempt int, nonce uint64, exp time.Time) msg {
		m := base
		m.state, m.attempt, m.nonce, m.leaseExp = stInFlight, attempt, nonce, exp
		return m
	}
	first := lease(2, 0xfeedface, time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC))
	second := lease(3, 7, time.Date(2026, 1, 1, 0, 2, 0, 5, time.UTC))
	for name, c := range map[string]struct {
		b    []byte
		want msg
	}{
		"one":  {appendLeaseOp(bytes.Clone(rec), &first), first},
		"two":  {appendLeaseOp(appendLeaseOp(bytes.Clone(rec), &first), &second), second},
		"none": {rec, base},
	} {
		got, err := decodeMsg(c.b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := diffMsg(c.want, got); d != "" {
			t.Errorf("%s: %s", name, d)
		}
		head, err := decodeMsgHead(c.b)
		want := c.want
		want.body = nil
		if d := diffMsg(want, head); err != nil || d != "" {
			t.Errorf("%s: decodeMsgHead: %v %s", name, err, d)
		}
		// Written back, the record holds its lease itself: operands fold.
		if b := got.encode(); !bytes.Equal(b, c.want.encode()) {
			t.Errorf("%s: re-encoded %x; want %x", name, b, c.want.encode())
		}
	}
	withOp := appendLeaseOp(bytes.Clone(rec), &first)
	for i := len(rec) + 1; i < len(withOp); i++ {
		if _, err := decodeMsg(withOp[:i]); err == nil {
			t.Errorf("decodeMsg accepted an operand cut to %d of %d bytes", i-len(rec), len(withOp)-len(rec))
		}
	}
	for name, b := range map[string][]byte{
		"operand alone":   appendLeaseOp(nil, &first),
		"trailing byte":   append(bytes.Clone(withOp), 0),
		"unknown operand": append(bytes.Clone(rec), leaseOp+1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
	} {
		if m, err := decodeMsg(b); err == nil {
			t.Errorf("%s: decodeMsg accepted %x as %+v", name, b, m)
		}
	}
}

// TestKeySlabGrows: a txn's slabs start small and double up to their most,
// and no two keys handed out share memory.
func TestKeySlabGrows(t *testing.T) {
	var s keySlab
	var caps []int
	var keys [][]byte
	for i := range 2000 {
		k := s.key()
		if len(k) != 0 || cap(k) != keySlot {
			t.Fatalf("key %d: len %d cap %d, want 0 and %d", i, len(k), cap(k), keySlot)
		}
		if len(caps) == 0 || cap(s.buf) != caps[len(caps)-1] || len(s.buf) == keySlot {
			caps = append(caps, cap(s.buf))
		}
		keys = append(keys, append(k, byte(i), byte(i>>8)))
	}
	want := []int{8, 16, 32, 64, 128, 170, 170}
	for i, w := range want {
		if i >= len(caps) || caps[i] != w*keySlot {
			t.Fatalf("slab capacities %v, want slots %v then %d", caps, want, keySlabMost)
		}
	}
	for i, k := range keys {
		if k[0] != byte(i) || k[1] != byte(i>>8) {
			t.Fatalf("key %d overwritten: %v", i, k)
		}
	}
}
