package pebblestore

import (
	"bytes"
	"cmp"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// Fuzz targets for the encodings in keys.go and record.go. Lease tokens and
// message ids come from clients; records and counters come from disk, where
// corruption must surface as an error, never a panic or a huge allocation.
// Seeds: the f.Add calls below and testdata/fuzz/<FuzzName>/.

func FuzzParseLease(f *testing.F) {
	f.Add(formatLease(0, 0), uint64(0), uint64(0))
	f.Add(formatLease(1<<62, 12345), uint64(math.MaxUint64), uint64(1))
	f.Add("AAAAAAAAAAAAAAAAAAAAAB", uint64(1), uint64(math.MaxUint64)) // padding bits set
	f.Add("AAAAAAAAAAAAAAAAAAAA==", uint64(0), uint64(0))
	f.Add("AAAAAAAAAA\nAAAAAAAAAAA", uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, s string, seq, nonce uint64) {
		if gs, gn, err := parseLease(s); err == nil {
			// One spelling per token: anything accepted is what formatLease writes.
			if canon := formatLease(gs, gn); canon != s {
				t.Fatalf("parseLease(%q) = %d, %d, but formatLease gives %q", s, gs, gn, canon)
			}
		}
		tok := formatLease(seq, nonce)
		if gs, gn, err := parseLease(tok); err != nil || gs != seq || gn != nonce {
			t.Fatalf("parseLease(formatLease(%d, %d) = %q) = %d, %d, %v", seq, nonce, tok, gs, gn, err)
		}
	})
}

func FuzzParseID(f *testing.F) {
	f.Add("0000000000000", uint64(0), uint64(1))
	f.Add(formatID(1<<61), uint64(1<<61-1), uint64(1<<61))
	f.Add("FZZZZZZZZZZZZ", uint64(math.MaxUint64), uint64(1<<63))
	f.Add("G000000000000", uint64(1700000000000000000), uint64(1700000000000000001))
	f.Add("000000000000o", uint64(32), uint64(31))
	f.Fuzz(func(t *testing.T, s string, a, b uint64) {
		if seq, err := parseID(s); err == nil {
			if canon := formatID(seq); canon != s {
				t.Fatalf("parseID(%q) = %d, but formatID gives %q", s, seq, canon)
			}
		}
		ia, ib := formatID(a), formatID(b)
		for _, c := range []struct {
			seq uint64
			id  string
		}{{a, ia}, {b, ib}} {
			if got, err := parseID(c.id); err != nil || got != c.seq {
				t.Fatalf("parseID(formatID(%d) = %q) = %d, %v", c.seq, c.id, got, err)
			}
		}
		if got, want := strings.Compare(ia, ib), cmp.Compare(a, b); got != want {
			t.Fatalf("ids %q, %q compare %d; their seqs %d, %d compare %d", ia, ib, got, a, b, want)
		}
	})
}

