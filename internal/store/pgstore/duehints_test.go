package pgstore

import (
	"testing"
	"time"
)

func TestDueHints(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	wantDue := func(h *dueHints, now time.Time, want bool) {
		t.Helper()
		if got := h.due("q", now); got != want {
			t.Errorf("due at %v = %v, want %v", now.Sub(t0), got, want)
		}
	}

	t.Run("UnknownUntilReset", func(t *testing.T) {
		h := newDueHints()
		wantDue(h, t0, true)
		h.note("q", at(5)) // a note alone does not make the hint known
		wantDue(h, t0, true)
		h.finish(h.begin("q"), at(10), true)
		wantDue(h, at(9), false)
		wantDue(h, at(10), true)
		if h.due("other", t0) != true {
			t.Error("another queue's hint is known")
		}
	})

	t.Run("NotesLowerOrDrop", func(t *testing.T) {
		h := newDueHints()
		h.finish(h.begin("q"), at(10), true)
		h.note("q", at(20)) // later: no change
		wantDue(h, at(9), false)
		h.note("q", at(4))
		wantDue(h, at(3), false)
		wantDue(h, at(4), true)
		h.note("q", time.Time{})
		wantDue(h, t0, true)
	})

	t.Run("NoteDuringReset", func(t *testing.T) {
		// The reset read the database before a change committed elsewhere
		// on this node: its result must not hide that change.
		h := newDueHints()
		r := h.begin("q")
		h.note("q", at(3))
		h.note("other", at(1))
		h.finish(r, at(10), true)
		wantDue(h, at(2), false)
		wantDue(h, at(3), true)

		r = h.begin("q")
		h.note("q", time.Time{}) // dropped meanwhile: stays unknown
		h.finish(r, at(10), true)
		wantDue(h, t0, true)
	})

	t.Run("FailedReset", func(t *testing.T) {
		h := newDueHints()
		h.finish(h.begin("q"), at(10), true)
		r := h.begin("q")
		h.finish(r, at(100), false)
		wantDue(h, at(10), true)
		if len(h.resets) != 0 {
			t.Errorf("%d resets left", len(h.resets))
		}
		h.finish(nil, at(100), true) // no reset: nothing happens
		wantDue(h, at(10), true)
	})
}
