package bench

import (
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/courierhq/courier"
)

// stampBytes is the head of a body that carries its send time: 8 bytes of
// nanoseconds and one of filler, 9 bytes that base64 encodes to 12
// characters without padding, so a stamped body is a fresh 12-character
// head before the encoding of its tail, made once.
const (
	stampBytes = 9
	stampChars = 12
)

// stampHeader carries the send time of a body too small to hold it.
const stampHeader = "bench-t"

// bodies makes the message bodies of a run: size bytes each, of random
// content (incompressible, so that bytes on disk are honest), sent as
// bytes (body_base64). A stamped body begins with the time, since the
// run's base, at which its send was due; the consumer reads it back to
// measure latency without keeping any state per message. Both ends run in
// this process, so one monotonic clock serves both.
type bodies struct {
	size  int
	base  time.Time
	plain string // the whole body, encoded: the same for every unstamped message
	tail  string // the encoding of the body after the stamp
}

func newBodies(size int, base time.Time) *bodies {
	raw := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 0x636f7572696572)) // fixed: runs are alike
	for i := range raw {
		raw[i] = byte(rng.Uint32())
	}
	b := &bodies{size: size, base: base, plain: base64.StdEncoding.EncodeToString(raw)}
	if size >= stampBytes {
		b.tail = base64.StdEncoding.EncodeToString(raw[stampBytes:])
	}
	return b
}

// message is an unstamped message.
func (b *bodies) message() courier.NewMessage {
	return courier.NewMessage{BodyBase64: &b.plain}
}

// stamped is a message that carries due, its send's due time since base.
func (b *bodies) stamped(due time.Duration) courier.NewMessage {
	if b.size < stampBytes {
		return courier.NewMessage{BodyBase64: &b.plain,
			Headers: map[string]string{stampHeader: strconv.FormatInt(int64(due), 10)}}
	}
	var head [stampBytes]byte
	binary.BigEndian.PutUint64(head[:], uint64(due))
	s := base64.StdEncoding.EncodeToString(head[:]) + b.tail
	return courier.NewMessage{BodyBase64: &s}
}

// since is how long ago, on the clock of base, the stamped message m was
// due to be sent; false if m carries no stamp.
func (b *bodies) since(m *courier.Message) (time.Duration, bool) {
	var due int64
	switch {
	case b.size >= stampBytes && m.BodyBase64 != nil && len(*m.BodyBase64) >= stampChars:
		var head [stampBytes]byte
		if _, err := base64.StdEncoding.Decode(head[:], []byte((*m.BodyBase64)[:stampChars])); err != nil {
			return 0, false
		}
		due = int64(binary.BigEndian.Uint64(head[:]))
	case m.Headers[stampHeader] != "":
		v, err := strconv.ParseInt(m.Headers[stampHeader], 10, 64)
		if err != nil {
			return 0, false
		}
		due = v
	default:
		return 0, false
	}
	return time.Since(b.base) - time.Duration(due), true
}

// now is the time since base, the stamp of a send made now.
func (b *bodies) now() time.Duration { return time.Since(b.base) }
