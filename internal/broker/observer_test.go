package broker

import (
	"testing"

	"github.com/courierhq/courier/internal/store"
)

// TestOutcomeOf: a give-back is named by what the store did, a cancel
// first, then a dead letter, whatever the caller asked for.
func TestOutcomeOf(t *testing.T) {
	for _, c := range []struct {
		res     store.NackResult
		release bool
		want    string
	}{
		{store.NackResult{}, false, "retried"},
		{store.NackResult{}, true, "released"},
		{store.NackResult{DeadLettered: true}, false, "dead_lettered"},
		{store.NackResult{Cancelled: true}, true, "cancelled"},
		{store.NackResult{Cancelled: true, DeadLettered: true}, false, "cancelled"},
	} {
		if got := outcomeOf(c.res, c.release).String(); got != c.want {
			t.Errorf("outcomeOf(%+v, release %v) = %s, want %s", c.res, c.release, got, c.want)
		}
	}
}
