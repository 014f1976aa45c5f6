package history

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Cause is why a message was delivered more than once, legitimately.
type Cause string

// The causes of explained duplicates.
const (
	// CauseLeaseExpiry: the previous delivery's lease ran out unacked (its
	// consumer dropped it, or acked too late and was refused).
	CauseLeaseExpiry Cause = "lease_expiry"
	// CauseNack: the previous delivery was nacked (2xx or unknown outcome).
	CauseNack Cause = "nack"
	// CauseRelease: the previous delivery was released (2xx or unknown
	// outcome): handed back unprocessed, so the next may repeat its attempt.
	CauseRelease Cause = "release"
	// CauseCrash: the server crashed while the previous delivery was leased.
	CauseCrash Cause = "crash"
	// CauseAckUnknown: the previous delivery's ack had an unknown outcome.
	CauseAckUnknown Cause = "ack_unknown"
	// CauseSendRetry: one body under two server ids, because a send whose
	// outcome was unknown was retried and both were stored.
	CauseSendRetry Cause = "send_retry"
)

// Causes lists every Cause, in the order reports print them.
var Causes = []Cause{CauseLeaseExpiry, CauseNack, CauseRelease, CauseCrash, CauseAckUnknown, CauseSendRetry}

// The kinds of violation.
const (
	KindLost                 = "lost"
	KindAckedThenRedelivered = "acked-then-redelivered"
	KindOverlappingLeases    = "overlapping-leases"
	KindUnexplainedDuplicate = "unexplained-duplicate"
	KindPhantom              = "phantom"
)

// Violation is one breach of the guarantees, with what a person needs to
// look into it.
type Violation struct {
	Kind   string // one of the Kind… constants
	ID     string // the server's id of the message, if known
	Body   string // the message's body, if known
	Detail string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: id=%s body=%s: %s", v.Kind, v.ID, v.Body, v.Detail)
}

// Report is the verdict of Check: what the history holds, and what is wrong
// with it.
type Report struct {
	// Traffic. Message counts count each message of a batch.
	SendsOK       int // messages whose send answered 2xx
	SendsFailed   int // messages whose send failed definitely
	SendsUnknown  int // messages whose send had no settling answer (or none yet)
	UnknownStored int // bodies never sent with a 2xx that were nevertheless received
	Received      int // distinct messages (server ids) received
	Deliveries    int // messages handed out, redeliveries included
	Acked         int // distinct messages acked with a 2xx
	Crashes       int
	Restarts      int

	// Violations: a history passes when all five are zero.
	Lost                  int // a 2xx send whose message was never received, or never finished (acked, dead-lettered)
	AckedThenRedelivered  int // deliveries after an ack of the same message returned 2xx
	OverlappingLeases     int // deliveries granted while an earlier lease of the message still ran
	UnexplainedDuplicates int // redeliveries, or extra copies of a body, with no cause
	Phantoms              int // messages received that no send can account for

	// Explained counts the legitimate duplicates by cause.
	Explained map[Cause]int
	// SameAttempt counts the redeliveries, among those explained by a
	// release (answered 2xx, or unknown), that repeated the released
	// delivery's attempt: the release left the count alone.
	SameAttempt int
	// Violations lists every violation counted above.
	Violations []Violation
}

// OK reports whether the history breaks no guarantee.
func (r Report) OK() bool {
	return r.Lost == 0 && r.AckedThenRedelivered == 0 && r.OverlappingLeases == 0 &&
		r.UnexplainedDuplicates == 0 && r.Phantoms == 0
}

// Duplicates is the number of explained duplicates, all causes together.
func (r Report) Duplicates() int {
	n := 0
	for _, c := range Causes {
		n += r.Explained[c]
	}
	return n
}

// String prints every count on one line.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent ok=%d failed=%d unknown=%d (unknown but stored=%d); received=%d deliveries=%d acked=%d; crashes=%d restarts=%d; ",
		r.SendsOK, r.SendsFailed, r.SendsUnknown, r.UnknownStored, r.Received, r.Deliveries, r.Acked, r.Crashes, r.Restarts)
	fmt.Fprintf(&b, "lost=%d acked-then-redelivered=%d overlapping-leases=%d unexplained-duplicates=%d phantoms=%d; ",
		r.Lost, r.AckedThenRedelivered, r.OverlappingLeases, r.UnexplainedDuplicates, r.Phantoms)
	fmt.Fprintf(&b, "duplicates=%d same-attempt=%d (", r.Duplicates(), r.SameAttempt)
	for i, c := range Causes {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", c, r.Explained[c])
	}
	b.WriteString(")")
	return b.String()
}

