package history_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/history"
)

var (
	t0      = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	vis     = time.Second
	errGone = errors.New("connection reset by peer")
	err409  = errors.New("lease expired (lease_expired)")
)

// hist writes synthetic histories: a Log on a clock the test moves.
type hist struct {
	now time.Time
	l   *history.Log
}

func newHist() *hist {
	h := &hist{now: t0}
	h.l = history.NewLog(history.WithClock(func() time.Time { return h.now }))
	return h
}

// at moves the clock to ms milliseconds after t0.
func (h *hist) at(ms int) *hist {
	h.now = t0.Add(time.Duration(ms) * time.Millisecond)
	return h
}

// sendOK records a single send of body answered 2xx with id.
func (h *hist) sendOK(body, id string) { h.l.Send(body).OK(id) }

// recv records a receive at the current time, with visibility vis, that
// hands out message id (body) as attempt; it returns the lease.
func (h *hist) recv(id, body string, attempt int) string {
	lease := id + "/" + string(rune('0'+attempt))
	h.l.Receive(vis).OK(h.delivery(id, body, attempt))
	return lease
}

func (h *hist) delivery(id, body string, attempt int) history.Delivery {
	return history.Delivery{ID: id, Body: body, Lease: id + "/" + string(rune('0'+attempt)), Attempt: attempt,
		LeaseExpiresAt: h.now.Add(vis)}
}

// again records a receive, like recv, of a delivery that repeats attempt
// (after a release) under a lease of its own; it returns the lease.
func (h *hist) again(id, body string, attempt int, n int) string {
	d := h.delivery(id, body, attempt)
	d.Lease += "." + string(rune('0'+n))
	h.l.Receive(vis).OK(d)
	return d.Lease
}

func (h *hist) ack(lease string)  { h.l.Ack(lease).OK() }
func (h *hist) nack(lease string) { h.l.Nack(lease).OK(false) }

// check runs the checker and fails the test unless the report has exactly
// the bad counts in want (kind → count; absent kinds must be zero).
func check(t *testing.T, h *hist, want map[string]int) history.Report {
	t.Helper()
	r := history.Check(h.l)
	got := map[string]int{
		history.KindLost:                 r.Lost,
		history.KindAckedThenRedelivered: r.AckedThenRedelivered,
		history.KindOverlappingLeases:    r.OverlappingLeases,
		history.KindUnexplainedDuplicate: r.UnexplainedDuplicates,
		history.KindPhantom:              r.Phantoms,
	}
	bad := 0
	for kind, n := range got {
		if n != want[kind] {
			t.Errorf("%s = %d, want %d", kind, n, want[kind])
		}
		bad += n
	}
	if len(r.Violations) != bad {
		t.Errorf("%d violations listed for %d counted: %v", len(r.Violations), bad, r.Violations)
	}
	if r.OK() != (bad == 0) {
		t.Errorf("OK() = %v with %d violations", r.OK(), bad)
	}
	for _, v := range r.Violations {
		if want[v.Kind] == 0 {
			t.Errorf("unexpected violation: %v", v)
		}
	}
	if t.Failed() {
		t.Logf("report: %v", r)
		for _, e := range h.l.Events() {
			t.Logf("  %v", e)
		}
	}
	return r
}

// explained fails the test unless the explained duplicates are exactly want.
func explained(t *testing.T, r history.Report, want map[history.Cause]int) {
	t.Helper()
	for _, c := range history.Causes {
		if r.Explained[c] != want[c] {
			t.Errorf("explained %s = %d, want %d (%v)", c, r.Explained[c], want[c], r)
		}
	}
}

