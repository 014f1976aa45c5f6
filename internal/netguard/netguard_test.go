package netguard_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/courierhq/courier/internal/netguard"
)

func mustGuard(t *testing.T, allow ...string) *netguard.Guard {
	t.Helper()
	var ps []netip.Prefix
	for _, a := range allow {
		ps = append(ps, netip.MustParsePrefix(a))
	}
	g, err := netguard.New(ps)
	if err != nil {
		t.Fatalf("New(%v): %v", allow, err)
	}
	return g
}

func TestCheckAddrDefaultPolicy(t *testing.T) {
	t.Parallel()
	g := mustGuard(t)
	for _, tc := range []struct {
		addr   string
		reason string // "" = allowed
	}{
		// Public addresses pass.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"93.184.215.14", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:81c::200e", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},  // 6to4 of 8.8.8.8
		// Right outside denied ranges.
		{"9.255.255.255", ""},
		{"11.0.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"192.167.255.255", ""},
		{"192.169.0.0", ""},
		{"223.255.255.255", ""},

		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"100.64.0.1", "shared (CGNAT)"},
		{"100.127.255.255", "shared (CGNAT)"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"169.254.169.254", "link-local"},
		{"169.254.0.1", "link-local"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.0.0.170", "reserved (IETF)"},
		{"192.0.2.1", "documentation"},
		{"192.88.99.1", "reserved (6to4)"},
		{"192.168.1.1", "private"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "broadcast"},

		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "loopback"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:10.1.2.3", "private"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"::127.0.0.1", "IPv4-compatible (deprecated)"},
		{"::8.8.8.8", "IPv4-compatible (deprecated)"},
		{"64:ff9b::7f00:1", "loopback (in NAT64)"},
		{"64:ff9b::127.0.0.1", "loopback (in NAT64)"},
		{"64:ff9b::a9fe:a9fe", "link-local (in NAT64)"},
		{"64:ff9b::ffff:ffff", "broadcast (in NAT64)"},
		{"64:ff9b:1::1", "local-use NAT64"},
		{"100::1", "discard-only"},
		{"2001::1", "Teredo"},
		{"2001:2::1", "benchmarking"},
		{"2001:10::1", "ORCHID"},
		{"2001:20::1", "ORCHIDv2"},
		{"2001:db8::1", "documentation"},
		{"2002:7f00:1::1", "loopback (in 6to4)"},
		{"2002:c0a8:101::", "private (in 6to4)"},
		{"3fff::1", "documentation"},
		{"5f00::1", "SRv6 SIDs"},
		{"fc00::1", "private (unique local)"},
		{"fd12:3456::1", "private (unique local)"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf::1", "link-local"},
		{"fec0::1", "site-local (deprecated)"},
		{"ff02::1", "multicast"},
		{"ff05::2", "multicast"},
	} {
		err := g.CheckAddr(netip.MustParseAddr(tc.addr))
		if tc.reason == "" {
			if err != nil {
				t.Errorf("CheckAddr(%s) = %v, want allowed", tc.addr, err)
			}
			continue
		}
		var de *netguard.DeniedError
		if !errors.As(err, &de) || !errors.Is(err, netguard.ErrDenied) {
			t.Errorf("CheckAddr(%s) = %v, want a DeniedError (%s)", tc.addr, err, tc.reason)
			continue
		}
		if de.Reason != tc.reason {
			t.Errorf("CheckAddr(%s) reason %q, want %q", tc.addr, de.Reason, tc.reason)
		}
	}
}

func TestCheckAddrAllowList(t *testing.T) {
	t.Parallel()
	g := mustGuard(t, "127.0.0.0/8", "10.1.0.0/16", "fd00::/8", "::ffff:192.168.7.0/120")
	for _, tc := range []struct {
		addr    string
		allowed bool
	}{
		{"127.0.0.1", true},
		{"127.9.9.9", true},
		{"::ffff:127.0.0.1", true}, // the same address, mapped
		{"64:ff9b::7f00:1", true},  // NAT64 to an allowed address
		{"10.1.2.3", true},
		{"10.2.0.1", false},
		{"fd00::1", true},
		{"fc00::1", false},
		{"192.168.7.9", true}, // the mapped prefix counts for IPv4
		{"192.168.8.1", false},
		{"::1", false}, // allowing 127/8 does not allow IPv6 loopback
		{"169.254.169.254", false},
		{"8.8.8.8", true},
	} {
		err := g.CheckAddr(netip.MustParseAddr(tc.addr))
		if (err == nil) != tc.allowed {
			t.Errorf("CheckAddr(%s) = %v, want allowed=%v", tc.addr, err, tc.allowed)
		}
	}
}

func TestNewRefusesInvalidPrefix(t *testing.T) {
	t.Parallel()
	if _, err := netguard.New([]netip.Prefix{{}}); err == nil {
		t.Fatal("New with a zero prefix: no error")
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	g := mustGuard(t)
	for _, tc := range []struct {
		url     string
		allowed bool
	}{
		{"https://example.com/hook", true},
		{"https://hooks.example.com:8443/a?b=c", true},
		{"http://8.8.8.8/", true},
		{"http://[2606:4700:4700::1111]:80/", true},
		{"https://127.0.0.1.example.com/", true}, // a name: checked at dial
		{"https://localhost.example.com/", true},
		{"https://api.0x7f.example/", true},

		{"http://127.0.0.1/", false},
		{"http://127.0.0.1:8080/", false},
		{"http://127.0.0.1./", false},
		{"http://10.0.0.1/", false},
		{"http://169.254.169.254/latest/meta-data/", false},
		{"http://0.0.0.0/", false},
		{"http://[::1]/", false},
		{"http://[::]:80/", false},
		{"http://[::ffff:127.0.0.1]/", false},
		{"http://[::ffff:7f00:1]/", false},
		{"http://[fe80::1%25eth0]/", false},
		{"http://[64:ff9b::a9fe:a9fe]/", false},
		{"http://[fd00::1]/", false},
		{"http://localhost/", false},
		{"http://LOCALHOST:8080/", false},
		{"http://localhost./", false},
		{"http://app.localhost/", false},
		// inet_aton shorthand forms of 127.0.0.1 and friends.
		{"http://127.1/", false},
		{"http://127.0.1/", false},
		{"http://2130706433/", false},
		{"http://0x7f000001/", false},
		{"http://0X7F000001/", false},
		{"http://0177.0.0.1/", false},
		{"http://017700000001/", false},
		{"http://0x7f.0.0.1/", false},
		{"http://0x7f.1/", false},
		{"http://0/", false},
		{"http://2852039166/", false}, // 169.254.169.254
		{"http://0xa9fea9fe/", false},
		{"http://10.1/", false},
		{"http://134744072/", true}, // 8.8.8.8: a public address, whatever the notation
		// Ends in a number, but no address: refused rather than looked up.
		{"http://1.2.3.4.5/", false},
		{"http://256.1.1.1/", false},
		{"http://08.1.1.1/", false},
		{"http://example.123/", false},
		{"http://4294967296/", false},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", tc.url, err)
		}
		err = g.CheckURL(u)
		if (err == nil) != tc.allowed {
			t.Errorf("CheckURL(%s) = %v, want allowed=%v", tc.url, err, tc.allowed)
		}
	}
}

func TestCheckURLAllowList(t *testing.T) {
	t.Parallel()
	g := mustGuard(t, "127.0.0.0/8")
	for _, s := range []string{"http://127.0.0.1:9/", "http://127.1/", "http://2130706433/"} {
		if err := g.CheckURL(&url.URL{Scheme: "http", Host: strings.TrimSuffix(strings.TrimPrefix(s, "http://"), "/")}); err != nil {
			t.Errorf("CheckURL(%s) with 127/8 allowed: %v", s, err)
		}
	}
}

func TestCheckURLErrorNamesTheAddress(t *testing.T) {
	t.Parallel()
	err := mustGuard(t).CheckURL(&url.URL{Scheme: "http", Host: "2130706433"})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1") || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err = %v, want it to name 127.0.0.1 and loopback", err)
	}
}