func FuzzDecodeMsg(f *testing.F) {
	tm := testMsg()
	f.Add(tm.encode())
	f.Add((&msg{state: stReady}).encode())
	f.Add((&msg{state: stWaiting, group: "g", headers: map[string]string{"k": "v"}}).encode())
	f.Add([]byte{recordVersion, byte(stReady), 1, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Add([]byte{})
	f.Add(appendLeaseOp(tm.encode(), &tm)) // a leased record
	f.Fuzz(func(t *testing.T, b []byte) {
		var m msg
		var err error
		if n := allocated(func() { m, err = decodeMsg(b) }); n > maxDecodeAlloc(len(b)) {
			t.Fatalf("decodeMsg of %d bytes allocated %d bytes", len(b), n)
		}
		// decodeMsgHead reads the same record, but for its body.
		h, herr := decodeMsgHead(b)
		if (herr == nil) != (err == nil) {
			t.Fatalf("decodeMsg(%x): %v, but decodeMsgHead: %v", b, err, herr)
		}
		if err != nil {
			return
		}
		if h.body != nil {
			t.Fatalf("decodeMsgHead(%x) kept the body %x", b, h.body)
		}
		if h.body = m.body; diffMsg(m, h) != "" {
			t.Fatalf("decodeMsgHead(%x) = %+v; decodeMsg = %+v: %s", b, h, m, diffMsg(m, h))
		}
		b2 := m.encode()
		m2, err := decodeMsg(b2)
		if err != nil {
			t.Fatalf("decodeMsg accepted %x as %+v but rejects its encoding %x: %v", b, m, b2, err)
		}
		if d := diffMsg(m, m2); d != "" {
			t.Fatalf("decodeMsg(%x) = %+v; encoding that and decoding again differs: %s", b, m, d)
		}
		if b3 := m2.encode(); !bytes.Equal(b2, b3) {
			t.Fatalf("re-encoding is unstable: %x then %x", b2, b3)
		}
	})
}

// FuzzMsgRoundTrip builds a record from fuzzed fields: decode(encode(m))
// must equal m. Headers come as NUL-separated key, value, key, value….
func FuzzMsgRoundTrip(f *testing.F) {
	f.Add(uint8(3), uint8(2), -7, 3, int64(1767225600000000001), int64(0), int64(math.MaxInt64), uint64(math.MaxUint64),
		uint32(9), "g", "d", "boom", []byte("a\x001\x00b\x00\x00\x00"), true, []byte(`{"x":1}`))
	f.Add(uint8(0), uint8(0), 0, 0, int64(0), int64(0), int64(0), uint64(0),
		uint32(0), "", "", "", []byte(nil), false, []byte(nil))
	f.Add(uint8(1), uint8(255), math.MinInt, math.MaxInt, int64(1), int64(-1), int64(math.MinInt64), uint64(1<<63),
		uint32(math.MaxUint32), strings.Repeat("g", 128), "\xff\x00", "\n", []byte("k\x00v\x00k\x00w"), true, []byte{})
	f.Fuzz(func(t *testing.T, state, kind uint8, priority, attempt int, sentAt, due, leaseExp int64, nonce uint64,
		deadFrom uint32, group, dedupKey, lastError string, headers []byte, inline bool, body []byte) {
		m := msg{
			state: stReady + msgState(state%4), kind: store.BodyKind(kind), priority: priority, attempt: attempt,
			sentAt: fuzzTime(sentAt), due: fuzzTime(due), nonce: nonce, leaseExp: fuzzTime(leaseExp),
			deadFrom: deadFrom, group: group, dedupKey: dedupKey, lastError: lastError, inline: inline,
		}
		if parts := bytes.Split(headers, []byte{0}); len(parts) >= 2 {
			m.headers = map[string]string{}
			for i := 0; i+1 < len(parts); i += 2 {
				m.headers[string(parts[i])] = string(parts[i+1])
			}
		}
		if inline {
			m.body = body
		}
		b := m.encode()
		got, err := decodeMsg(b)
		if err != nil {
			t.Fatalf("decodeMsg(encode(%+v) = %x): %v", m, b, err)
		}
		if d := diffMsg(m, got); d != "" {
			t.Fatalf("decodeMsg(encode(m)) differs: %s", d)
		}
		// Leased: the record with an operand of other fuzzed values.
		leased := m
		leased.state, leased.attempt, leased.nonce, leased.leaseExp = stInFlight, priority, ^nonce, fuzzTime(due)
		b = appendLeaseOp(b, &leased)
		if got, err = decodeMsg(b); err != nil {
			t.Fatalf("decodeMsg(encode(%+v) with a lease operand = %x): %v", m, b, err)
		}
		if d := diffMsg(leased, got); d != "" {
			t.Fatalf("decodeMsg(encode(m) with a lease operand) differs: %s", d)
		}
	})
}

// fuzzTime maps a fuzzed int64 to an instant from 1970 on. Zero is the zero
// Time: the encoding stores "unset" as 0 ns, so the epoch instant itself
// reads back unset, which no real message time is.
func fuzzTime(n int64) time.Time {
	n &= math.MaxInt64
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func FuzzDecodeCounters(f *testing.F) {
	f.Add((&counters{1, 2, 3, 4, 5, 6, 7}).encode(), int64(0), int64(1), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), int64(42))
	f.Add([]byte{0, 0, 0, 0, 0}, int64(0), int64(0), int64(0), int64(0), int64(0), int64(0))
	f.Add([]byte{0x80, 0, 0, 0, 0, 0, 0}, int64(0), int64(0), int64(0), int64(0), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, ready, delayed, inFlight, dead, sent, acked int64) {
		if c, err := decodeCounters(b); err == nil {
			b2 := c.encode()
			if c2, err := decodeCounters(b2); err != nil || c2 != c {
				t.Fatalf("decodeCounters(%x) = %+v; encoding that as %x decodes to %+v, %v", b, c, b2, c2, err)
			}
		}
		c := counters{ready, delayed, inFlight, dead, sent, acked, sent ^ dead}
		if got, err := decodeCounters(c.encode()); err != nil || got != c {
			t.Fatalf("decodeCounters(encode(%+v)) = %+v, %v", c, got, err)
		}
	})
}

// FuzzKeyOrder checks the ordered keyspaces on two fuzzed (queue, priority,
// time, seq) points: ready keys by priority descending then seq, time keys by
// time then seq, queues apart, timeUpTo inclusive, and the fields read back.
func FuzzKeyOrder(f *testing.F) {
	f.Add(uint32(1), int8(0), int64(0), uint64(0), uint32(1), int8(0), int64(1), uint64(0))
	f.Add(uint32(1), int8(-100), int64(1767225600000000000), uint64(math.MaxUint64), uint32(1), int8(100), int64(1767225600000000000), uint64(0))
	f.Add(uint32(1), int8(5), int64(math.MaxInt64), uint64(1<<63), uint32(2), int8(-5), int64(1), uint64(1<<63-1))
	f.Fuzz(func(t *testing.T, qa uint32, pa int8, ta int64, sa uint64, qb uint32, pb int8, tb int64, sb uint64) {
		pra, prb := int(pa)%101, int(pb)%101 // -100..100
		tma, tmb := time.Unix(0, ta&math.MaxInt64).UTC(), time.Unix(0, tb&math.MaxInt64).UTC()
		byQueue := cmp.Compare(qa, qb)
		check := func(what string, ka, kb []byte, want int) {
			t.Helper()
			if got := sign(bytes.Compare(ka, kb)); got != want {
				t.Fatalf("%s: %x vs %x compare %d, want %d", what, ka, kb, got, want)
			}
		}
		check("readyKey", readyKey(qa, pra, sa), readyKey(qb, prb, sb),
			cmp.Or(byQueue, cmp.Compare(prb, pra), cmp.Compare(sa, sb)))
		check("timeKey", timeKey(tagLease, qa, tma, sa), timeKey(tagLease, qb, tmb, sb),
			cmp.Or(byQueue, tma.Compare(tmb), cmp.Compare(sa, sb)))
		check("seqKey", seqKey(tagMsg, qa, sa), seqKey(tagMsg, qb, sb), cmp.Or(byQueue, cmp.Compare(sa, sb)))
		// The key at (qa, ta) is below timeUpTo(qb, tb) iff it sorts no later.
		inBound := -1
		if cmp.Or(byQueue, tma.Compare(tmb)) > 0 {
			inBound = 1
		}
		check("timeUpTo", timeKey(tagDelayed, qa, tma, sa), timeUpTo(tagDelayed, qb, tmb), inBound)
		k := timeKey(tagDelayed, qa, tma, sa)
		if got, err := keyTime(k); err != nil || !got.Equal(tma) {
			t.Fatalf("keyTime(%x) = %v, %v; want %v", k, got, err, tma)
		}
		if got, err := keySeq(readyKey(qa, pra, sa)); err != nil || got != sa {
			t.Fatalf("keySeq(readyKey(%d)) = %d, %v", sa, got, err)
		}
	})
}

func FuzzPrefixEnd(f *testing.F) {
	f.Add([]byte("a"), []byte("a\xff"))
	f.Add([]byte("a\xff"), []byte("b"))
	f.Add([]byte("\xff\xff"), []byte("\xff\xff\xff"))
	f.Add([]byte{}, []byte{})
	f.Add(qprefix(tagReady, 0x01ff), readyKey(0x0200, 0, 0))
	f.Fuzz(func(t *testing.T, p, k []byte) {
		p0 := bytes.Clone(p)
		end := prefixEnd(p)
		if !bytes.Equal(p, p0) {
			t.Fatalf("prefixEnd changed its argument from %x to %x", p0, p)
		}
		checkPrefixEnd(t, p, end, k)
		checkPrefixEnd(t, p, end, append(bytes.Clone(p), k...))
		if n := len(end); n > 0 {
			// The largest keys below end all have the prefix.
			below := append(bytes.Clone(end[:n-1]), end[n-1]-1)
			checkPrefixEnd(t, p, end, below)
			checkPrefixEnd(t, p, end, append(below, bytes.Repeat([]byte{0xff}, len(k))...))
		}
	})
}

// FuzzGroupPrefix checks that a group's keys are exactly those under its
// prefix, for group names up to 255 bytes (the broker allows 128).
func FuzzGroupPrefix(f *testing.F) {
	f.Add("a", "ab", uint64('b')<<56)
	f.Add("ab", "a", uint64('b')<<56)
	f.Add("", "\x00", uint64(0))
	f.Fuzz(func(t *testing.T, ga, gb string, seq uint64) {
		if len(ga) > 255 || len(gb) > 255 {
			return
		}
		for _, tag := range []byte{tagWaiting, tagHead} {
			pa := groupPrefix(tag, 7, ga)
			if has := bytes.HasPrefix(groupPrefix(tag, 7, gb), pa); has != (ga == gb) {
				t.Fatalf("groupPrefix(%q) prefix of groupPrefix(%q): %v", ga, gb, has)
			}
		}
		if has := bytes.HasPrefix(waitingKey(7, gb, seq), groupPrefix(tagWaiting, 7, ga)); has != (ga == gb) {
			t.Fatalf("groupPrefix(%q) prefix of waitingKey(%q, %d): %v", ga, gb, seq, has)
		}
	})
}