func TestLegalHistories(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		write   func(h *hist)
		causes  map[history.Cause]int
		inspect func(t *testing.T, r history.Report)
	}{
		{name: "empty", write: func(h *hist) {}},
		{
			name: "send, receive, ack",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l := h.at(5).recv("1", "a", 1)
				h.at(10).ack(l)
			},
			inspect: func(t *testing.T, r history.Report) {
				if r.SendsOK != 1 || r.Received != 1 || r.Deliveries != 1 || r.Acked != 1 {
					t.Errorf("counts: %v", r)
				}
			},
		},
		{
			name: "redelivery after the lease expired",
			write: func(h *hist) {
				h.sendOK("a", "1")
				h.at(10).recv("1", "a", 1)          // dropped: lease until 1010
				h.at(1010).ack(h.recv("1", "a", 2)) // exactly at expiry is fine
			},
			causes: map[history.Cause]int{history.CauseLeaseExpiry: 1},
		},
		{
			name: "late ack refused, then redelivered",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l1 := h.at(10).recv("1", "a", 1)
				h.at(1200).l.Ack(l1).Failed(err409)
				h.at(1300).ack(h.recv("1", "a", 2))
			},
			causes: map[history.Cause]int{history.CauseLeaseExpiry: 1},
		},
		{
			name: "redelivery after a nack, before the lease would have expired",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l1 := h.at(10).recv("1", "a", 1)
				n := h.at(20).l.Nack(l1)
				// Another consumer gets it before the nacker hears back.
				l2 := h.at(21).recv("1", "a", 2)
				h.at(22)
				n.OK(false)
				h.ack(l2)
			},
			causes: map[history.Cause]int{history.CauseNack: 1},
		},
		{
			// Seen in a soak: the server read its clock for the second
			// lease before it waited for its store, where the nack went
			// first. The stamp precedes the nack; the answer follows it.
			name: "a lease stamped before the nack that freed it",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l1 := h.at(100).recv("1", "a", 3)
				r2 := h.at(95).l.Receive(vis)
				d2 := h.delivery("1", "a", 4) // stamped at 95
				h.at(101).l.Nack(l1).OK(false)
				h.at(102)
				r2.OK(d2)
				h.ack(d2.Lease)
			},
			causes: map[history.Cause]int{history.CauseNack: 1},
		},
		{
			name: "redelivery after a nack whose outcome is unknown",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l1 := h.at(10).recv("1", "a", 1)
				h.at(20).l.Nack(l1).Unknown(errGone)
				h.at(30).ack(h.recv("1", "a", 2))
			},
			causes: map[history.Cause]int{history.CauseNack: 1},
		},
		{
			name: "redelivery after a crash while leased, once the lease expired",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l1 := h.at(10).recv("1", "a", 1)
				h.at(500).l.Crash("kill -9")
				h.at(600).l.Restart("")
				h.at(700).l.Ack(l1).Failed(errors.New("connection refused"))
				h.at(1500).ack(h.recv("1", "a", 2))
			},
			causes: map[history.Cause]int{history.CauseCrash: 1},
			inspect: func(t *testing.T, r history.Report) {
				if r.Crashes != 1 || r.Restarts != 1 {
					t.Errorf("faults: %v", r)
				}
			},
		},
		{
			name: "redelivery after an ack whose outcome was unknown",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l1 := h.at(10).recv("1", "a", 1)
				h.at(500).l.Crash("kill -9")
				h.at(500).l.Ack(l1).Unknown(errGone)
				h.at(600).l.Restart("")
				h.at(1500).ack(h.recv("1", "a", 2))
			},
			causes: map[history.Cause]int{history.CauseAckUnknown: 1},
		},
		{
			name: "a nack and an ack of unknown outcome after the lease expired are no cause",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l1 := h.at(10).recv("1", "a", 1)
				h.at(1100).l.Nack(l1).Unknown(errGone)
				l2 := h.at(1200).recv("1", "a", 2)
				h.at(2300).l.Ack(l2).Unknown(errGone)
				h.at(2400).ack(h.recv("1", "a", 3))
			},
			causes: map[history.Cause]int{history.CauseLeaseExpiry: 2},
		},
		{
			name: "an ack whose outcome was unknown and that was applied",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l := h.at(10).recv("1", "a", 1)
				h.at(500).l.Ack(l).Unknown(errGone)
			},
		},
		{
			name: "a send whose outcome was unknown, never received, is not lost",
			write: func(h *hist) {
				h.l.Send("a").Unknown(errGone)
				h.l.Send("b").Failed(errors.New("invalid_argument"))
				h.sendOK("c", "3")
				h.at(10).ack(h.recv("3", "c", 1))
			},
			inspect: func(t *testing.T, r history.Report) {
				if r.SendsOK != 1 || r.SendsFailed != 1 || r.SendsUnknown != 1 || r.UnknownStored != 0 {
					t.Errorf("counts: %v", r)
				}
			},
		},
		{
			name: "a send whose outcome was unknown, received",
			write: func(h *hist) {
				h.l.Send("a").Unknown(errGone)
				h.at(10).ack(h.recv("1", "a", 1))
			},
			inspect: func(t *testing.T, r history.Report) {
				if r.UnknownStored != 1 || r.SendsUnknown != 1 {
					t.Errorf("counts: %v", r)
				}
			},
		},
		{
			name: "a send never answered at all, received",
			write: func(h *hist) {
				h.l.Send("a") // no outcome: the process of the test died, say
				h.at(10).ack(h.recv("1", "a", 1))
			},
		},
		{
			name: "a send retried after an unknown outcome, stored twice",
			write: func(h *hist) {
				h.l.Send("a").Unknown(errGone)
				h.sendOK("a", "2")
				h.at(10).ack(h.recv("1", "a", 1))
				h.at(20).ack(h.recv("2", "a", 1))
			},
			causes: map[history.Cause]int{history.CauseSendRetry: 1},
		},
		{
			name: "batches: a send of three, a receive of three, a batch ack with one refused",
			write: func(h *hist) {
				h.l.Send("a", "b", "c").OK("1", "2", "3")
				h.at(10).l.Receive(vis).OK(h.delivery("1", "a", 1), h.delivery("2", "b", 1), h.delivery("3", "c", 1))
				h.at(20).l.Ack("1/1", "2/1", "3/1").OK("3/1") // 3's lease refused: not acked
				h.at(1100).ack(h.recv("3", "c", 2))
			},
			causes: map[history.Cause]int{history.CauseLeaseExpiry: 1},
			inspect: func(t *testing.T, r history.Report) {
				if r.SendsOK != 3 || r.Received != 3 || r.Deliveries != 4 || r.Acked != 3 {
					t.Errorf("counts: %v", r)
				}
			},
		},
		{
			name: "nacked into the dead-letter queue: finished, not lost",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l := h.at(10).recv("1", "a", 1)
				h.at(20).l.Nack(l).OK(true)
			},
		},
		{
			name: "the later lease recorded first",
			write: func(h *hist) {
				// Consumer A receives attempt 1 but records it only after
				// consumer B received attempt 2 once the lease expired.
				h.sendOK("a", "1")
				r1 := h.at(10).l.Receive(vis)
				d1 := h.delivery("1", "a", 1)
				h.at(1100).ack(h.recv("1", "a", 2))
				h.at(1200)
				r1.OK(d1)
			},
			causes: map[history.Cause]int{history.CauseLeaseExpiry: 1},
		},
		{
			name: "visibility not known: the answer's arrival bounds the grant",
			write: func(h *hist) {
				h.sendOK("a", "1")
				r1 := h.at(10).l.Receive(0)
				h.at(15)
				r1.OK(h.delivery("1", "a", 1)) // expires 1015
				r2 := h.at(900).l.Receive(0)   // a long-poll, granted after 1015
				h.at(1100)
				d := h.delivery("1", "a", 2)
				r2.OK(d)
				h.ack(d.Lease)
			},
			causes: map[history.Cause]int{history.CauseLeaseExpiry: 1},
		},
		{
			name: "a release hands it back without counting the attempt",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l1 := h.at(10).recv("1", "a", 1)
				h.at(20).l.Release(l1).OK()
				l2 := h.at(30).again("1", "a", 1, 2)
				h.at(40).l.Release(l2).OK()
				h.at(50).ack(h.again("1", "a", 1, 3))
			},
			causes: map[history.Cause]int{history.CauseRelease: 2},
			inspect: func(t *testing.T, r history.Report) {
				if r.SameAttempt != 2 || r.Deliveries != 3 {
					t.Errorf("counts: %v", r)
				}
			},
		},
		{
			// The repeat's stamp is read before the release's (the server
			// read its clock, then waited for its store): answered after
			// the release, it is legal, and follows the released delivery.
			name: "a repeat stamped before the delivery it repeats",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l1 := h.at(100).recv("1", "a", 1)
				r2 := h.at(90).l.Receive(vis)
				d2 := h.delivery("1", "a", 1) // stamped at 90
				d2.Lease += ".2"
				h.at(110).l.Release(l1).OK()
				h.at(120)
				r2.OK(d2)
				h.ack(d2.Lease)
			},
			causes: map[history.Cause]int{history.CauseRelease: 1},
		},
		{
			name: "a release whose outcome is unknown, then the next attempt",
			write: func(h *hist) {
				h.sendOK("a", "1")
				l1 := h.at(10).recv("1", "a", 1)
				h.at(20).l.Release(l1).Unknown(errGone)
				h.at(1100).ack(h.recv("1", "a", 2))
			},
			causes: map[history.Cause]int{history.CauseRelease: 1},
			inspect: func(t *testing.T, r history.Report) {
				if r.SameAttempt != 0 {
					t.Errorf("same attempt counted: %v", r)
				}
			},
		},
		{
			name: "many redeliveries, several causes",
			write: func(h *hist) {
				h.sendOK("a", "1")
				h.at(10).recv("1", "a", 1) // expires at 1010
				l2 := h.at(1010).recv("1", "a", 2)
				h.at(1020).l.Nack(l2).OK(false)
				l3 := h.at(1030).recv("1", "a", 3)
				h.at(1040).l.Ack(l3).Unknown(errGone) // not applied: expires at 2030
				h.at(2030).recv("1", "a", 4)
				h.at(2500).l.Crash("kill") // while attempt 4 is leased, until 3030
				h.at(2600).l.Restart("")
				h.at(3100).ack(h.recv("1", "a", 5))
			},
			causes: map[history.Cause]int{history.CauseLeaseExpiry: 1, history.CauseNack: 1,
				history.CauseAckUnknown: 1, history.CauseCrash: 1},
			inspect: func(t *testing.T, r history.Report) {
				if r.Duplicates() != 4 || r.Deliveries != 5 || r.Received != 1 {
					t.Errorf("counts: %v", r)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHist()
			tt.write(h)
			r := check(t, h, nil)
			explained(t, r, tt.causes)
			if tt.inspect != nil {
				tt.inspect(t, r)
			}
		})
	}
}

