// Package history records what clients of a courier queue did and saw, and
// checks the record against courier's delivery guarantees: nothing
// acknowledged is lost, nothing acked comes back, no two consumers hold one
// message at once, every redelivery has a cause, and nothing is delivered
// that was never sent.
//
// A test records every call it makes into a Log — its invocation, then its
// outcome: ok (a 2xx answer), failed (an answer that proves the call changed
// nothing) or unknown (no answer: the connection broke, the server was killed,
// the call timed out) — and the faults it injects (crashes, restarts). At the
// end, after a drain that receives and acks everything left, Check reads the
// log and returns a Report.
//
// The model behind the checks, and what a test must do to fit it:
//
//   - One Log holds one queue. Messages are identified by the server's id;
//     the test gives each message a body of its own, which is the client-side
//     id that ties a send to its deliveries. A send retried with the same
//     body after an unknown outcome may legitimately be stored twice.
//   - Lease windows are in the server's time, compared with the log's clock:
//     run the server on the same host. Two leases of a message overlap when
//     the second reached its consumer before the first ended; a lease handed
//     out later than that is legal even if its stamp (lease_expires_at minus
//     the visibility asked for) is earlier, because a server may read its
//     clock before it waits for its store.
//   - A lease ends at its lease_expires_at, or earlier when a nack or a
//     release of it is invoked that returns 2xx (or whose outcome is
//     unknown). A crash does not end a lease: leases are durable, so after a
//     restart a message may be redelivered only once its lease has expired.
//     An ack whose outcome is unknown does not end it either: had it been
//     applied, the message would be gone, not redelivered.
//   - Attempts only grow, but for a release, which hands a message back
//     without counting its attempt: the delivery after a released one may
//     repeat its attempt. The log must not span a dead-lettering and redrive.
//   - Leases are not extended: the log has no extend, and an extended lease
//     would look like one that overlaps its successor.
//
// The Log is safe for concurrent use. Events are numbered in the order they
// are recorded (Seq); Check does not rely on that order to tell which of two
// concurrent calls the server applied first, only on lease times and on the
// invocation-before-outcome order of each call.
package history

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Op is the kind of call, or of fault, an Event records.
type Op uint8

// The operations.
const (
	OpSend Op = iota + 1
	OpReceive
	OpAck
	OpNack
	OpRelease // a nack with "release": true: given back unprocessed, its attempt not counted
	OpCrash   // the server was killed (kill -9, power loss) or stopped
	OpRestart // the server was started again on the same data
)

var opNames = [...]string{OpSend: "send", OpReceive: "receive", OpAck: "ack", OpNack: "nack",
	OpRelease: "release", OpCrash: "crash", OpRestart: "restart"}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", o)
}

// Outcome says whether an Event is a call's invocation or its end, and how
// it ended.
type Outcome uint8

// The outcomes. Faults are recorded as Invoked.
const (
	Invoked Outcome = iota
	OK              // a 2xx answer: the change is durable
	Failed          // an answer proving the call changed nothing (4xx, connection refused)
	Unknown         // no answer: the call may or may not have been applied
)

var outcomeNames = [...]string{Invoked: "invoked", OK: "ok", Failed: "failed", Unknown: "unknown"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", o)
}

// Delivery is one message as a receive handed it out.
type Delivery struct {
	ID             string    // the server's id
	Body           string    // as received; the test's id of the message
	Lease          string    // the lease token
	Attempt        int       // 1 on first delivery
	LeaseExpiresAt time.Time // as the server reported it
}

// Event is one entry of a Log. Which fields are set depends on Op and Outcome.
type Event struct {
	Seq     int64     // 1, 2, 3, … in the order recorded
	Time    time.Time // the log's clock when recorded (wall time, no monotonic reading)
	Op      Op
	Outcome Outcome
	Call    int64 // for an outcome: the Seq of the invocation it ends

	Bodies       []string      // send invoked: one body per message, in order
	IDs          []string      // send ok: the ids the server answered, in order (nil: not known)
	Visibility   time.Duration // receive invoked: the visibility asked for (0: not known)
	Deliveries   []Delivery    // receive ok
	Leases       []string      // ack invoked (nack, release invoked: one)
	Refused      []string      // ack ok: leases of a batch ack that the server did not apply
	DeadLettered bool          // nack ok: the message went to the dead-letter queue
	Detail       string        // failed, unknown: the error; faults: what happened
}

// String is a one-line description of e, for failure reports.
func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s %s", e.Seq, e.Time.Format("15:04:05.000000"), e.Op)
	if e.Op != OpCrash && e.Op != OpRestart {
		fmt.Fprintf(&b, " %s", e.Outcome)
	}
	if e.Call != 0 {
		fmt.Fprintf(&b, " (of #%d)", e.Call)
	}
	if len(e.Bodies) > 0 {
		fmt.Fprintf(&b, " bodies=%v", e.Bodies)
	}
	if len(e.IDs) > 0 {
		fmt.Fprintf(&b, " ids=%v", e.IDs)
	}
	if e.Visibility != 0 {
		fmt.Fprintf(&b, " visibility=%v", e.Visibility)
	}
	for _, d := range e.Deliveries {
		fmt.Fprintf(&b, " [id=%s body=%s attempt=%d lease=%s expires=%s]", d.ID, d.Body, d.Attempt, d.Lease,
			d.LeaseExpiresAt.Format("15:04:05.000000"))
	}
	if len(e.Leases) > 0 {
		fmt.Fprintf(&b, " leases=%v", e.Leases)
	}
	if len(e.Refused) > 0 {
		fmt.Fprintf(&b, " refused=%v", e.Refused)
	}
	if e.DeadLettered {
		b.WriteString(" dead-lettered")
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	return b.String()
}

