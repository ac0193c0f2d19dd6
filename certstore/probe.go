package certstore

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/directdl/directdl/internal/netguard"
)

// Defaults of ProbeOptions.
const (
	DefaultProbeMaxRedirects = 10
	DefaultProbeTimeout      = 10 * time.Second
)

// probeUserAgent is the User-Agent of the probe's and the AIA fetcher's
// requests, so a mirror's log shows what asked.
const probeUserAgent = "directdl-certstore-probe"

// probeBodyDrain is how much of a response body the probe reads before it
// closes the connection: the probe asks for one byte, and a server that
// ignores Range is cut off here.
const probeBodyDrain = 64 << 10

// ProbeOptions configures Probe. The zero value probes with the system
// roots (see SystemRoots), the zero Policy (no loopback, link-local or
// metadata addresses), 10 redirects, 10 s per hop, the first address that
// answers, and no AIA.
type ProbeOptions struct {
	// Roots are the certificates to verify every hop against, as the
	// downloader will. Nil: SystemRoots, an explicit pool, so Go's own
	// verifier runs on every platform (see SystemRoots for why).
	Roots *x509.CertPool
	// Policy decides which addresses may be connected to: every hop, every
	// address of a hop with AllAddresses, and every AIA fetch.
	Policy Policy
	// MaxRedirects bounds the redirects followed. Zero:
	// DefaultProbeMaxRedirects (10); negative: none.
	MaxRedirects int
	// Timeout bounds one hop: resolving, connecting and the TLS handshake
	// (to every address, with AllAddresses), the AIA fetches of its
	// diagnosis, and the response's headers. Zero: DefaultProbeTimeout
	// (10s).
	Timeout time.Duration
	// AllAddresses makes the probe connect to every address a hop's host
	// resolves to, with the same SNI, and record each one's chain and
	// verdict in Hop.Edges: the edges of a CDN behind one name can serve
	// different chains. The request itself goes to the first address that
	// answers, as without it.
	AllAddresses bool
	// Resolver looks up each hop's host. Nil: net.DefaultResolver.
	Resolver Resolver
	// AIA makes the diagnosis of a chain that does not verify try
	// Complete on it: that tells a server that omits its intermediate
	// from a chain to an untrusted root, and names the exact certificate
	// to trust. The fetches go through Policy.
	AIA bool
	// AIAOptions are the limits of those fetches (MaxDepth, MaxSize,
	// Timeout, MaxFetches, MaxRedirects; zero for the defaults). Its
	// Roots, Policy, Resolver and Now are not used: the probe's are.
	AIAOptions CompleteOptions
	// Now is the time chains are verified at. Nil: time.Now.
	Now func() time.Time
	// FollowUnverified sends the request to a hop whose TLS did not
	// verify. By default the probe stops there without sending it,
	// because the request's path and query may carry a signed URL's
	// secret, which must not reach a server whose identity is unproven.
	FollowUnverified bool
}