func TestLost(t *testing.T) {
	t.Parallel()
	t.Run("never received", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.sendOK("a", "1")
		h.l.Send("b", "c").OK("2", "3")
		h.at(10).ack(h.recv("2", "b", 1))
		r := check(t, h, map[string]int{history.KindLost: 2})
		if r.Violations[0].Body != "a" || r.Violations[1].Body != "c" {
			t.Errorf("violations: %v", r.Violations)
		}
	})
	t.Run("received, then vanished unacked", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.sendOK("a", "1")
		l1 := h.at(10).recv("1", "a", 1)
		h.at(2000).l.Ack(l1).Failed(err409) // the lease had expired: it must come back, and did not
		check(t, h, map[string]int{history.KindLost: 1})
	})
	t.Run("received under another id than the send was told", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.sendOK("a", "1")
		h.at(10).ack(h.recv("9", "a", 1))
		// Id 1 never came; id 9 came from no send that was not answered.
		check(t, h, map[string]int{history.KindLost: 1, history.KindUnexplainedDuplicate: 1})
	})
	t.Run("a send retried: the 2xx copy lost", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.l.Send("a").Unknown(errGone)
		h.sendOK("a", "2")
		h.at(10).ack(h.recv("1", "a", 1))
		check(t, h, map[string]int{history.KindLost: 1})
	})
}

