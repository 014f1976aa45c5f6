// Package netguard decides which network addresses courier's outbound
// webhooks may reach. By default it refuses every address that is not a
// public unicast address: loopback, private, link-local (including the cloud
// metadata service at 169.254.169.254), carrier-grade NAT, multicast,
// broadcast, unspecified, documentation and other reserved ranges, in any
// of their IPv6 disguises (IPv4-mapped, IPv4-compatible, NAT64, 6to4). An
// allow-list of prefixes set by the operator overrides the refusal.
//
// A Guard checks twice. At submit, CheckURL refuses a URL whose host is a
// denied literal address (also in the shorthand forms inet_aton accepts,
// such as 127.1 or 2130706433) or a localhost name, so that the requester
// hears of the mistake at once. At delivery, Control, installed as
// net.Dialer.Control, checks the address actually dialled, after DNS: the
// URL text alone proves nothing, as a name may resolve (or be rebound, or be
// redirected) to a private address. Control is the check that matters;
// CheckURL is a courtesy.
package netguard

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrDenied is matched (errors.Is) by every refusal of a Guard.
var ErrDenied = errors.New("address not allowed")

// DeniedError is a refusal of a Guard: the address and the range it is in.
type DeniedError struct {
	Addr   string // the address or host refused, as given
	Reason string // the range, e.g. "loopback" or "private"
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("%s is %s, which webhooks may not reach", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// Guard decides which addresses may be reached. Safe for concurrent use; it
// does not change after New.
type Guard struct {
	allow []netip.Prefix // masked; IPv4-mapped prefixes stored as IPv4
}

// New returns a guard that refuses the denied ranges except for the
// addresses in allow. A nil allow-list allows only public addresses.
func New(allow []netip.Prefix) (*Guard, error) {
	g := &Guard{}
	for _, p := range allow {
		if !p.IsValid() {
			return nil, fmt.Errorf("allow-list: invalid prefix %v", p)
		}
		// ::ffff:10.0.0.0/104 means 10.0.0.0/8: Contains never matches an
		// IPv4 address against an IPv6 prefix, so store the IPv4 form.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		g.allow = append(g.allow, p.Masked())
	}
	return g, nil
}

// CheckAddr returns nil if ip may be reached, or a *DeniedError.
func (g *Guard) CheckAddr(ip netip.Addr) error {
	if reason := g.denied(ip.WithZone("")); reason != "" {
		return &DeniedError{Addr: ip.String(), Reason: reason}
	}
	return nil
}

// denied returns why ip is refused, or "" if it may be reached.
func (g *Guard) denied(ip netip.Addr) string {
	if !ip.IsValid() {
		return "not a valid address"
	}
	if g.allowed(ip) {
		return ""
	}
	if ip.Is4In6() {
		// The kernel dials ::ffff:a.b.c.d as a.b.c.d.
		return g.denied(ip.Unmap())
	}
	for _, r := range embedding {
		if r.prefix.Contains(ip) {
			// The packet ends up at the embedded IPv4 address.
			if reason := g.denied(r.extract(ip)); reason != "" {
				return reason + " (in " + r.name + ")"
			}
			return ""
		}
	}
	for _, r := range deniedRanges {
		if r.prefix.Contains(ip) {
			return r.name
		}
	}
	return ""
}

func (g *Guard) allowed(ip netip.Addr) bool {
	for _, p := range g.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// CheckURL vets a webhook URL at submit: it refuses a host that is a denied
// literal address, in any notation a resolver might accept (see
// ParseIPv4Shorthand), a host whose last label is numeric but that is no
// IPv4 address, and the names localhost and *.localhost. Other names pass:
// what they resolve to is checked when dialled (Control).
func (g *Guard) CheckURL(u *url.URL) error {
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return errors.New("the URL has no host")
	}
	// A fully qualified name may end in a dot ("127.0.0.1.", "localhost.").
	name := strings.TrimSuffix(host, ".")
	if ip, err := netip.ParseAddr(name); err == nil {
		return g.CheckAddr(ip)
	}
	if ip, ok := ParseIPv4Shorthand(name); ok {
		if err := g.CheckAddr(ip); err != nil {
			return &DeniedError{Addr: host + " (" + ip.String() + ")", Reason: err.(*DeniedError).Reason}
		}
		return nil
	}
	if endsInNumber(name) {
		// As the WHATWG URL standard does: such a host is an IPv4 address
		// or invalid, never a name to look up.
		return fmt.Errorf("host %q is not a valid IPv4 address", host)
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return &DeniedError{Addr: host, Reason: "loopback"}
	}
	return nil
}

// endsInNumber reports whether the last label of host is all decimal digits
// or a 0x-prefixed hexadecimal number.
func endsInNumber(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if strings.HasPrefix(last, "0x") {
		last = last[2:]
		return strings.Trim(last, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// Control checks the address about to be dialled; install it as
// net.Dialer.Control. network must be TCP or UDP and address an IP and port
// (as the dialer passes them, after name resolution); anything else, and
// any denied address, is refused with a *DeniedError or an error that
// matches ErrDenied.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return fmt.Errorf("network %q: %w", network, ErrDenied)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("address %q: %w", address, ErrDenied)
	}
	return g.CheckAddr(ap.Addr())
}