func (o ProbeOptions) withDefaults() (ProbeOptions, error) {
	if o.Timeout < 0 {
		return o, fmt.Errorf("%w: negative Timeout %s", ErrInvalidOptions, o.Timeout)
	}
	switch {
	case o.MaxRedirects == 0:
		o.MaxRedirects = DefaultProbeMaxRedirects
	case o.MaxRedirects < 0:
		o.MaxRedirects = -1
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultProbeTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := o.Policy.Validate(); err != nil {
		return o, err
	}
	a := o.AIAOptions
	a.Policy, a.Resolver, a.Now = o.Policy, o.Resolver, o.Now
	if _, err := a.withDefaults(); err != nil {
		return o, err
	}
	o.AIAOptions = a
	return o, nil
}

// ProbeReport is what Probe found, one Hop per URL of the redirect chain.
// Its JSON form is ddctl probe's output (keys hops, final_url, ok, ...).
type ProbeReport struct {
	// URL is the URL probed, redacted (netguard.Redact: no password, no
	// signed-URL secret).
	URL string `json:"url"`
	// Hops are the URLs visited, in order; the first is URL.
	Hops []Hop `json:"hops"`
	// FinalURL is the redacted URL of the last hop.
	FinalURL string `json:"final_url"`
	// OK is true when every hop answered and every TLS hop (and, with
	// AllAddresses, every address of it) verified, and the probe reached
	// the end of the redirect chain. A plain-HTTP hop counts as fine; an
	// HTTP error status does not make OK false, since it is no trust
	// problem.
	OK bool `json:"ok"`
	// Stopped says why the probe ended before the redirect chain did: a
	// hop whose TLS did not verify (its request was not sent), a refused
	// redirect (too many, HTTPS to HTTP, a scheme other than http and
	// https), a redirect loop, or a hop that could not be reached. Empty
	// when the chain was followed to its end.
	Stopped string `json:"stopped,omitempty"`
}

// Final returns the last hop, or nil when there is none.
func (r *ProbeReport) Final() *Hop {
	if r == nil || len(r.Hops) == 0 {
		return nil
	}
	return &r.Hops[len(r.Hops)-1]
}

// Hop is one URL of the redirect chain.
type Hop struct {
	// Index counts hops from 1, as the explanations do ("hop 2").
	Index int `json:"index"`
	// URL is the hop's URL, redacted.
	URL string `json:"url"`
	// Status is the HTTP status, or 0 when no response was read: the
	// request was not sent (see RequestSent) or failed.
	Status int `json:"status"`
	// Location is the absolute URL a redirect points to (relative
	// Locations resolved against URL), redacted; empty for other
	// responses.
	Location string `json:"location"`
	// Addresses are the addresses the host resolved to, in order.
	Addresses []string `json:"addresses"`
	// Address is the address the probe was connected to for TLS and the
	// request; empty if none answered.
	Address string `json:"address,omitempty"`
	// TLS is the TLS connection to Address: chain, verdict and diagnosis.
	// Nil for plain HTTP and when no connection was made.
	TLS *TLSResult `json:"tls"`
	// Edges holds, with AllAddresses, one result per address (Address's
	// included), in the order of Addresses.
	Edges []Edge `json:"edges,omitempty"`
	// RequestSent reports whether the GET request was sent. It is not
	// when the hop's TLS did not verify (without FollowUnverified) or no
	// connection was made.
	RequestSent bool `json:"request_sent"`
	// Error says why the hop could not be probed, if so: no address, a
	// refused address, a failed connection, handshake or request.
	Error string `json:"error,omitempty"`

	url *url.URL
}

// Verified reports whether the hop is fine: it answered, and for HTTPS
// its TLS (and every edge's, with AllAddresses) verified.
func (h *Hop) Verified() bool {
	if h.Error != "" {
		return false
	}
	if h.TLS != nil && !h.TLS.Verified {
		return false
	}
	for _, e := range h.Edges {
		if e.Error != "" || e.TLS == nil && h.TLS != nil || e.TLS != nil && !e.TLS.Verified {
			return false
		}
	}
	return true
}

// Edge is one address of a hop's host, probed with AllAddresses.
type Edge struct {
	// Address is the IP address.
	Address string `json:"address"`
	// TLS is the address's chain and verdict; nil if no handshake.
	TLS *TLSResult `json:"tls"`
	// Error says why the address could not be probed.
	Error string `json:"error,omitempty"`
}

// Probe follows rawURL's redirect chain one hop at a time and records, for
// every hop, its URL, status, Location, resolved addresses and, for HTTPS,
// the TLS version, SNI and the certificate chain exactly as the server sent
// it, verified against opts.Roots and diagnosed (see TLSResult and
// Problem). A verifying client that fails at the end of a redirect chain
// names only the last URL; the report names the hop and the certificate.
//
// Each hop is connected to through a netguard.Dialer, so the Policy applies
// to every address, and redirects obey netguard's rules (MaxRedirects, no
// HTTPS to HTTP downgrade, http and https only); a loop is detected and
// ends the probe. The chain is captured without verification and verified
// separately, with the explicit Roots, the certificates the server sent as
// intermediates, the hop's host as the name and Now as the time. Only when
// it verifies (or with FollowUnverified) is the request sent: a GET for
// bytes 0-0 (signed S3-style URLs are often valid for GET only), with the
// response's body read a little and the connection closed.
//
// The error is nil whatever the hops found: problems are in the report.
// It is non-nil for an unusable URL or option (wrapping ErrInvalidOptions,
// with a nil report), for missing system roots (ErrNoSystemRoots), and when
// ctx ends (the report so far is returned with it). Probe is safe for
// concurrent use.
func Probe(ctx context.Context, rawURL string, opts ProbeOptions) (*ProbeReport, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	u, err := parseProbeURL(rawURL)
	if err != nil {
		return nil, err
	}
	if o.Roots == nil {
		if o.Roots, err = SystemRoots(); err != nil {
			return nil, err
		}
	}
	o.AIAOptions.Roots = o.Roots
	g, err := newGuardedDialer(o.Policy, o.Resolver, o.Timeout)
	if err != nil {
		return nil, err
	}
	p := &prober{opts: o, dialer: g, aiaCache: map[string]*aiaOutcome{}}
	return p.run(ctx, u)
}

// parseProbeURL checks that raw is an absolute http or https URL with a
// host.
func parseProbeURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: URL %s does not parse", ErrInvalidOptions, netguard.RedactString(raw))
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return nil, fmt.Errorf("%w: URL %s: scheme %q is not http or https", ErrInvalidOptions, netguard.Redact(u), u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w: URL %s has no host", ErrInvalidOptions, netguard.Redact(u))
	}
	return u, nil
}