func TestAckedThenRedelivered(t *testing.T) {
	t.Parallel()
	h := newHist()
	h.sendOK("a", "1")
	h.sendOK("b", "2")
	h.at(10).ack(h.recv("1", "a", 1))
	h.at(30).ack(h.recv("2", "b", 1))
	// Long after its lease: no overlap, but it was acked.
	h.at(5000).ack(h.recv("1", "a", 2))
	h.at(6000).ack(h.recv("1", "a", 3))
	r := check(t, h, map[string]int{history.KindAckedThenRedelivered: 2})
	explained(t, r, nil)
	if v := r.Violations[0]; v.ID != "1" || !strings.Contains(v.Detail, "returned 2xx") {
		t.Errorf("violation: %v", v)
	}
}

func TestAckedThenRedeliveredConcurrently(t *testing.T) {
	t.Parallel()
	// The redelivery is recorded before the ack's 2xx: still a violation.
	h := newHist()
	h.sendOK("a", "1")
	l1 := h.at(10).recv("1", "a", 1)
	a := h.at(1500).l.Ack(l1) // too late, yet the server says 2xx
	h.at(1600).recv("1", "a", 2)
	h.at(1700)
	a.OK()
	check(t, h, map[string]int{history.KindAckedThenRedelivered: 1})
}

