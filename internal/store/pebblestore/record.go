package pebblestore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// msgState is where a message is: which index key it has besides its record.
type msgState uint8

const (
	stReady    msgState = 1 // 'R' key
	stDelayed  msgState = 2 // 'D' key at due
	stInFlight msgState = 3 // 'L' key at leaseExp
	stWaiting  msgState = 4 // 'W' key: behind its group's head
)

// msg is the record under an 'M' key: everything but the body.
type msg struct {
	state     msgState
	kind      store.BodyKind
	priority  int
	attempt   int
	sentAt    time.Time
	due       time.Time // not-before (delayed, waiting) or retry time
	nonce     uint64    // current lease's nonce (in flight)
	leaseExp  time.Time
	deadFrom  uint32 // id of the queue it was dead-lettered from; 0 if none
	group     string
	dedupKey  string
	lastError string
	headers   map[string]string
	// body is the message body when it is stored inline in the record
	// (inline); larger bodies live under their own 'B' key, written once.
	inline bool
	body   []byte
	// task marks the message of a task: its changes update the task record.
	task bool
}

// inlineMax is the largest body kept inside the record. A record is
// rewritten on most changes of state (all but a lease, see leaseOp), so
// inlining trades a rewrite of the body for one read less per delivery: a
// win for small bodies only.
const inlineMax = 4 << 10

const recordVersion = 1

var errBadRecord = errors.New("malformed message record")

func (m *msg) encode() []byte { return m.appendTo(nil) }

// appendTo appends the record's encoding to b.
func (m *msg) appendTo(b []byte) []byte {
	b = append(b, recordVersion, byte(m.state), byte(m.kind))
	b = binary.AppendVarint(b, int64(m.priority))
	b = binary.AppendUvarint(b, uint64(m.attempt))
	b = binary.AppendUvarint(b, unixNano(m.sentAt))
	b = binary.AppendUvarint(b, unixNano(m.due))
	b = binary.BigEndian.AppendUint64(b, m.nonce)
	b = binary.AppendUvarint(b, unixNano(m.leaseExp))
	b = binary.AppendUvarint(b, uint64(m.deadFrom))
	b = appendString(b, m.group)
	b = appendString(b, m.dedupKey)
	b = appendString(b, m.lastError)
	b = binary.AppendUvarint(b, uint64(len(m.headers)))
	if len(m.headers) > 0 {
		keys := make([]string, 0, len(m.headers))
		for k := range m.headers {
			keys = append(keys, k)
		}
		slices.Sort(keys) // deterministic bytes for the same record
		for _, k := range keys {
			b = appendString(b, k)
			b = appendString(b, m.headers[k])
		}
	}
	if m.inline {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(m.body)))
		b = append(b, m.body...)
	} else {
		b = append(b, 0)
	}
	var flags byte
	if m.task {
		flags |= flagTask
	}
	return append(b, flags)
}

// Flags, the last byte of the record proper.
const flagTask = 1

// A lease does not rewrite the record: it merges a lease operand into the
// record's key (Pebble's merge, which concatenates), and a reader applies
// the operands that follow the record, oldest first. The record with its
// inline body is most of what a message writes; rewriting it at every
// lease was the largest single cost of a round trip (docs/benchmarks-journal.md).
// Every other change of a message writes the whole record again, which
// drops the operands; and a message is leased only when ready, which every
// way in writes the whole record: a record carries at most one operand.
//
// An operand is leaseOp, the attempt (uvarint), the nonce (8 bytes) and the
// lease's expiry (uvarint ns): the message is in flight with these.
const leaseOp = 0xA1

// appendLeaseOp appends the lease operand of an in-flight m to b.
func appendLeaseOp(b []byte, m *msg) []byte {
	b = append(b, leaseOp)
	b = binary.AppendUvarint(b, uint64(m.attempt))
	b = binary.BigEndian.AppendUint64(b, m.nonce)
	return binary.AppendUvarint(b, unixNano(m.leaseExp))
}

