package netguard

import (
	"net/netip"
	"strings"
)

// ParseIPv4Shorthand parses s as the C library's inet_aton does, which is
// what many resolvers, dialers and URL parsers (and so a webhook receiver's
// proxy, or curl) apply to a host name before looking it up:
//
//   - one to four parts separated by dots; the last part fills all the bits
//     the earlier ones leave: a (32 bits), a.b (8.24), a.b.c (8.8.16) or
//     a.b.c.d (8.8.8.8);
//   - each part is decimal, octal with a leading 0, or hexadecimal with a
//     leading 0x or 0X ("0x" alone is 0, as inet_aton has it).
//
// So 127.1, 2130706433, 0x7f000001, 0177.0.0.1, 017700000001 and 127.0.1
// are all 127.0.0.1. Go's netip.ParseAddr accepts only the canonical dotted
// quad and refuses these. ok is false when s is not such an address (signs,
// spaces, empty parts, a trailing dot and values out of range included).
func ParseIPv4Shorthand(s string) (addr netip.Addr, ok bool) {
	if s == "" || len(s) > 64 { // the longest sane form is 4 × "0x" + 8 digits + dots
		return netip.Addr{}, false
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals [4]uint64
	for i, p := range parts {
		v, ok := parseInetPart(p)
		if !ok {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	n := len(parts)
	// Every part but the last is one byte; the last fills the remaining bits.
	var ip uint64
	for i := 0; i < n-1; i++ {
		if vals[i] > 0xff {
			return netip.Addr{}, false
		}
		ip |= vals[i] << (24 - 8*i)
	}
	lastBits := 32 - 8*(n-1)
	if vals[n-1] >= 1<<lastBits {
		return netip.Addr{}, false
	}
	ip |= vals[n-1]
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}

// parseInetPart parses one part of an inet_aton address. Values past 32
// bits are refused rather than wrapped.
func parseInetPart(p string) (uint64, bool) {
	base := uint64(10)
	switch {
	case p == "":
		return 0, false
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, p = 16, p[2:]
		if p == "" {
			return 0, true
		}
	case len(p) >= 2 && p[0] == '0':
		base, p = 8, p[1:]
	}
	var v uint64
	for i := 0; i < len(p); i++ {
		d, ok := digit(p[i])
		if !ok || d >= base {
			return 0, false
		}
		v = v*base + d
		if v > 0xffffffff {
			return 0, false
		}
	}
	return v, true
}

func digit(c byte) (uint64, bool) {
	switch {
	case '0' <= c && c <= '9':
		return uint64(c - '0'), true
	case 'a' <= c && c <= 'f':
		return uint64(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}