func TestParseIPv4Shorthand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want string // "" = not an address
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0X7F000001", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"0x7f.0x0.0x0.0x1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0177.1", "127.0.0.1"},
		{"127.000.000.001", "127.0.0.1"},
		{"0", "0.0.0.0"},
		{"0x", "0.0.0.0"},
		{"00", "0.0.0.0"},
		{"4294967295", "255.255.255.255"},
		{"0xffffffff", "255.255.255.255"},
		{"037777777777", "255.255.255.255"},
		{"1.16777215", "1.255.255.255"},
		{"1.2.65535", "1.2.255.255"},
		{"10.1", "10.0.0.1"},
		{"192.168.257", "192.168.1.1"},
		{"8.8.8.8", "8.8.8.8"},

		{"", ""},
		{".", ""},
		{"1.", ""},
		{".1", ""},
		{"1..1", ""},
		{"1.2.3.4.5", ""},
		{"256.0.0.1", ""},
		{"1.256.0.1", ""},
		{"1.2.3.256", ""},
		{"1.16777216", ""},
		{"1.2.65536", ""},
		{"4294967296", ""},
		{"0x100000000", ""},
		{"040000000000", ""},
		{"08", ""},
		{"09.1.1.1", ""},
		{"0xg", ""},
		{"-1", ""},
		{"+1", ""},
		{" 1", ""},
		{"1 ", ""},
		{"1.2.3.4 ", ""},
		{"example.com", ""},
		{"::1", ""},
		{"99999999999999999999999", ""},
		{strings.Repeat("0", 100), ""},
	} {
		got, ok := netguard.ParseIPv4Shorthand(tc.in)
		switch {
		case tc.want == "" && ok:
			t.Errorf("ParseIPv4Shorthand(%q) = %v, want not an address", tc.in, got)
		case tc.want != "" && (!ok || got.String() != tc.want):
			t.Errorf("ParseIPv4Shorthand(%q) = %v, %v; want %s", tc.in, got, ok, tc.want)
		}
	}
}

