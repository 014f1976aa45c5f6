package history

import (
	"cmp"
	"slices"
)

// Excerpt returns the events of the log that concern one message, named by
// its server id or its body (either may be empty): the sends of the body and
// their outcomes, the receives that handed the message out (trimmed to its
// deliveries), the acks and nacks of its leases with their outcomes, and the
// faults between the first and the last of these.
func (l *Log) Excerpt(id, body string) []Event { return Excerpt(l.Events(), id, body) }

// Excerpt is Log.Excerpt of a list of events.
func Excerpt(events []Event, id, body string) []Event {
	ids := map[string]bool{}
	if id != "" {
		ids[id] = true
	}
	calls := map[int64]bool{} // invocations that concern the message
	leases := map[string]bool{}
	receives := map[int64][]Delivery{} // receive outcomes, trimmed
	for _, e := range events {
		switch {
		case e.Op == OpSend && e.Outcome == Invoked && body != "" && slices.Contains(e.Bodies, body):
			calls[e.Seq] = true
		case e.Op == OpSend && e.Outcome == OK && calls[e.Call]:
			for _, i := range e.IDs {
				ids[i] = true
			}
		}
	}
	for _, e := range events {
		if e.Op != OpReceive || e.Outcome != OK {
			continue
		}
		for _, d := range e.Deliveries {
			if ids[d.ID] || (body != "" && d.Body == body) {
				receives[e.Seq] = append(receives[e.Seq], d)
				leases[d.Lease] = true
				calls[e.Call] = true
			}
		}
	}
	for _, e := range events {
		if (e.Op == OpAck || e.Op == OpNack || e.Op == OpRelease) && e.Outcome == Invoked &&
			slices.ContainsFunc(e.Leases, func(l string) bool { return leases[l] }) {
			calls[e.Seq] = true
		}
	}
	var out []Event
	var first, last int64
	for _, e := range events {
		switch {
		case e.Op == OpCrash || e.Op == OpRestart:
			continue
		case e.Outcome == Invoked && calls[e.Seq]:
		case e.Outcome != Invoked && calls[e.Call]:
			if ds, ok := receives[e.Seq]; ok {
				e.Deliveries = ds
			} else if e.Op == OpReceive {
				continue // a receive that did not hand this message out
			}
		default:
			continue
		}
		if first == 0 {
			first = e.Seq
		}
		last = e.Seq
		out = append(out, e)
	}
	for _, e := range events {
		if (e.Op == OpCrash || e.Op == OpRestart) && e.Seq > first && e.Seq < last {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}