func TestOverlappingLeases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write func(h *hist)
	}{
		{"a second lease while the first runs", func(h *hist) {
			h.at(10).recv("1", "a", 1)
			h.at(500).ack(h.recv("1", "a", 2))
		}},
		{"one nanosecond before expiry", func(h *hist) {
			h.at(10).recv("1", "a", 1)
			h.now = t0.Add(1010*time.Millisecond - 1)
			h.ack(h.recv("1", "a", 2))
		}},
		{"a crash does not end a lease", func(h *hist) {
			h.at(10).recv("1", "a", 1)
			h.at(100).l.Crash("kill -9")
			h.at(200).l.Restart("")
			h.at(300).ack(h.recv("1", "a", 2))
		}},
		{"an ack of unknown outcome does not end a lease", func(h *hist) {
			l1 := h.at(10).recv("1", "a", 1)
			h.at(100).l.Ack(l1).Unknown(errGone)
			h.at(300).ack(h.recv("1", "a", 2))
		}},
		{"a failed nack does not end a lease", func(h *hist) {
			l1 := h.at(10).recv("1", "a", 1)
			h.at(100).l.Nack(l1).Failed(errors.New("invalid_argument"))
			h.at(300).ack(h.recv("1", "a", 2))
		}},
		{"a lease handed out before the nack was invoked", func(h *hist) {
			l1 := h.at(10).recv("1", "a", 1)
			r2 := h.at(50).l.Receive(vis)
			d2 := h.delivery("1", "a", 2) // granted at 50
			h.at(60)
			r2.OK(d2)
			h.at(100).l.Nack(l1).OK(false)
			h.ack(d2.Lease)
		}},
		{"a failed release does not end a lease", func(h *hist) {
			l1 := h.at(10).recv("1", "a", 1)
			h.at(100).l.Release(l1).Failed(errors.New("invalid_argument"))
			h.at(300).ack(h.recv("1", "a", 2))
		}},
		{"a lease handed out before the release was invoked", func(h *hist) {
			l1 := h.at(10).recv("1", "a", 1)
			l2 := h.at(50).again("1", "a", 1, 2)
			h.at(100).l.Release(l1).OK()
			h.ack(l2)
		}},
		{"visibility unknown: answered before the first lease ended", func(h *hist) {
			h.at(10).recv("1", "a", 1)
			r := h.at(200).l.Receive(0)
			d := h.at(300).delivery("1", "a", 2)
			r.OK(d)
			h.ack(d.Lease)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHist()
			h.sendOK("a", "1")
			tt.write(h)
			r := check(t, h, map[string]int{history.KindOverlappingLeases: 1})
			explained(t, r, nil)
		})
	}
}

func TestUnexplainedDuplicates(t *testing.T) {
	t.Parallel()
	t.Run("the same attempt twice", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.sendOK("a", "1")
		h.at(10).recv("1", "a", 1)
		h.at(3000).ack(h.recv("1", "a", 1)) // after expiry, but as attempt 1 again
		check(t, h, map[string]int{history.KindUnexplainedDuplicate: 1})
	})
	t.Run("the same attempt after a nack", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.sendOK("a", "1")
		l1 := h.at(10).recv("1", "a", 1)
		h.at(20).l.Nack(l1).OK(false)
		h.at(30).ack(h.again("1", "a", 1, 2)) // only a release leaves the attempt as it was
		r := check(t, h, map[string]int{history.KindUnexplainedDuplicate: 1})
		if r.SameAttempt != 0 {
			t.Errorf("same attempt counted: %v", r)
		}
	})
	t.Run("the same attempt after a release refused", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.sendOK("a", "1")
		l1 := h.at(10).recv("1", "a", 1)
		h.at(1100).l.Release(l1).Failed(err409)
		h.at(1200).ack(h.again("1", "a", 1, 2))
		check(t, h, map[string]int{history.KindUnexplainedDuplicate: 1})
	})
	t.Run("the same attempt after a release invoked once the lease had expired", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.sendOK("a", "1")
		l1 := h.at(10).recv("1", "a", 1)
		h.at(1100).l.Release(l1).Unknown(errGone) // too late to apply, whatever its outcome
		h.at(1200).ack(h.again("1", "a", 1, 2))
		check(t, h, map[string]int{history.KindUnexplainedDuplicate: 1})
	})
	t.Run("one send stored twice", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.sendOK("a", "1")
		h.at(10).ack(h.recv("1", "a", 1))
		h.at(20).ack(h.recv("2", "a", 1))
		r := check(t, h, map[string]int{history.KindUnexplainedDuplicate: 1})
		explained(t, r, nil)
	})
	t.Run("two unanswered sends, three copies", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.l.Send("a").Unknown(errGone)
		h.l.Send("a").Unknown(errGone)
		for i, id := range []string{"1", "2", "3"} {
			h.at(10 * (i + 1)).ack(h.recv(id, "a", 1))
		}
		r := check(t, h, map[string]int{history.KindUnexplainedDuplicate: 1})
		explained(t, r, map[history.Cause]int{history.CauseSendRetry: 1})
	})
}