type prober struct {
	opts     ProbeOptions
	dialer   *guardedDialer
	aiaCache map[string]*aiaOutcome
}

func (p *prober) run(ctx context.Context, u *url.URL) (*ProbeReport, error) {
	rep := &ProbeReport{URL: netguard.Redact(u), Hops: []Hop{}}
	check := netguard.CheckRedirect(p.opts.MaxRedirects)
	var via []*http.Request
	seen := map[string]int{}
	for n := 1; ; n++ {
		seen[probeLoopKey(u)] = n
		h := p.hop(ctx, n, u)
		rep.Hops = append(rep.Hops, h)
		rep.FinalURL = h.URL
		if err := ctx.Err(); err != nil {
			rep.Stopped = fmt.Sprintf("interrupted at hop %d: %v", n, err)
			return rep, err
		}
		last := &rep.Hops[len(rep.Hops)-1]
		switch {
		case last.Error != "":
			rep.Stopped = fmt.Sprintf("hop %d (%s) could not be probed: %s", n, last.URL, last.Error)
			return rep, nil
		case !last.RequestSent:
			rep.Stopped = fmt.Sprintf("hop %d (%s) did not verify, so its request, whose URL may carry a signed URL's secret, was not sent and its redirects (if any) are unknown; fix its TLS, or probe with FollowUnverified (ddctl probe -follow-unverified) to follow it anyway", n, last.URL)
			return rep, nil
		case last.url == nil:
			rep.OK = probeAllVerified(rep.Hops)
			return rep, nil
		}
		next := last.url
		req := &http.Request{Method: http.MethodGet, URL: u}
		nreq := &http.Request{Method: http.MethodGet, URL: next}
		via = append(via, req)
		if err := check(nreq, via); err != nil {
			rep.Stopped = fmt.Sprintf("hop %d's redirect was not followed: %v", n, err)
			return rep, nil
		}
		if m, ok := seen[probeLoopKey(next)]; ok {
			rep.Stopped = fmt.Sprintf("redirect loop: hop %d (%s) redirects back to hop %d", n, last.URL, m)
			return rep, nil
		}
		u = next
	}
}

func probeAllVerified(hops []Hop) bool {
	for i := range hops {
		if !hops[i].Verified() {
			return false
		}
	}
	return true
}

// probeLoopKey is the URL as a request sees it: without the fragment.
func probeLoopKey(u *url.URL) string {
	c := *u
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}

