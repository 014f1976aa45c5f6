package bench

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/courierhq/courier"
)

// TestStampedBodies: a stamped body has the size asked for and gives back
// the time since its stamp; a body too small for the stamp carries it in a
// header.
func TestStampedBodies(t *testing.T) {
	t.Parallel()
	base := time.Now().Add(-time.Hour)
	for _, size := range []int{0, 1, 8, 9, 10, 128, 4096} {
		b := newBodies(size, base)
		sent := b.stamped(30 * time.Minute)
		raw, err := base64.StdEncoding.DecodeString(*sent.BodyBase64)
		if err != nil || len(raw) != size {
			t.Errorf("size %d: body of %d bytes (%v)", size, len(raw), err)
		}
		plain, _ := base64.StdEncoding.DecodeString(*b.message().BodyBase64)
		if len(plain) != size {
			t.Errorf("size %d: unstamped body of %d bytes", size, len(plain))
		}
		got := courier.Message{BodyBase64: sent.BodyBase64, Headers: sent.Headers}
		d, ok := b.since(&got)
		if !ok || d < 30*time.Minute || d > 31*time.Minute {
			t.Errorf("size %d: since = %v, %v; want about 30m", size, d, ok)
		}
		if _, ok := b.since(&courier.Message{}); ok {
			t.Errorf("size %d: a message without a stamp has one", size)
		}
	}
}
