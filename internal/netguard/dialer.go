package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// DefaultConnectTimeout bounds one dial when the Dialer sets no timeout:
// name resolution plus the TCP connect, across all the addresses tried.
const DefaultConnectTimeout = 30 * time.Second

// DialFunc is the signature of net.Dialer.DialContext and
// http.Transport.DialContext.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Dialer dials TCP connections after checking, at connect time, each
// resolved address against a Policy. The check runs in the net.Dialer's
// Control hook, so it sees exactly the addresses the kernel is asked to
// connect to: every address of a multi-address name, both families of a
// Happy Eyeballs race, and whatever a name resolves to at that moment (a
// name that resolved to a public address when a caller validated it and to
// 127.0.0.1 when dialed — DNS rebinding — is refused). A refused address is
// skipped like an unreachable one; when every address is refused the dial
// fails with a *DeniedError naming the host.
//
// The zero value uses the default Policy and DefaultConnectTimeout. A
// Dialer is safe for concurrent use as long as its fields are not modified.
type Dialer struct {
	// Policy decides which addresses may be dialed. It is validated on
	// every dial; NewDialer validates it once up front.
	Policy Policy
	// Timeout bounds each dial (resolution and connect). Zero means
	// Base.Timeout if Base sets one, else DefaultConnectTimeout.
	Timeout time.Duration
	// Base, if non-nil, supplies the other dial settings: Resolver,
	// LocalAddr, KeepAlive, FallbackDelay, and a Control or ControlContext
	// hook, which runs after the policy check. Base is copied, never
	// modified.
	Base *net.Dialer
}

// NewDialer returns a Dialer for p with base's settings (nil for the
// defaults), or an error matching ErrPolicy when p is invalid.
func NewDialer(p Policy, base *net.Dialer) (*Dialer, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Dialer{Policy: p, Base: base}, nil
}

// DialContext connects to address on the named network ("tcp", "tcp4",
// "tcp6", or the udp equivalents) after the policy check. Networks without
// IP addresses, such as "unix", are refused. It has the signature of
// http.Transport.DialContext.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := d.Policy.Validate(); err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address
	}
	nd := d.netDialer(host)
	return nd.DialContext(ctx, network, address)
}

// netDialer returns the net.Dialer for one dial to host: a copy of Base with
// the timeout and a ControlContext that checks each address for host.
func (d *Dialer) netDialer(host string) *net.Dialer {
	var nd net.Dialer
	if d.Base != nil {
		nd = *d.Base
	}
	switch {
	case d.Timeout > 0:
		nd.Timeout = d.Timeout
	case nd.Timeout <= 0:
		nd.Timeout = DefaultConnectTimeout
	}
	next := nd.ControlContext
	if next == nil && nd.Control != nil {
		c := nd.Control
		next = func(_ context.Context, network, address string, rc syscall.RawConn) error {
			return c(network, address, rc)
		}
	}
	nd.Control = nil
	p := d.Policy
	nd.ControlContext = func(ctx context.Context, network, address string, rc syscall.RawConn) error {
		if err := checkDialAddress(p, host, address); err != nil {
			return err
		}
		if next != nil {
			return next(ctx, network, address, rc)
		}
		return nil
	}
	return &nd
}

// checkDialAddress checks the "ip:port" that net is about to connect to.
func checkDialAddress(p Policy, host, address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// net always passes an IP literal here; anything else is refused
		// rather than let through unchecked.
		return &DeniedError{Host: host, Reason: "invalid"}
	}
	if e := p.check(ap.Addr()); e != nil {
		e.Host = host
		return e
	}
	return nil
}

// WrapDialer guards a dial function that does not go through a net.Dialer
// of this package, such as a SOCKS proxy's DialContext. Before dialing, the
// returned function resolves the host with r (nil means
// net.DefaultResolver), checks every address against p, and calls dial
// with the allowed addresses as IP literals, one after another until one
// connects, so that the far end connects to an address that was checked
// rather than resolving the name again. A host that is already an address
// literal is checked and dialed as is. When every address is refused the
// error is a *DeniedError.
//
// It cannot guard what dial does with the address: a proxy that ignores it
// or follows its own redirects is outside the policy. TLS is unaffected,
// because http.Transport verifies the certificate against the URL's host,
// not the dialed address.
func WrapDialer(p Policy, r *net.Resolver, dial DialFunc) DialFunc {
	if r == nil {
		r = net.DefaultResolver
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if err := p.Validate(); err != nil {
			return nil, err
		}
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else {
			ipNet := "ip"
			switch network {
			case "tcp4", "udp4":
				ipNet = "ip4"
			case "tcp6", "udp6":
				ipNet = "ip6"
			}
			addrs, err = r.LookupNetIP(ctx, ipNet, host)
			if err != nil {
				return nil, &net.OpError{Op: "dial", Net: network, Err: err}
			}
		}
		var firstErr error
		for _, a := range addrs {
			if e := p.check(a); e != nil {
				e.Host = host
				if firstErr == nil {
					firstErr = &net.OpError{Op: "dial", Net: network, Err: e}
				}
				continue
			}
			c, err := dial(ctx, network, net.JoinHostPort(a.String(), port))
			if err == nil {
				return c, nil
			}
			var de *DeniedError
			if firstErr == nil || errors.As(firstErr, &de) {
				firstErr = err
			}
			if ctx.Err() != nil {
				break
			}
		}
		if firstErr == nil {
			firstErr = &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
		}
		return nil, firstErr
	}
}
