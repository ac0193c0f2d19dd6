package netguard

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrDenied is the parent of every address refusal: errors.Is(err, ErrDenied)
// reports whether a dial, request or check failed because of the Policy. The
// error itself is a *DeniedError.
var ErrDenied = errors.New("netguard: address denied by policy")

// ErrPolicy is the parent of every error from Policy.Validate and
// ParsePrefixes.
var ErrPolicy = errors.New("netguard: invalid policy")

// DeniedError is the error for an address the Policy refuses. It matches
// ErrDenied with errors.Is, including through the *net.OpError and *url.Error
// that net and net/http wrap it in.
type DeniedError struct {
	// Addr is the address that was refused, as it was checked (an
	// IPv4-mapped IPv6 address is reported as its IPv4 form).
	Addr netip.Addr
	// Host is the name that resolved to Addr, or Addr's text when the
	// caller dialed an address literal; empty for a bare CheckAddr.
	Host string
	// Reason says which rule refused the address: "loopback",
	// "link-local", "a cloud metadata service", "unspecified",
	// "multicast", "broadcast", "reserved", "in deny CIDR", "not in any
	// allow CIDR" or "invalid"; for an IPv6 address that embeds an IPv4
	// one, "the NAT64 form of 127.0.0.1 (loopback)" and the like (6to4,
	// IPv4-compatible).
	Reason string
	// Prefix is the range of the rule that matched: the special range,
	// the deny CIDR, or the zero Prefix for "not in any allow CIDR".
	Prefix netip.Prefix

	// fix is the hint appended to the message.
	fix string
}

// Error names the address, the host it was dialed for, the rule and the fix.
func (e *DeniedError) Error() string {
	var b strings.Builder
	b.WriteString("netguard: ")
	if e.Addr.IsValid() {
		b.WriteString(e.Addr.String())
	} else {
		b.WriteString("invalid address")
	}
	if e.Host != "" && e.Host != e.Addr.String() {
		fmt.Fprintf(&b, " (for %s)", e.Host)
	}
	switch {
	case e.Reason == "invalid":
	case strings.HasSuffix(e.Reason, "CIDR") && e.Prefix.IsValid():
		fmt.Fprintf(&b, " is %s %s", e.Reason, e.Prefix)
	default:
		fmt.Fprintf(&b, " is %s", e.Reason)
	}
	if e.fix != "" {
		b.WriteString("; ")
		b.WriteString(e.fix)
	}
	return b.String()
}

// Unwrap returns ErrDenied.
func (e *DeniedError) Unwrap() error { return ErrDenied }

// Policy decides which IP addresses may be connected to. The zero value is
// the safe default: every address is allowed except the special ranges
// listed in the package documentation (loopback, link-local and cloud
// metadata addresses, unspecified, multicast, broadcast and reserved).
//
// A Policy is checked in this order, and the first rule that matches
// decides:
//
//  1. An address in a Deny prefix is refused (deny wins over everything).
//  2. An address in an Allow prefix is allowed, even a special one.
//  3. With OnlyAllowed set, every other address is refused.
//  4. An address in a special range is refused.
//  5. Every other address is allowed.
//
// IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) are checked as the IPv4
// address they carry. Deny prefixes and the special ranges also apply to
// the IPv4 address embedded in NAT64 (64:ff9b::/96), 6to4 (2002::/16) and
// IPv4-compatible (::/96) addresses, so ::ffff:169.254.169.254 and
// 64:ff9b::a9fe:a9fe are refused like 169.254.169.254.
//
// A Policy holds no state; it is safe for concurrent use as long as its
// slices are not modified.
type Policy struct {
	// Allow lists prefixes that are allowed even when they fall in a
	// special range (for example 127.0.0.0/8 for a test mirror on the
	// loopback interface). Without OnlyAllowed it does not restrict
	// other addresses. An Allow prefix that covers a special range
	// unlocks it, so 0.0.0.0/0 allows loopback and metadata addresses
	// too: list the narrowest prefix that does the job.
	Allow Prefixes
	// Deny lists prefixes that are always refused, whatever Allow says.
	// To carve an exception out of a denied range, split the Deny prefix
	// instead of adding an Allow prefix.
	Deny Prefixes
	// OnlyAllowed turns Allow into an allow list: an address that is in
	// no Allow prefix is refused. Validate requires a non-empty Allow
	// when it is set.
	OnlyAllowed bool
}

// Validate reports whether p is usable: every prefix must be valid and
// masked (10.0.0.0/8, not 10.1.2.3/8), and OnlyAllowed needs at least one
// Allow prefix. Errors match ErrPolicy.
func (p Policy) Validate() error {
	for _, l := range []struct {
		name string
		ps   Prefixes
	}{{"allow", p.Allow}, {"deny", p.Deny}} {
		for _, pr := range l.ps {
			if problem := prefixProblem(pr); problem != "" {
				return fmt.Errorf("%w: %s CIDR %s", ErrPolicy, l.name, problem)
			}
		}
	}
	if p.OnlyAllowed && len(p.Allow) == 0 {
		return fmt.Errorf("%w: OnlyAllowed is set but no allow CIDR is given, so every address would be refused", ErrPolicy)
	}
	return nil
}