// Log records a history. It is safe for concurrent use.
type Log struct {
	now func() time.Time

	mu     sync.Mutex // guards events and done
	events []Event
	done   map[int64]bool // invocations that have an outcome
}

// Option configures a Log.
type Option func(*Log)

// WithClock makes the Log stamp events with now instead of the wall clock.
// Tests of the checker use it to write histories at chosen times.
func WithClock(now func() time.Time) Option {
	return func(l *Log) { l.now = now }
}

// NewLog returns an empty Log.
func NewLog(opts ...Option) *Log {
	l := &Log{now: time.Now, done: make(map[int64]bool)}
	for _, o := range opts {
		o(l)
	}
	return l
}

// record appends e, numbering and stamping it, and returns its Seq.
func (l *Log) record(e Event) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recordLocked(e)
}

func (l *Log) recordLocked(e Event) int64 {
	e.Seq = int64(len(l.events)) + 1
	e.Time = l.now().Round(0)
	l.events = append(l.events, e)
	return e.Seq
}

// Events returns a copy of the events recorded so far, in order.
func (l *Log) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// Len is the number of events recorded so far.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// Crash records that the server was killed or lost power; detail says how.
func (l *Log) Crash(detail string) { l.record(Event{Op: OpCrash, Detail: detail}) }

// Restart records that the server was started again on the same data.
func (l *Log) Restart(detail string) { l.record(Event{Op: OpRestart, Detail: detail}) }

// call is an invocation waiting for its outcome. Completing a call twice is
// a bug of the test and panics.
type call struct {
	l   *Log
	seq int64
	op  Op
}

func (l *Log) invoke(e Event) call {
	return call{l: l, seq: l.record(e), op: e.Op}
}

func (c call) finish(e Event) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.l.done[c.seq] {
		panic(fmt.Sprintf("history: %s call #%d completed twice", c.op, c.seq))
	}
	c.l.done[c.seq] = true
	e.Op, e.Call = c.op, c.seq
	c.l.recordLocked(e)
}

// Failed records that the call was answered with an error that proves it
// changed nothing: a 4xx answer, or a connection the server refused.
func (c call) Failed(err error) { c.finish(Event{Outcome: Failed, Detail: errText(err)}) }

// Unknown records that the call ended without an answer that settles it:
// the connection broke, the server died, the call timed out, a 5xx. It may
// have been applied. A call left without any outcome counts as Unknown.
func (c call) Unknown(err error) { c.finish(Event{Outcome: Unknown, Detail: errText(err)}) }

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// SendCall is a send in progress: one message, or a batch.
type SendCall struct{ call }

// Send records that a send of one message per body was invoked.
func (l *Log) Send(bodies ...string) SendCall {
	return SendCall{l.invoke(Event{Op: OpSend, Bodies: append([]string(nil), bodies...)})}
}

// OK records a 2xx answer with the ids the server gave the messages, in
// order; with no ids, the ids are taken as unknown.
func (c SendCall) OK(ids ...string) {
	c.finish(Event{Outcome: OK, IDs: append([]string(nil), ids...)})
}

// ReceiveCall is a receive in progress.
type ReceiveCall struct{ call }

// Receive records that a receive was invoked asking for visibility (0 when
// the request leaves it to the queue and the test does not know it).
func (l *Log) Receive(visibility time.Duration) ReceiveCall {
	return ReceiveCall{l.invoke(Event{Op: OpReceive, Visibility: visibility})}
}

// OK records a 2xx answer with the messages it handed out (maybe none).
func (c ReceiveCall) OK(ds ...Delivery) {
	c.finish(Event{Outcome: OK, Deliveries: append([]Delivery(nil), ds...)})
}

// AckCall is an ack in progress, of one lease or a batch.
type AckCall struct{ call }

// Ack records that an ack of leases was invoked.
func (l *Log) Ack(leases ...string) AckCall {
	return AckCall{l.invoke(Event{Op: OpAck, Leases: append([]string(nil), leases...)})}
}

// OK records a 2xx answer. A batch ack may refuse some of its leases (the
// server lists them as failed): those were not applied.
func (c AckCall) OK(refused ...string) {
	c.finish(Event{Outcome: OK, Refused: append([]string(nil), refused...)})
}

// NackCall is a nack in progress.
type NackCall struct{ call }

// Nack records that a nack of lease was invoked.
func (l *Log) Nack(lease string) NackCall {
	return NackCall{l.invoke(Event{Op: OpNack, Leases: []string{lease}})}
}

// OK records a 2xx answer, and whether the message was dead-lettered.
func (c NackCall) OK(deadLettered bool) {
	c.finish(Event{Outcome: OK, DeadLettered: deadLettered})
}

// ReleaseCall is a release in progress.
type ReleaseCall struct{ call }

// Release records that a release of lease (a nack with "release": true) was
// invoked.
func (l *Log) Release(lease string) ReleaseCall {
	return ReleaseCall{l.invoke(Event{Op: OpRelease, Leases: []string{lease}})}
}

// OK records a 2xx answer.
func (c ReleaseCall) OK() { c.finish(Event{Outcome: OK}) }
