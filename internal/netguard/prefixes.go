package netguard

import (
	"fmt"
	"net/netip"
	"strings"
)

// Prefixes is a list of CIDR prefixes. It implements flag.Value, so a
// command can fill a Policy from repeatable or comma-separated flags:
//
//	flag.Var(&policy.Allow, "allow-cidr", "CIDR to allow even if special (repeatable)")
type Prefixes []netip.Prefix

// String returns the prefixes separated by commas, in a form ParsePrefixes
// reads back.
func (ps Prefixes) String() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Set appends the prefixes parsed from s by ParsePrefixes.
func (ps *Prefixes) Set(s string) error {
	add, err := ParsePrefixes(s)
	if err != nil {
		return err
	}
	*ps = append(*ps, add...)
	return nil
}

// ParsePrefixes parses a list of CIDR prefixes separated by commas and/or
// white space, such as "10.0.0.0/8, 192.168.1.5 fd00::/8". A bare address
// stands for itself (/32 or /128). A prefix with host bits set
// (10.1.2.3/8) is refused, since it is usually a typo for one of two
// different things; so are zones (fe80::1%eth0). The empty string gives an
// empty list. Errors match ErrPolicy.
func ParsePrefixes(s string) (Prefixes, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	var ps Prefixes
	for _, f := range fields {
		var p netip.Prefix
		if strings.Contains(f, "/") {
			var err error
			p, err = netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%w: %q is not a CIDR prefix such as 10.0.0.0/8 or fd00::/8", ErrPolicy, f)
			}
		} else {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%w: %q is not an IP address or a CIDR prefix such as 10.0.0.0/8", ErrPolicy, f)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("%w: %q has a zone; give the address without %%%s", ErrPolicy, f, a.Zone())
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if problem := prefixProblem(p); problem != "" {
			return nil, fmt.Errorf("%w: %s", ErrPolicy, problem)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// prefixProblem describes what is wrong with p, or returns "".
func prefixProblem(p netip.Prefix) string {
	if !p.IsValid() {
		return fmt.Sprintf("%q is not a valid prefix", p.String())
	}
	if m := p.Masked(); m != p {
		return fmt.Sprintf("%s has host bits set; did you mean %s or %s?",
			p, m, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	return ""
}
