package netguard_test

import (
	"net/netip"
	"testing"

	"github.com/courierhq/courier/internal/netguard"
)

// FuzzParseIPv4Shorthand checks that the parser never panics, that what it
// returns is an IPv4 address, and that it agrees with net/netip wherever
// netip accepts an IPv4 address (the canonical dotted quad).
func FuzzParseIPv4Shorthand(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1", "127.1", "127.0.1", "2130706433", "0x7f000001", "0177.0.0.1",
		"017700000001", "0x7f.1", "0", "0x", "255.255.255.255", "4294967296",
		"1.2.3.4.5", "256.1.1.1", "08", "::1", "::ffff:127.0.0.1", "", ".", "1..2",
		"0xffffffff", "037777777777", "192.168.257", "1.16777215", "-1", " 1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := netguard.ParseIPv4Shorthand(s)
		if ok && !got.Is4() {
			t.Fatalf("ParseIPv4Shorthand(%q) = %v, not IPv4", s, got)
		}
		if want, err := netip.ParseAddr(s); err == nil && want.Is4() {
			if !ok || got != want {
				t.Fatalf("ParseIPv4Shorthand(%q) = %v, %v; netip says %v", s, got, ok, want)
			}
		}
		if ok && got.String() == s {
			// A canonical dotted quad: netip must read it the same.
			if want, err := netip.ParseAddr(s); err != nil || want != got {
				t.Fatalf("ParseIPv4Shorthand(%q) = %v; netip says %v, %v", s, got, want, err)
			}
		}
	})
}