// probeIsRedirect reports the statuses whose Location a client follows.
func probeIsRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// hop probes one URL. When the response redirects, h.url is the next URL.
func (p *prober) hop(ctx context.Context, n int, u *url.URL) Hop {
	h := Hop{Index: n, URL: netguard.Redact(u), Addresses: []string{}}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	host := u.Hostname()
	port := u.Port()
	tlsHop := strings.EqualFold(u.Scheme, "https")
	if port == "" {
		port = "80"
		if tlsHop {
			port = "443"
		}
	}
	addrs, err := p.dialer.resolve(ctx, host)
	if err != nil {
		h.Error = probeHopError(ctx, p.opts.Timeout, fmt.Errorf("resolving %s: %w", host, err))
		return h
	}
	for _, a := range addrs {
		h.Addresses = append(h.Addresses, a.String())
	}
	label := fmt.Sprintf("hop %d (%s)", n, h.URL)

	var conn net.Conn
	var errs []string
	for _, a := range addrs {
		c, err := p.dialer.dialAddr(ctx, host, a, port)
		var tc *tls.Conn
		if err == nil && tlsHop {
			tc, err = probeHandshake(ctx, c, host)
			if err != nil {
				c.Close()
			}
		}
		if err != nil {
			msg := probeHopError(ctx, p.opts.Timeout, err)
			errs = append(errs, fmt.Sprintf("%s: %s", a, msg))
			if p.opts.AllAddresses {
				h.Edges = append(h.Edges, Edge{Address: a.String(), Error: msg})
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if tlsHop {
			elabel := label
			if len(addrs) > 1 {
				elabel = fmt.Sprintf("hop %d (%s) at %s", n, h.URL, a)
			}
			res := p.diagnose(ctx, elabel, host, tc.ConnectionState())
			if p.opts.AllAddresses {
				h.Edges = append(h.Edges, Edge{Address: a.String(), TLS: res})
			}
			if conn == nil {
				conn, h.Address, h.TLS = tc, a.String(), res
			} else {
				tc.Close()
			}
		} else if conn == nil {
			conn, h.Address = c, a.String()
		} else {
			c.Close()
		}
		if !p.opts.AllAddresses || !tlsHop {
			break
		}
	}
	if conn == nil {
		h.Error = strings.Join(errs, "; ")
		if h.Error == "" {
			h.Error = "no address to connect to"
		}
		return h
	}
	defer conn.Close()
	if h.TLS != nil && !h.TLS.Verified && !p.opts.FollowUnverified {
		return h
	}
	resp, err := p.request(ctx, conn, u)
	h.RequestSent = true
	if err != nil {
		h.Error = probeHopError(ctx, p.opts.Timeout, err)
		return h
	}
	h.Status = resp.StatusCode
	if probeIsRedirect(resp.StatusCode) {
		if loc := resp.Header.Get("Location"); loc != "" {
			next, err := u.Parse(loc)
			if err != nil {
				h.Error = fmt.Sprintf("Location %s does not parse", netguard.RedactString(loc))
				return h
			}
			h.url = next
			h.Location = netguard.Redact(next)
		}
	}
	return h
}

// probeHopError words err for a report, naming the timeout when it was hit.
func probeHopError(ctx context.Context, timeout time.Duration, err error) string {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("timed out after %s (%v)", timeout, netguard.RedactError(err))
	}
	return netguard.RedactError(err).Error()
}

// probeHandshake runs a TLS handshake for capture only: the chain is verified
// afterwards, by diagnose, against explicit roots. HTTP/1.1 is offered as
// the only protocol because request speaks it on the same connection.
func probeHandshake(ctx context.Context, c net.Conn, host string) (*tls.Conn, error) {
	tc := tls.Client(c, &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: true, // capture only; diagnose verifies
		NextProtos:         []string{"http/1.1"},
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// request sends the probe's GET on conn and reads the response's headers
// and a little of its body.
func (p *prober) request(ctx context.Context, conn net.Conn, u *url.URL) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", "bytes=0-0")
	req.Header.Set("User-Agent", probeUserAgent)
	if u.User != nil {
		pw, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pw)
	}
	req.Close = true
	// The request is written and read on the raw connection, which does
	// not watch ctx: a deadline and a cancel hook stand in.
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("sending the request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, probeBodyDrain)
	resp.Body.Close()
	return resp, nil
}
