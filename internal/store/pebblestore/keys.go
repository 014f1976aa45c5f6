package pebblestore

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Key layout. Every key starts with a one-byte tag; keys of a queue follow
// the tag with the queue's numeric id (4 bytes, big-endian), so deleting a
// queue is one range deletion per tag and a re-created queue never sees old
// tombstones. Each state of a message has its own keyspace, so a scan for
// ready messages never walks delayed, in-flight or deleted ones:
//
//	'a' name                      store metadata: format, next queue id, seq bound
//	'Q' name                      queue record (id, config, paused)
//	'S' qid                       queue counters
//	'M' qid seq                   message metadata (state, attempt, lease, headers…)
//	'B' qid seq                   message body, written once
//	'R' qid prio seq              ready index; prio = 100-priority, so high first
//	'D' qid due seq               delayed index, by due time
//	'L' qid expiry seq            in-flight index, by lease expiry
//	'W' qid len group seq         group members waiting behind the group's head
//	'H' qid len group             the group's head: the one message that may be out
//	'X' qid dedupkey              dedup entry: first seq and window end
//	'Y' qid expiry dedupkey       dedup entries by window end, for cleanup
//	'T' seq                       task record (binary; a lease's operand may follow), by its message's seq
//	'E' expiry seq                finished tasks by the end of their result TTL
//	'N' due seq                   finished tasks whose webhook is due, by time
//
// seq is a store-wide increasing uint64 (nanoseconds of the send time, bumped
// to stay unique); times are unix nanoseconds. All integers are big-endian so
// byte order is numeric order.
const (
	tagMeta    = 'a'
	tagQueue   = 'Q'
	tagStats   = 'S'
	tagMsg     = 'M'
	tagBody    = 'B'
	tagReady   = 'R'
	tagDelayed = 'D'
	tagLease   = 'L'
	tagWaiting = 'W'
	tagHead    = 'H'
	tagDedup   = 'X'
	tagDedupBy = 'Y'
	tagTask    = 'T'
	tagTaskTTL = 'E'
	tagHookDue = 'N'
)

// queueTags are the tags of per-queue keyspaces.
var queueTags = []byte{tagStats, tagMsg, tagBody, tagReady, tagDelayed, tagLease, tagWaiting, tagHead, tagDedup, tagDedupBy}

var errBadKey = errors.New("malformed key")

// Every key function below has an append form (appendX(b, …)) for the
// hot paths, which build keys in a txn's slab (keySlab), and a form that
// allocates its own.

// newKey is room for a key of any fixed layout below.
func newKey() []byte { return make([]byte, 0, 32) }

func qprefix(tag byte, qid uint32) []byte { return appendQPrefix(newKey(), tag, qid) }

func appendQPrefix(b []byte, tag byte, qid uint32) []byte {
	return binary.BigEndian.AppendUint32(append(b, tag), qid)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte { return toPrefixEnd(append([]byte(nil), p...)) }

// toPrefixEnd is prefixEnd, made in p's own bytes.
func toPrefixEnd(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			p[i]++
			return p[:i+1]
		}
	}
	return nil // every byte is 0xff: no upper bound
}

func queueKey(name string) []byte { return append([]byte{tagQueue}, name...) }
func statsKey(qid uint32) []byte  { return qprefix(tagStats, qid) }

func seqKey(tag byte, qid uint32, seq uint64) []byte { return appendSeqKey(newKey(), tag, qid, seq) }

func appendSeqKey(b []byte, tag byte, qid uint32, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(appendQPrefix(b, tag, qid), seq)
}

func readyKey(qid uint32, priority int, seq uint64) []byte {
	return appendReadyKey(newKey(), qid, priority, seq)
}

func appendReadyKey(b []byte, qid uint32, priority int, seq uint64) []byte {
	b = append(appendQPrefix(b, tagReady, qid), byte(100-priority))
	return binary.BigEndian.AppendUint64(b, seq)
}

func timeKey(tag byte, qid uint32, t time.Time, seq uint64) []byte {
	return appendTimeKey(newKey(), tag, qid, t, seq)
}

func appendTimeKey(b []byte, tag byte, qid uint32, t time.Time, seq uint64) []byte {
	b = binary.BigEndian.AppendUint64(appendQPrefix(b, tag, qid), unixNano(t))
	return binary.BigEndian.AppendUint64(b, seq)
}

// timePrefixEnd bounds a time-ordered keyspace: every key at or before t.
func timeUpTo(tag byte, qid uint32, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(qprefix(tag, qid), unixNano(t)+1)
}

func groupPrefix(tag byte, qid uint32, group string) []byte {
	return appendGroupPrefix(newKey(), tag, qid, group)
}

func appendGroupPrefix(b []byte, tag byte, qid uint32, group string) []byte {
	b = append(appendQPrefix(b, tag, qid), byte(len(group)))
	return append(b, group...)
}

