package netguard

import "net/netip"

// namedPrefix is a denied range and why.
type namedPrefix struct {
	prefix netip.Prefix
	name   string
}

func deny(cidr, name string) namedPrefix {
	return namedPrefix{netip.MustParsePrefix(cidr), name}
}

// deniedRanges are refused unless allow-listed. The list follows the IANA
// special-purpose address registries (RFC 6890 and successors): every range
// that is not globally reachable unicast, plus a few that are but that no
// webhook has business with. IPv4-mapped addresses (::ffff:0:0/96) are
// unmapped before this list is consulted; the ranges in embedding are
// judged by the IPv4 address inside them.
var deniedRanges = []namedPrefix{
	// IPv4.
	deny("0.0.0.0/8", "unspecified"),          // "this network"; Linux dials 0.0.0.0 as loopback
	deny("10.0.0.0/8", "private"),             // RFC 1918
	deny("100.64.0.0/10", "shared (CGNAT)"),   // RFC 6598: the carrier's side of NAT, often internal
	deny("127.0.0.0/8", "loopback"),           // RFC 1122
	deny("169.254.0.0/16", "link-local"),      // RFC 3927; 169.254.169.254 is the cloud metadata service
	deny("172.16.0.0/12", "private"),          // RFC 1918
	deny("192.0.0.0/24", "reserved (IETF)"),   // RFC 6890: protocol assignments, e.g. NAT64 discovery
	deny("192.0.2.0/24", "documentation"),     // RFC 5737 TEST-NET-1
	deny("192.88.99.0/24", "reserved (6to4)"), // RFC 7526: deprecated 6to4 relay anycast
	deny("192.168.0.0/16", "private"),         // RFC 1918
	deny("198.18.0.0/15", "benchmarking"),     // RFC 2544: lab networks
	deny("198.51.100.0/24", "documentation"),  // RFC 5737 TEST-NET-2
	deny("203.0.113.0/24", "documentation"),   // RFC 5737 TEST-NET-3
	deny("224.0.0.0/4", "multicast"),          // RFC 5771
	deny("255.255.255.255/32", "broadcast"),   // named on its own for a clearer error; before 240/4, which covers it
	deny("240.0.0.0/4", "reserved"),           // RFC 1112 class E
	// IPv6.
	deny("::/128", "unspecified"),                 // RFC 4291
	deny("::1/128", "loopback"),                   // RFC 4291
	deny("::/96", "IPv4-compatible (deprecated)"), // RFC 4291 §2.5.5.1: no legitimate use left
	deny("64:ff9b:1::/48", "local-use NAT64"),     // RFC 8215: translates to a local network's choice
	deny("100::/64", "discard-only"),              // RFC 6666
	deny("2001::/32", "Teredo"),                   // RFC 4380: tunnels to an obfuscated IPv4 address
	deny("2001:2::/48", "benchmarking"),           // RFC 5180
	deny("2001:10::/28", "ORCHID"),                // RFC 4843, not routable
	deny("2001:20::/28", "ORCHIDv2"),              // RFC 7343, not routable
	deny("2001:db8::/32", "documentation"),        // RFC 3849
	deny("3fff::/20", "documentation"),            // RFC 9637
	deny("5f00::/16", "SRv6 SIDs"),                // RFC 9602, not globally routed
	deny("fc00::/7", "private (unique local)"),    // RFC 4193
	deny("fe80::/10", "link-local"),               // RFC 4291
	deny("fec0::/10", "site-local (deprecated)"),  // RFC 3879; some stacks still route it locally
	deny("ff00::/8", "multicast"),                 // RFC 4291
}

// embeddingRange is an IPv6 range that carries an IPv4 address to which
// packets are delivered; the range is as allowed as that address.
type embeddingRange struct {
	prefix  netip.Prefix
	name    string
	extract func(netip.Addr) netip.Addr
}

var embedding = []embeddingRange{
	// RFC 6052: the well-known NAT64 prefix, IPv4 in the last 32 bits.
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64", func(a netip.Addr) netip.Addr {
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[12:16]))
	}},
	// RFC 3056: 6to4, 2002:AABB:CCDD::/48 for IPv4 AA.BB.CC.DD.
	{netip.MustParsePrefix("2002::/16"), "6to4", func(a netip.Addr) netip.Addr {
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[2:6]))
	}},
}