// delivery is a Delivery with what the rest of the history says about it.
type delivery struct {
	Delivery
	seq int64 // the receive's ok event
	// The lease was granted between granted and answered. granted is the
	// server's stamp, lease_expires_at minus the visibility (the server may
	// read its clock before it waits for its store, so the real grant can be
	// later), or the receive's invocation when the visibility is not known;
	// answered is when the answer reached the client.
	granted, answered time.Time

	acked        bool      // an ack of its lease returned 2xx and was not refused
	ackUnknownAt time.Time // an ack of its lease was invoked then and had an unknown outcome; zero: none
	nackAt       time.Time // a nack of it was invoked then and returned 2xx or unknown; zero: none
	releaseAt    time.Time // a release of it, likewise
	deadLettered bool      // a nack of it answered dead-lettered
}

// end is when its lease ended at the latest, in server time.
func (d *delivery) end() time.Time {
	if given := earliest(d.nackAt, d.releaseAt); !given.IsZero() && given.Before(d.LeaseExpiresAt) {
		return given
	}
	return d.LeaseExpiresAt
}

// done reports whether the message's life ended with this delivery (maybe).
func (d *delivery) done() bool { return d.acked || !d.ackUnknownAt.IsZero() || d.deadLettered }

// settledBy reports whether a call invoked at t may have settled the lease:
// it was invoked before the lease expired.
func (d *delivery) settledBy(t time.Time) bool { return !t.IsZero() && t.Before(d.LeaseExpiresAt) }

// earliest returns the earlier of a and b, ignoring zero times.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// sendMsg is one message of one send call.
type sendMsg struct {
	body    string
	id      string // from the 2xx answer; "" when not known
	outcome Outcome
}

// checker holds the history, indexed for Check.
type checker struct {
	r          *Report
	sends      []sendMsg
	byID       map[string][]*delivery
	byLease    map[string]*delivery
	sentBodies map[string]bool // bodies with a send that may have stored them (not failed)
	phantoms   map[string]bool // ids found to be phantoms
	crashes    []time.Time
}

// Check reads a log and reports what it breaks. Call it after the test's
// final drain, when nothing is in flight: calls without an outcome count as
// unknown.
func Check(l *Log) Report { return CheckEvents(l.Events()) }

// CheckEvents is Check of a list of events, as Log.Events returns them.
func CheckEvents(events []Event) Report {
	r := Report{Explained: make(map[Cause]int)}
	c := &checker{r: &r, byID: make(map[string][]*delivery), byLease: make(map[string]*delivery),
		sentBodies: make(map[string]bool), phantoms: make(map[string]bool)}
	c.index(events)
	for _, id := range c.ids() {
		c.checkMessage(id, c.byID[id])
	}
	c.checkBodies()
	c.checkSends()
	return r
}

// index reads the events: sends with their outcomes, deliveries, then the
// acks and nacks that settle the deliveries' leases.
func (c *checker) index(events []Event) {
	outc := make(map[int64]Event) // outcomes by the Seq of their invocation
	for _, e := range events {
		switch {
		case e.Op == OpCrash:
			c.r.Crashes++
			c.crashes = append(c.crashes, e.Time)
		case e.Op == OpRestart:
			c.r.Restarts++
		case e.Outcome != Invoked:
			if _, seen := outc[e.Call]; !seen {
				outc[e.Call] = e
			}
		}
	}
	var settle []Event // ack, nack and release invocations, read once every delivery is known
	for _, e := range events {
		if e.Op == OpCrash || e.Op == OpRestart || e.Outcome != Invoked {
			continue
		}
		out, ok := outc[e.Seq]
		if !ok {
			out = Event{Outcome: Unknown, Detail: "no outcome recorded"}
		}
		switch e.Op {
		case OpSend:
			c.addSend(e, out)
		case OpReceive:
			if out.Outcome == OK {
				c.addDeliveries(e, out)
			}
		case OpAck, OpNack, OpRelease:
			settle = append(settle, e)
		}
	}
	for _, e := range settle {
		out, ok := outc[e.Seq]
		if !ok {
			out = Event{Outcome: Unknown}
		}
		if e.Op == OpAck {
			c.settleAck(e, out)
		} else {
			c.settleGiveBack(e, out)
		}
	}
}

func (c *checker) addSend(e, out Event) {
	for i, body := range e.Bodies {
		m := sendMsg{body: body, outcome: out.Outcome}
		switch out.Outcome {
		case OK:
			c.r.SendsOK++
			if i < len(out.IDs) {
				m.id = out.IDs[i]
			}
		case Failed:
			c.r.SendsFailed++
		default:
			c.r.SendsUnknown++
		}
		if out.Outcome != Failed {
			c.sentBodies[body] = true
		}
		c.sends = append(c.sends, m)
	}
}

