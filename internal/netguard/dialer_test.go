package netguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// get fetches u with c and returns the body or the error.
func get(t *testing.T, c *http.Client, u string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatalf("NewRequest(%s): %v", u, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// wantDenied fails the test unless err is a *DeniedError for addr (and
// host, if not empty) reached through net/http's *url.Error.
func wantDenied(t *testing.T, err error, addr, host string) *DeniedError {
	t.Helper()
	var de *DeniedError
	if !errors.As(err, &de) {
		t.Fatalf("error = %v, want a *DeniedError", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("error %v is not a *url.Error", err)
	}
	if !errors.Is(err, ErrDenied) {
		t.Errorf("errors.Is(%v, ErrDenied) = false", err)
	}
	if got := de.Addr.String(); got != addr {
		t.Errorf("DeniedError.Addr = %s, want %s", got, addr)
	}
	if host != "" && de.Host != host {
		t.Errorf("DeniedError.Host = %q, want %q", de.Host, host)
	}
	return de
}

func TestDialLoopbackServer(t *testing.T) {
	t.Parallel()
	srv, accepted := loopbackServer(t, "127.0.0.1", nil, false)

	_, err := get(t, guardedClient(t, Policy{}, nil), srv.URL)
	de := wantDenied(t, err, "127.0.0.1", "127.0.0.1")
	if de.Reason != "loopback" {
		t.Errorf("Reason = %q, want loopback", de.Reason)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("server accepted %d connections under the default policy, want 0", n)
	}

	body, err := get(t, guardedClient(t, allowLoopback, nil), srv.URL)
	if err != nil || body != "ok" {
		t.Fatalf("with 127.0.0.0/8 allowed: body %q, err %v; want ok, nil", body, err)
	}
}

func TestDialLoopbackV6(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	d := &Dialer{}
	_, err = d.DialContext(t.Context(), "tcp", l.Addr().String())
	var de *DeniedError
	if !errors.As(err, &de) || de.Addr != netip.IPv6Loopback() {
		t.Fatalf("dial %s: %v, want a *DeniedError for ::1", l.Addr(), err)
	}
	d.Policy = allowLoopback
	c, err := d.DialContext(t.Context(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("dial %s with ::1 allowed: %v", l.Addr(), err)
	}
	c.Close()
}

// TestDialHostName checks that a name is checked by what it resolves to:
// "localhost" comes from /etc/hosts, not from a policy on names.
func TestDialHostName(t *testing.T) {
	t.Parallel()
	srv, accepted := loopbackServer(t, "127.0.0.1", nil, false)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	u := "http://localhost:" + port + "/"

	_, err := get(t, guardedClient(t, Policy{}, nil), u)
	var de *DeniedError
	if !errors.As(err, &de) {
		t.Fatalf("GET %s: %v, want a *DeniedError", u, err)
	}
	if !de.Addr.IsLoopback() || de.Host != "localhost" {
		t.Errorf("DeniedError = {Addr %s, Host %q}, want a loopback address for localhost", de.Addr, de.Host)
	}
	if !strings.Contains(err.Error(), "(for localhost) is loopback") {
		t.Errorf("message %q does not name the host and the rule", err)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("server accepted %d connections, want 0", n)
	}
	if body, err := get(t, guardedClient(t, allowLoopback, nil), u); err != nil || body != "ok" {
		t.Fatalf("with loopback allowed: body %q, err %v", body, err)
	}
}

// TestDNSRebinding resolves a name to a public address for a check made
// before the request, then to 127.0.0.1 when the request dials: the dial
// is refused because the check runs on the address actually connected to.
func TestDNSRebinding(t *testing.T) {
	t.Parallel()
	srv, accepted := loopbackServer(t, "127.0.0.1", nil, false)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	dns := &fakeDNS{answer: func(qtype uint16, n int) []netip.Addr {
		if qtype != 1 {
			return nil
		}
		if n == 0 {
			return []netip.Addr{netip.MustParseAddr("192.0.2.1")} // never dialed
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}}
	r := dns.resolver()
	const host = "rebind.test."

	// The check a naive client would make before downloading.
	addrs, err := r.LookupNetIP(t.Context(), "ip4", host)
	if err != nil || len(addrs) != 1 {
		t.Fatalf("first lookup: %v, %v", addrs, err)
	}
	if err := (Policy{}).CheckAddr(addrs[0]); err != nil {
		t.Fatalf("first answer %s refused: %v", addrs[0], err)
	}

	_, err = get(t, guardedClient(t, Policy{}, r), "http://"+net.JoinHostPort(host, port)+"/")
	wantDenied(t, err, "127.0.0.1", host)
	if n := accepted.Load(); n != 0 {
		t.Errorf("server accepted %d connections, want 0", n)
	}
	if n := dns.count(1); n < 2 {
		t.Errorf("A queries = %d, want the dial to resolve again", n)
	}
}

// TestDialEveryAddress gives a name two addresses with a server on each:
// the denied one is skipped without a connection, the other is used, and
// when both are denied the dial fails.
func TestDialEveryAddress(t *testing.T) {
	t.Parallel()
	srv1, accepted1 := loopbackServer(t, "127.0.0.1", nil, false)
	_, port, _ := net.SplitHostPort(srv1.Listener.Addr().String())
	l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", port))
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2:%s: %v", port, err)
	}
	var accepted2 sync.WaitGroup
	got2 := make(chan struct{}, 16)
	accepted2.Add(1)
	go func() {
		defer accepted2.Done()
		for {
			c, err := l2.Accept()
			if err != nil {
				return
			}
			got2 <- struct{}{}
			c.Close()
		}
	}()
	t.Cleanup(func() { l2.Close(); accepted2.Wait() })

	r := fixedDNS("127.0.0.2", "127.0.0.1").resolver()
	u := "http://multi.test.:" + port + "/"
	p := Policy{Allow: Prefixes{netip.MustParsePrefix("127.0.0.0/8")}, Deny: Prefixes{netip.MustParsePrefix("127.0.0.2/32")}}
	if body, err := get(t, guardedClient(t, p, r), u); err != nil || body != "ok" {
		t.Fatalf("GET %s: body %q, err %v; want ok from 127.0.0.1", u, body, err)
	}
	if accepted1.Load() != 1 {
		t.Errorf("127.0.0.1 accepted %d connections, want 1", accepted1.Load())
	}

	p.Deny = append(p.Deny, netip.MustParsePrefix("127.0.0.1/32"))
	_, err = get(t, guardedClient(t, p, r), u)
	de := wantDenied(t, err, "127.0.0.2", "multi.test.")
	if de.Reason != "in deny CIDR" {
		t.Errorf("Reason = %q, want in deny CIDR", de.Reason)
	}
	if accepted1.Load() != 1 {
		t.Errorf("127.0.0.1 accepted %d connections, want still 1", accepted1.Load())
	}
	l2.Close()
	accepted2.Wait()
	if n := len(got2); n != 0 {
		t.Errorf("127.0.0.2 accepted %d connections, want 0", n)
	}
}

func TestDialerBaseControl(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var mu sync.Mutex
	var seen []string
	base := &net.Dialer{Control: func(network, address string, _ syscall.RawConn) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, address)
		return nil
	}}
	d := &Dialer{Base: base}
	if _, err := d.DialContext(t.Context(), "tcp", l.Addr().String()); !errors.Is(err, ErrDenied) {
		t.Fatalf("dial with default policy: %v, want ErrDenied", err)
	}
	d.Policy = allowLoopback
	c, err := d.DialContext(t.Context(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("dial with loopback allowed: %v", err)
	}
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != l.Addr().String() {
		t.Errorf("Base.Control saw %q, want only the allowed dial to %s", seen, l.Addr())
	}
	if base.ControlContext != nil || base.Timeout != 0 {
		t.Error("Base was modified")
	}
}

func TestDialUnixRefused(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/s"
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Skipf("no unix sockets: %v", err)
	}
	defer l.Close()
	d := &Dialer{Policy: allowLoopback}
	if c, err := d.DialContext(t.Context(), "unix", path); !errors.Is(err, ErrDenied) {
		if c != nil {
			c.Close()
		}
		t.Errorf("dial unix %s: %v, want ErrDenied", path, err)
	}
}

func TestDialerTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    Dialer
		want time.Duration
	}{
		{"zero", Dialer{}, DefaultConnectTimeout},
		{"base", Dialer{Base: &net.Dialer{Timeout: 5 * time.Second}}, 5 * time.Second},
		{"own", Dialer{Timeout: time.Second, Base: &net.Dialer{Timeout: 5 * time.Second}}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.d.netDialer("h").Timeout; got != tt.want {
				t.Errorf("timeout = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDialerInvalidPolicy(t *testing.T) {
	t.Parallel()
	bad := Policy{OnlyAllowed: true}
	if _, err := NewDialer(bad, nil); !errors.Is(err, ErrPolicy) {
		t.Errorf("NewDialer: %v, want ErrPolicy", err)
	}
	d := &Dialer{Policy: bad}
	if _, err := d.DialContext(t.Context(), "tcp", "192.0.2.1:80"); !errors.Is(err, ErrPolicy) {
		t.Errorf("DialContext: %v, want ErrPolicy", err)
	}
}

func TestWrapDialer(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var dialed []string
	inner := func(ctx context.Context, network, address string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, address)
		mu.Unlock()
		c1, c2 := net.Pipe()
		c2.Close()
		return c1, nil
	}
	reset := func() []string {
		mu.Lock()
		defer mu.Unlock()
		d := dialed
		dialed = nil
		return d
	}
	r := fixedDNS("127.0.0.1", "192.0.2.7").resolver()

	// Default policy: the loopback answer is skipped, the inner dial gets
	// the checked literal, not the name.
	dial := WrapDialer(Policy{}, r, inner)
	c, err := dial(t.Context(), "tcp4", "proxied.test.:8080")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
	if got := reset(); len(got) != 1 || got[0] != "192.0.2.7:8080" {
		t.Errorf("inner dialed %q, want [192.0.2.7:8080]", got)
	}

	// Everything denied: the inner dial is never called.
	dial = WrapDialer(Policy{Deny: Prefixes{netip.MustParsePrefix("192.0.2.0/24")}}, r, inner)
	_, err = dial(t.Context(), "tcp4", "proxied.test.:8080")
	var de *DeniedError
	if !errors.As(err, &de) || de.Host != "proxied.test." {
		t.Errorf("dial: %v, want a *DeniedError for proxied.test.", err)
	}
	if got := reset(); len(got) != 0 {
		t.Errorf("inner dialed %q, want nothing", got)
	}

	// A literal is checked as is.
	if _, err := dial(t.Context(), "tcp", "[::ffff:169.254.169.254]:80"); !errors.Is(err, ErrDenied) {
		t.Errorf("dial metadata literal: %v, want ErrDenied", err)
	}
	if got := reset(); len(got) != 0 {
		t.Errorf("inner dialed %q, want nothing", got)
	}
}

func TestConfigureTransport(t *testing.T) {
	t.Parallel()
	tr := &http.Transport{
		Proxy:              http.ProxyFromEnvironment,
		DialTLSContext:     func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("bypass") },
		ForceAttemptHTTP2:  true,
		DisableCompression: false,
	}
	ConfigureTransport(tr, nil)
	switch {
	case tr.Proxy != nil:
		t.Error("Proxy not cleared")
	case tr.DialTLSContext != nil:
		t.Error("DialTLSContext not cleared")
	case tr.DialContext == nil:
		t.Error("DialContext not set")
	case !tr.DisableCompression:
		t.Error("DisableCompression = false")
	case tr.ForceAttemptHTTP2 || tr.TLSNextProto == nil:
		t.Error("HTTP/2 still enabled")
	case tr.TLSHandshakeTimeout != DefaultTLSHandshakeTimeout:
		t.Errorf("TLSHandshakeTimeout = %v, want %v", tr.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	}
	if _, err := tr.DialContext(t.Context(), "tcp", "127.0.0.1:1"); !errors.Is(err, ErrDenied) {
		t.Errorf("configured DialContext to 127.0.0.1: %v, want ErrDenied", err)
	}
}
