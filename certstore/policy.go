package certstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/directdl/directdl/internal/netguard"
)

// ErrInvalidOptions: a Probe or Complete call cannot start because its URL
// or one of its options is unusable (not an http or https URL, an invalid
// CIDR in the Policy, a negative limit). The message names the option.
var ErrInvalidOptions = errors.New("certstore: invalid options")

// Policy decides which addresses the probe and the AIA fetcher may connect
// to. It is checked when connecting, on the resolved address, for every
// connection: each redirect hop, each address of a hop with AllAddresses,
// and each AIA caIssuers URL (and its redirects), so a certificate or a
// redirect cannot point them at a metadata service or at the agent itself.
//
// The zero Policy refuses loopback, link-local (with the cloud metadata
// address 169.254.169.254), unspecified, multicast, broadcast and reserved
// addresses and allows everything else. The first matching rule decides:
// a Deny prefix refuses; an Allow prefix allows, even a special address;
// with OnlyAllowed everything else is refused; then the special ranges are
// refused. These are the rules of the download package's Policy, so one
// set of flags serves both.
//
// A Policy holds no state; it is safe for concurrent use as long as its
// slices are not modified.
type Policy struct {
	// Allow lists prefixes that are allowed even in a special range, such
	// as 127.0.0.0/8 for a mirror on loopback. Without OnlyAllowed it does
	// not restrict other addresses.
	Allow []netip.Prefix
	// Deny lists prefixes that are always refused, whatever Allow says.
	Deny []netip.Prefix
	// OnlyAllowed refuses every address in no Allow prefix; it needs at
	// least one Allow prefix.
	OnlyAllowed bool
}

// Validate reports whether p is usable: every prefix valid and masked
// (10.0.0.0/8, not 10.1.2.3/8), and at least one Allow prefix with
// OnlyAllowed. Errors wrap ErrInvalidOptions.
func (p Policy) Validate() error {
	if err := p.guard().Validate(); err != nil {
		return fmt.Errorf("%w: policy: %v", ErrInvalidOptions, err)
	}
	return nil
}

func (p Policy) guard() netguard.Policy {
	return netguard.Policy{Allow: p.Allow, Deny: p.Deny, OnlyAllowed: p.OnlyAllowed}
}

// Resolver looks up a host's addresses. *net.Resolver satisfies it; tests
// use a fake one that maps names to loopback addresses.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// guardedDialer connects to the addresses its Resolver returns, each
// checked against the policy by a netguard.Dialer at connect time. It
// resolves the name itself, rather than letting net do it, so the addresses
// a report lists are the ones dialed, and a fake Resolver works for
// every connection.
type guardedDialer struct {
	d *netguard.Dialer
	r Resolver
}

func newGuardedDialer(p Policy, r Resolver, connectTimeout time.Duration) (*guardedDialer, error) {
	d, err := netguard.NewDialer(p.guard(), &net.Dialer{Timeout: connectTimeout})
	if err != nil {
		return nil, fmt.Errorf("%w: policy: %v", ErrInvalidOptions, err)
	}
	if r == nil {
		r = net.DefaultResolver
	}
	return &guardedDialer{d: d, r: r}, nil
}

// resolve returns host's addresses: the address itself for a literal.
func (g *guardedDialer) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	addrs, err := g.r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return addrs, nil
}

// dialAddr connects to one address; the netguard.Dialer refuses it before
// any packet is sent when the policy denies it.
func (g *guardedDialer) dialAddr(ctx context.Context, host string, a netip.Addr, port string) (net.Conn, error) {
	c, err := g.d.DialContext(ctx, "tcp", net.JoinHostPort(a.String(), port))
	if err != nil && host != a.String() {
		return nil, fmt.Errorf("%s: %w", host, err)
	}
	return c, err
}

// DialContext resolves address's host and connects to its addresses in
// order until one answers, for http.Transport.
func (g *guardedDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var first error
	for _, a := range addrs {
		c, err := g.dialAddr(ctx, host, a, port)
		if err == nil {
			return c, nil
		}
		if first == nil || errors.Is(first, netguard.ErrDenied) && !errors.Is(err, netguard.ErrDenied) {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}
