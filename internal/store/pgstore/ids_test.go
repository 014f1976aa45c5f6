package pgstore

import (
	"errors"
	"testing"

	"github.com/courierhq/courier/internal/store"
)

// A token carries its partition hint through, tokens without one (as
// issued before hints) still parse, and hints no partition has are refused.
func TestLeaseTokenPartHint(t *testing.T) {
	for part := int16(-1); part <= longPart; part++ {
		tok := formatLease(42, 1<<40+7, part)
		id, lease, got, err := parseLease(tok)
		if err != nil || id != 42 || lease != 1<<40+7 || got != part {
			t.Errorf("part %d: parseLease(%q) = %d, %d, %d, %v", part, tok, id, lease, got, err)
		}
	}
	for name, tok := range map[string]string{
		"hint beyond the partitions": formatLease(42, 7, longPart+1),
		"hint and no lease number":   formatLease(42, 0, 2),
		"top bits set":               formatLease(42, -1, -1),
	} {
		if _, _, _, err := parseLease(tok); !errors.Is(err, store.ErrInvalidLease) {
			t.Errorf("%s: parseLease(%q) = %v, want ErrInvalidLease", name, tok, err)
		}
	}
}