func TestControl(t *testing.T) {
	t.Parallel()
	g := mustGuard(t, "10.9.0.0/16")
	for _, tc := range []struct {
		network, address string
		allowed          bool
	}{
		{"tcp", "8.8.8.8:443", true},
		{"tcp4", "8.8.8.8:80", true},
		{"tcp6", "[2606:4700:4700::1111]:443", true},
		{"tcp", "10.9.1.1:80", true},
		{"tcp", "127.0.0.1:80", false},
		{"tcp", "169.254.169.254:80", false},
		{"tcp6", "[::1]:443", false},
		{"tcp6", "[::ffff:127.0.0.1]:443", false},
		{"tcp6", "[fe80::1%eth0]:443", false},
		{"tcp", "10.10.0.1:80", false},
		{"unix", "/var/run/docker.sock", false},
		{"tcp", "localhost:80", false}, // not an address: never reaches the check in practice
		{"tcp", "garbage", false},
	} {
		err := g.Control(tc.network, tc.address, nil)
		if (err == nil) != tc.allowed {
			t.Errorf("Control(%s, %s) = %v, want allowed=%v", tc.network, tc.address, err, tc.allowed)
		}
		if err != nil && !errors.Is(err, netguard.ErrDenied) {
			t.Errorf("Control(%s, %s) = %v, want it to match ErrDenied", tc.network, tc.address, err)
		}
	}
}

// TestControlRefusesRealDial dials a real listener on loopback through a
// dialer with the guard: refused without the allow-list, connected with it.
func TestControlRefusesRealDial(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	d := net.Dialer{Control: mustGuard(t).Control}
	_, err = d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if !errors.Is(err, netguard.ErrDenied) || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("dial %s without allow-list: err = %v, want ErrDenied (loopback)", ln.Addr(), err)
	}
	d = net.Dialer{Control: mustGuard(t, "127.0.0.0/8").Control}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial %s with 127/8 allowed: %v", ln.Addr(), err)
	}
	c.Close()
}