// applyLeaseOp reads a lease operand and applies it to m.
func (d *decoder) applyLeaseOp(m *msg) {
	if d.byte() != leaseOp {
		d.fail()
		return
	}
	m.state = stInFlight
	m.attempt = int(d.uvarint())
	m.nonce = d.uint64()
	m.leaseExp = d.time()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeMsg parses a record; it never panics on malformed input.
func decodeMsg(b []byte) (msg, error) { return decodeRecord(b, true) }

// decodeMsgHead is decodeMsg without copying an inline body (m.body is
// nil): for a verb that only deletes the message, and so never writes the
// record back.
func decodeMsgHead(b []byte) (msg, error) { return decodeRecord(b, false) }

func decodeRecord(b []byte, body bool) (msg, error) {
	d := decoder{b: b}
	var m msg
	if d.byte() != recordVersion {
		return m, errBadRecord
	}
	m.state = msgState(d.byte())
	m.kind = store.BodyKind(d.byte())
	m.priority = int(d.varint())
	m.attempt = int(d.uvarint())
	m.sentAt = d.time()
	m.due = d.time()
	m.nonce = d.uint64()
	m.leaseExp = d.time()
	m.deadFrom = uint32(d.uvarint())
	m.group = d.string()
	m.dedupKey = d.string()
	m.lastError = d.string()
	n := d.uvarint()
	if n > uint64(len(b)) {
		return m, errBadRecord
	}
	if n > 0 {
		m.headers = make(map[string]string, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.string()
		m.headers[k] = d.string()
	}
	switch d.byte() {
	case 0:
	case 1:
		m.inline, m.body = true, d.bytes(body)
	default:
		d.fail()
	}
	flags := d.byte()
	m.task = flags&flagTask != 0
	if flags&^flagTask != 0 {
		d.fail() // a flag this build does not know
	}
	for len(d.b) > 0 && d.err == nil {
		d.applyLeaseOp(&m)
	}
	if d.err != nil || m.state < stReady || m.state > stWaiting {
		return msg{}, errBadRecord
	}
	return m, nil
}

// decoder reads a record; after the first error every read returns zero.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errBadRecord, nil }

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) time() time.Time {
	n := d.uvarint()
	if n > math.MaxInt64 {
		d.fail() // before 1970 as an int64: it would encode back as 0, unset
		return time.Time{}
	}
	if n == 0 {
		return time.Time{}
	}
	return fromNano(n)
}

// span reads a length-prefixed byte string, in place.
func (d *decoder) span() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// bytes reads a length-prefixed byte string into a copy of its own, or
// skips it (nil) unless keep.
func (d *decoder) bytes(keep bool) []byte {
	v := d.span()
	if !keep || v == nil {
		return nil
	}
	return bytes.Clone(v)
}

func (d *decoder) string() string { return string(d.span()) }

// queueRecord is the value under a 'Q' key. It changes rarely, so it is JSON.
type queueRecord struct {
	ID        uint32            `json:"id"`
	Config    store.QueueConfig `json:"config"`
	Paused    bool              `json:"paused"`
	CreatedAt time.Time         `json:"created_at"`
}

func (r *queueRecord) encode() []byte {
	b, _ := json.Marshal(r) // plain struct: cannot fail
	return b
}

// counters is the value under an 'S' key, rewritten with every batch that
// changes it; batches are applied in order, so the last one wins correctly.
type counters struct {
	ready, delayed, inFlight, dead, sent, acked int64
	tasks                                       int64 // messages of tasks in the queue
}

func (c *counters) encode() []byte {
	b := make([]byte, 0, 7*binary.MaxVarintLen64)
	for _, v := range []int64{c.ready, c.delayed, c.inFlight, c.dead, c.sent, c.acked, c.tasks} {
		b = binary.AppendVarint(b, v)
	}
	return b
}

func decodeCounters(b []byte) (counters, error) {
	d := decoder{b: b}
	c := counters{d.varint(), d.varint(), d.varint(), d.varint(), d.varint(), d.varint(), d.varint()}
	if d.err != nil || len(d.b) != 0 {
		return counters{}, errBadRecord
	}
	return c, nil
}
