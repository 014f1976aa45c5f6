package pgstore

import (
	"encoding/base64"
	"encoding/binary"
	"strings"

	"github.com/courierhq/courier/internal/store"
)

// Message ids are the message's number (from courier_message_seq) in
// Crockford's base32, 13 characters, so they sort as they were sent and look
// like the embedded store's.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

func formatID(n int64) string {
	var b [13]byte
	u := uint64(n)
	for i := 12; i >= 0; i-- {
		b[i] = crockford[u&31]
		u >>= 5
	}
	return string(b[:])
}

// parseID is formatID's inverse; ok is false for anything formatID does not make.
func parseID(s string) (int64, bool) {
	if len(s) != 13 || s[0] > '7' { // 13×5 = 65 bits: the top digit holds one bit
		return 0, false
	}
	var u uint64
	for i := range len(s) {
		d := strings.IndexByte(crockford, s[i])
		if d < 0 {
			return 0, false
		}
		u = u<<5 | uint64(d)
	}
	if u == 0 || u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// A lease token names the message and the lease number: 16 bytes, base64url.
// The number comes from a sequence, once per lease statement: the messages
// leased together share it, and a message leased again gets a greater one,
// so no token is ever issued twice. (One number per message cost a
// sequence update, and a WAL record every 32, per message leased.)
func formatLease(id, lease int64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(id))
	binary.BigEndian.PutUint64(b[8:], uint64(lease))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func parseLease(s string) (id, lease int64, err error) {
	var b [16]byte
	if len(s) != 22 {
		return 0, 0, store.ErrInvalidLease
	}
	n, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(s))
	if err != nil || n != 16 {
		return 0, 0, store.ErrInvalidLease
	}
	id, lease = int64(binary.BigEndian.Uint64(b[:8])), int64(binary.BigEndian.Uint64(b[8:]))
	if id <= 0 || lease <= 0 {
		return 0, 0, store.ErrInvalidLease
	}
	return id, lease, nil
}