func (c *checker) addDeliveries(e, out Event) {
	for _, d := range out.Deliveries {
		c.r.Deliveries++
		dl := &delivery{Delivery: d, seq: out.Seq, granted: e.Time, answered: out.Time}
		if e.Visibility > 0 && !d.LeaseExpiresAt.IsZero() {
			dl.granted = d.LeaseExpiresAt.Add(-e.Visibility)
		}
		c.byID[d.ID] = append(c.byID[d.ID], dl)
		c.byLease[d.Lease] = dl
	}
}

func (c *checker) settleAck(e, out Event) {
	refused := make(map[string]bool, len(out.Refused))
	for _, l := range out.Refused {
		refused[l] = true
	}
	for _, l := range e.Leases {
		d := c.byLease[l]
		if d == nil {
			continue // not a lease anyone received: nothing to settle
		}
		switch out.Outcome {
		case OK:
			if !refused[l] {
				d.acked = true
			}
		case Unknown:
			d.ackUnknownAt = earliest(d.ackUnknownAt, e.Time)
		}
	}
}

// settleGiveBack reads a nack or a release: one that may have been applied
// ended the lease when it was invoked.
func (c *checker) settleGiveBack(e, out Event) {
	if len(e.Leases) == 0 {
		return
	}
	d := c.byLease[e.Leases[0]]
	if d == nil || out.Outcome == Failed {
		return
	}
	if e.Op == OpRelease {
		d.releaseAt = earliest(d.releaseAt, e.Time)
		return
	}
	d.nackAt = earliest(d.nackAt, e.Time)
	if out.Outcome == OK && out.DeadLettered {
		d.deadLettered = true
	}
}