func TestPhantoms(t *testing.T) {
	t.Parallel()
	t.Run("never sent", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.at(10).ack(h.recv("1", "ghost", 1))
		h.at(20).ack(h.recv("2", "ghost2", 1))
		h.at(2000).ack(h.recv("2", "ghost2", 2))
		check(t, h, map[string]int{history.KindPhantom: 2})
	})
	t.Run("only sent with a failed outcome", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.l.Send("a").Failed(errors.New("too_large"))
		h.at(10).ack(h.recv("1", "a", 1))
		check(t, h, map[string]int{history.KindPhantom: 1})
	})
	t.Run("one id, two bodies", func(t *testing.T) {
		t.Parallel()
		h := newHist()
		h.sendOK("a", "1")
		h.sendOK("b", "2")
		h.at(10).ack(h.recv("1", "a", 1))
		h.at(3000).ack(h.recv("1", "b", 2)) // id 1 reused for b: b's id 2 never came
		check(t, h, map[string]int{history.KindPhantom: 1, history.KindLost: 1})
	})
}

func TestReportString(t *testing.T) {
	t.Parallel()
	h := newHist()
	h.sendOK("a", "1")
	h.at(10).ack(h.recv("9", "ghost", 1))
	r := check(t, h, map[string]int{history.KindLost: 1, history.KindPhantom: 1})
	s := r.String()
	for _, want := range []string{"sent ok=1", "lost=1", "acked-then-redelivered=0", "overlapping-leases=0",
		"unexplained-duplicates=0", "phantoms=1", "lease_expiry=0", "nack=0", "release=0", "same-attempt=0",
		"crash=0", "ack_unknown=0",
		"send_retry=0", "crashes=0"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q: %s", want, s)
		}
	}
	if v := r.Violations[1].String(); v != "lost: id=1 body=a: send answered 2xx, message never received" {
		t.Errorf("violation: %s", v)
	}
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	h := newHist()
	h.sendOK("a", "1")
	h.sendOK("b", "2")
	h.at(10).l.Receive(vis).OK(h.delivery("1", "a", 1), h.delivery("2", "b", 1))
	h.at(20).l.Crash("kill -9")
	h.at(30).l.Restart("")
	h.at(40).l.Ack("2/1").OK()
	h.at(1100).l.Nack(h.recv("1", "a", 2)).Unknown(errGone)
	var got []string
	for _, e := range h.l.Excerpt("", "a") {
		got = append(got, e.Op.String()+" "+e.Outcome.String())
		for _, d := range e.Deliveries {
			if d.ID != "1" {
				t.Errorf("excerpt of a holds a delivery of %s: %v", d.ID, e)
			}
		}
	}
	want := "send invoked,send ok,receive invoked,receive ok,crash invoked,restart invoked,receive invoked,receive ok,nack invoked,nack unknown"
	if strings.Join(got, ",") != want {
		t.Errorf("excerpt:\n got %s\nwant %s", strings.Join(got, ","), want)
	}
	if ex := h.l.Excerpt("2", ""); len(ex) != 6 { // receive, crash, restart, ack, with outcomes
		t.Errorf("excerpt of id 2: %v", ex)
	}
}