func waitingKey(qid uint32, group string, seq uint64) []byte {
	return appendWaitingKey(newKey(), qid, group, seq)
}

func appendWaitingKey(b []byte, qid uint32, group string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(appendGroupPrefix(b, tagWaiting, qid, group), seq)
}

// keySlab hands out room for keys from slabs of its own: a batched verb
// writes several keys per message, nearly all of which the batch copies
// and forgets, and one allocation per key was a third of a round trip's.
// A key it hands out is never reused, so a Pebble iterator may keep one it
// was given (a seek key); one kept longer than the txn must be copied
// (see lower).
type keySlab struct{ buf []byte }

// keySlot is the room a slab gives each key: enough for every fixed layout
// (the longest, a time key, is 21 bytes); a longer key (a group's) grows
// out of the slab into memory of its own.
const keySlot = 24

// A txn's first slab has room for keySlabFirst keys, and each next one
// for twice as many as the last, up to keySlabMost (4,080 bytes): most
// txns write a few keys (a single send, a lease, an ack), and a first slab
// of 4 KiB each was 40% of the bytes a server allocated per message at
// 1,000 messages a second.
const (
	keySlabFirst = 8
	keySlabMost  = 170
)

// key returns an empty slice with room for one key.
func (s *keySlab) key() []byte {
	if cap(s.buf)-len(s.buf) < keySlot {
		slots := min(max(2*cap(s.buf)/keySlot, keySlabFirst), keySlabMost)
		s.buf = make([]byte, 0, slots*keySlot)
	}
	n := len(s.buf)
	s.buf = s.buf[:n+keySlot]
	return s.buf[n : n : n+keySlot]
}

func dedupKey(qid uint32, key string) []byte {
	return append(qprefix(tagDedup, qid), key...)
}

func dedupByKey(qid uint32, exp time.Time, key string) []byte {
	k := binary.BigEndian.AppendUint64(qprefix(tagDedupBy, qid), unixNano(exp))
	return append(k, key...)
}

// taskKey is the key of a task record; tasks are global, addressed by id.
func taskKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte{tagTask}, seq) }

// globalTimeKey is a key of a global time index ('E', 'N').
func globalTimeKey(tag byte, t time.Time, seq uint64) []byte {
	k := binary.BigEndian.AppendUint64([]byte{tag}, unixNano(t))
	return binary.BigEndian.AppendUint64(k, seq)
}

// globalTimeUpTo bounds a global time index: every key at or before t.
func globalTimeUpTo(tag byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64([]byte{tag}, unixNano(t)+1)
}

// keySeq returns the seq that ends a key of a seq-suffixed keyspace.
func keySeq(k []byte) (uint64, error) {
	if len(k) < 5+8 {
		return 0, errBadKey
	}
	return binary.BigEndian.Uint64(k[len(k)-8:]), nil
}

// keyTime returns the time that follows the queue id in a time-ordered key.
func keyTime(k []byte) (time.Time, error) {
	if len(k) < 5+8 {
		return time.Time{}, errBadKey
	}
	return fromNano(binary.BigEndian.Uint64(k[5:13])), nil
}

func unixNano(t time.Time) uint64 {
	n := t.UnixNano()
	if n < 0 {
		return 0
	}
	return uint64(n)
}

func fromNano(n uint64) time.Time { return time.Unix(0, int64(n)).UTC() }

// Message ids are the seq in Crockford base32, 13 characters, so they are
// URL-safe and sort as the seq does.
const idAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

var idIndex = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(idAlphabet); i++ {
		t[idAlphabet[i]] = int8(i)
	}
	return t
}()

func formatID(seq uint64) string {
	var b [13]byte
	for i := 12; i >= 0; i-- {
		b[i] = idAlphabet[seq&31]
		seq >>= 5
	}
	return string(b[:])
}

func parseID(s string) (uint64, error) {
	if len(s) != 13 || idIndex[s[0]] > 15 { // 13×5 = 65 bits: the first digit holds the top 4 bits
		return 0, errBadKey
	}
	var seq uint64
	for i := 0; i < len(s); i++ {
		v := idIndex[s[i]]
		if v < 0 {
			return 0, errBadKey
		}
		seq = seq<<5 | uint64(v)
	}
	return seq, nil
}

// A lease token is the message's seq and the delivery's random nonce. The
// nonce changes on every delivery, so an old token never matches again.
func formatLease(seq, nonce uint64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], seq)
	binary.BigEndian.PutUint64(b[8:], nonce)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func parseLease(s string) (seq, nonce uint64, err error) {
	if len(s) != 22 {
		return 0, 0, errBadKey
	}
	var b [16]byte
	n, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(s))
	if err != nil || n != 16 {
		return 0, 0, errBadKey
	}
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), nil
}