// CheckAddr reports whether a may be connected to under p. It returns nil
// or a *DeniedError (with an empty Host). CheckAddr does not call
// Validate: an invalid prefix simply matches nothing.
func (p Policy) CheckAddr(a netip.Addr) error {
	if e := p.check(a); e != nil {
		return e
	}
	return nil
}

// check is CheckAddr returning the concrete type, so that callers can fill
// in Host without a type assertion.
func (p Policy) check(addr netip.Addr) *DeniedError {
	if !addr.IsValid() {
		return &DeniedError{Addr: addr, Reason: "invalid"}
	}
	a := addr.Unmap().WithZone("")
	v4, embedKind := embeddedIPv4(a)

	for _, pr := range p.Deny {
		if contains(pr, a) || (v4.IsValid() && contains(pr, v4)) {
			return &DeniedError{Addr: a, Reason: "in deny CIDR", Prefix: pr,
				fix: "deny CIDRs win over allow CIDRs; narrow or split the deny CIDR to reach it"}
		}
	}
	for _, pr := range p.Allow {
		if contains(pr, a) {
			return nil
		}
	}
	if p.OnlyAllowed {
		return &DeniedError{Addr: a, Reason: "not in any allow CIDR",
			fix: fmt.Sprintf("add an allow CIDR such as %s", netip.PrefixFrom(a, a.BitLen()))}
	}
	if s, ok := special(a); ok {
		return &DeniedError{Addr: a, Reason: s.reason, Prefix: s.prefix,
			fix: fmt.Sprintf("allow it with an allow CIDR such as %s", s.prefix)}
	}
	if v4.IsValid() {
		if s, ok := special(v4); ok {
			return &DeniedError{Addr: a, Reason: "the " + embedKind + " form of " + v4.String() + " (" + s.reason + ")", Prefix: s.prefix,
				fix: fmt.Sprintf("allow it with an allow CIDR such as %s", netip.PrefixFrom(a, a.BitLen()))}
		}
	}
	return nil
}

// specialRange is one range denied by default.
type specialRange struct {
	prefix netip.Prefix
	reason string
}

// specials are the ranges denied by default, most specific first so that
// 169.254.169.254 is reported as a metadata service, not just link-local.
// Private (RFC 1918), unique-local (fc00::/7) and shared (100.64.0.0/10)
// addresses are not here: mirrors inside a data centre use them, and
// CloudStack allows them for direct download too. The metadata addresses
// inside those ranges are listed one by one.
var specials = []specialRange{
	{netip.MustParsePrefix("169.254.169.254/32"), "a cloud metadata service"}, // AWS, Azure, GCP, OpenStack, Oracle...
	{netip.MustParsePrefix("169.254.170.2/32"), "a cloud metadata service"},   // AWS ECS task metadata
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud metadata service"}, // Alibaba Cloud
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata service"},  // AWS IMDS over IPv6
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},                       // "this network"; Linux connects 0.0.0.0 to itself
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // class E
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// special reports the default-denied range a (unmapped, zoneless) is in.
func special(a netip.Addr) (specialRange, bool) {
	for _, s := range specials {
		if s.prefix.Contains(a) {
			return s, true
		}
	}
	return specialRange{}, false
}

var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	compatPrefix = netip.MustParsePrefix("::/96")
)

// embeddedIPv4 returns the IPv4 address that an IPv6 address routes to
// through a translation mechanism, and the mechanism's name. IPv4-mapped
// addresses are not handled here: callers unmap them first.
func embeddedIPv4(a netip.Addr) (netip.Addr, string) {
	if !a.Is6() {
		return netip.Addr{}, ""
	}
	b := a.As16()
	switch {
	case nat64Prefix.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64"
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4"
	case compatPrefix.Contains(a) && a != netip.IPv6Unspecified() && a != netip.IPv6Loopback():
		return netip.AddrFrom4([4]byte(b[12:16])), "IPv4-compatible"
	}
	return netip.Addr{}, ""
}

// contains is pr.Contains(a) where an IPv4-mapped prefix
// (::ffff:10.0.0.0/104) also matches the IPv4 addresses it maps, because
// addresses are unmapped before they are checked.
func contains(pr netip.Prefix, a netip.Addr) bool {
	if pr.Contains(a) {
		return true
	}
	if pr.Addr().Is4In6() && pr.Bits() >= 96 && a.Is4() {
		return netip.PrefixFrom(pr.Addr().Unmap(), pr.Bits()-96).Contains(a)
	}
	return false
}