func (c *checker) ids() []string {
	ids := make([]string, 0, len(c.byID))
	for id := range c.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (c *checker) violate(kind, id, body, format string, args ...any) {
	c.r.Violations = append(c.r.Violations, Violation{Kind: kind, ID: id, Body: body, Detail: fmt.Sprintf(format, args...)})
}

// checkMessage judges the deliveries of one server id: phantoms, then each
// redelivery in the order the leases were granted.
func (c *checker) checkMessage(id string, ds []*delivery) {
	c.r.Received++
	if slices.ContainsFunc(ds, func(d *delivery) bool { return d.acked }) {
		c.r.Acked++
	}
	body := ds[0].Body
	for _, d := range ds {
		if !c.sentBodies[d.Body] {
			c.r.Phantoms++
			c.phantoms[id] = true
			c.violate(KindPhantom, id, d.Body, "received (receive #%d) but never sent", d.seq)
			return
		}
		if d.Body != body {
			c.r.Phantoms++
			c.phantoms[id] = true
			c.violate(KindPhantom, id, d.Body, "one id, two bodies: %s (receive #%d) and %s (receive #%d)",
				body, ds[0].seq, d.Body, d.seq)
			return
		}
	}
	// In the order the server granted them: attempts count the grants.
	// Deliveries of one attempt (after releases) in the order they were
	// answered, which a repeat follows, rather than by their stamps, which
	// may be read before the server waited for its store.
	slices.SortStableFunc(ds, func(a, b *delivery) int {
		return cmp.Or(cmp.Compare(a.Attempt, b.Attempt), a.answered.Compare(b.answered), cmp.Compare(a.seq, b.seq))
	})
	for i := 1; i < len(ds); i++ {
		c.checkRedelivery(id, ds[:i], ds[i])
	}
}

// checkRedelivery classifies delivery cur of a message given the deliveries
// granted before it: a violation, or an explained duplicate with its cause.
func (c *checker) checkRedelivery(id string, before []*delivery, cur *delivery) {
	for _, p := range before {
		if p.acked {
			c.r.AckedThenRedelivered++
			c.violate(KindAckedThenRedelivered, id, cur.Body,
				"delivered again (receive #%d, attempt %d) after an ack of attempt %d (receive #%d) returned 2xx",
				cur.seq, cur.Attempt, p.Attempt, p.seq)
			return
		}
	}
	// Certain overlaps only: the new lease reached its consumer before the
	// old one ended. A lease stamped before the old one ended but answered
	// after it may have been granted after it.
	for _, p := range before {
		if cur.answered.Before(p.end()) {
			c.r.OverlappingLeases++
			c.violate(KindOverlappingLeases, id, cur.Body,
				"attempt %d (receive #%d) was handed out by %s while attempt %d (receive #%d) was leased until %s",
				cur.Attempt, cur.seq, fmtTime(cur.answered), p.Attempt, p.seq, fmtTime(p.end()))
			return
		}
	}
	prev := before[len(before)-1]
	cause := c.cause(prev)
	if cause == CauseRelease && cur.Attempt == prev.Attempt {
		c.r.SameAttempt++ // a release does not count the attempt
	} else if cur.Attempt > 0 && prev.Attempt > 0 && cur.Attempt <= prev.Attempt {
		c.r.UnexplainedDuplicates++
		c.violate(KindUnexplainedDuplicate, id, cur.Body,
			"delivered again as attempt %d (receive #%d) after attempt %d (receive #%d): the server forgot a delivery",
			cur.Attempt, cur.seq, prev.Attempt, prev.seq)
		return
	}
	c.r.Explained[cause]++
}

// cause says why a message came back after delivery prev, which ended
// before the next began. A nack or ack invoked after the lease had expired
// cannot have been applied, and is no cause.
func (c *checker) cause(prev *delivery) Cause {
	switch {
	case prev.settledBy(prev.nackAt):
		return CauseNack
	case prev.settledBy(prev.releaseAt):
		return CauseRelease
	case prev.settledBy(prev.ackUnknownAt):
		return CauseAckUnknown
	}
	for _, t := range c.crashes {
		if !t.Before(prev.granted) && t.Before(prev.end()) {
			return CauseCrash
		}
	}
	return CauseLeaseExpiry
}

// checkBodies looks at each body's server ids: a body may live under several
// ids only when several sends of it may have stored it, and an id nobody was
// told must come from a send whose answer was not seen.
func (c *checker) checkBodies() {
	type bodyInfo struct {
		claimed map[string]bool // ids answered to 2xx sends
		anon    int             // sends that may have stored it under an id not seen
		ids     []string        // ids it was received under
	}
	bodies := make(map[string]*bodyInfo)
	info := func(b string) *bodyInfo {
		if bodies[b] == nil {
			bodies[b] = &bodyInfo{claimed: make(map[string]bool)}
		}
		return bodies[b]
	}
	for _, s := range c.sends {
		switch {
		case s.outcome == Failed:
		case s.id != "":
			info(s.body).claimed[s.id] = true
		default:
			info(s.body).anon++
		}
	}
	for _, id := range c.ids() {
		d := c.byID[id][0]
		if !c.phantoms[id] {
			info(d.Body).ids = append(info(d.Body).ids, id)
		}
	}
	okBodies := make(map[string]bool)
	for _, s := range c.sends {
		if s.outcome == OK {
			okBodies[s.body] = true
		}
	}
	names := make([]string, 0, len(bodies))
	for b := range bodies {
		names = append(names, b)
	}
	slices.Sort(names)
	for _, b := range names {
		bi := bodies[b]
		if len(bi.ids) == 0 {
			continue
		}
		if !okBodies[b] {
			c.r.UnknownStored++
		}
		var unclaimed []string
		for _, id := range bi.ids {
			if !bi.claimed[id] {
				unclaimed = append(unclaimed, id)
			}
		}
		excess := max(len(unclaimed)-bi.anon, 0)
		if excess > 0 {
			c.r.UnexplainedDuplicates += excess
			c.violate(KindUnexplainedDuplicate, strings.Join(unclaimed, ","), b,
				"stored under %d ids no answer named (%v), but only %d sends of it went unanswered",
				len(unclaimed), unclaimed, bi.anon)
		}
		if n := len(bi.ids) - 1 - excess; n > 0 {
			c.r.Explained[CauseSendRetry] += n
		}
	}
}

// checkSends finds the 2xx sends whose message did not make it to the end:
// never received, or received but never acked (nor dead-lettered) although
// the final drain should have received and acked it.
func (c *checker) checkSends() {
	receivedBody := make(map[string]bool)
	doneBody := make(map[string]bool)
	for _, ds := range c.byID {
		for _, d := range ds {
			receivedBody[d.Body] = true
		}
		if slices.ContainsFunc(ds, (*delivery).done) {
			doneBody[ds[0].Body] = true
		}
	}
	for _, s := range c.sends {
		if s.outcome != OK {
			continue
		}
		received, done := receivedBody[s.body], doneBody[s.body]
		if s.id != "" {
			ds := c.byID[s.id]
			received = slices.ContainsFunc(ds, func(d *delivery) bool { return d.Body == s.body })
			done = received && slices.ContainsFunc(ds, (*delivery).done)
		}
		switch {
		case !received:
			c.r.Lost++
			c.violate(KindLost, s.id, s.body, "send answered 2xx, message never received")
		case !done:
			c.r.Lost++
			c.violate(KindLost, s.id, s.body, "send answered 2xx, received, but never acked: it vanished")
		}
	}
}

func fmtTime(t time.Time) string { return t.UTC().Format("15:04:05.000000") }
