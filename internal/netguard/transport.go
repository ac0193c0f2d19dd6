package netguard

import (
	"crypto/tls"
	"net/http"
	"time"
)

// DefaultTLSHandshakeTimeout is the TLS handshake timeout ConfigureTransport
// sets when the transport has none.
const DefaultTLSHandshakeTimeout = 10 * time.Second

// ConfigureTransport makes t dial only through d and sets it up for
// downloads:
//
//   - DialContext is d.DialContext (it takes priority over the deprecated
//     Dial), and DialTLSContext and DialTLS are cleared, since they would
//     bypass it for https;
//   - Proxy is nil: through a proxy the dialer would check the proxy's
//     address, not the server's. To use a proxy, set t.Proxy afterwards and
//     accept that the proxy, not this package, decides what it connects
//     to, or dial the proxy through WrapDialer;
//   - TLSHandshakeTimeout is DefaultTLSHandshakeTimeout unless already set;
//   - DisableCompression is true, so bytes arrive as served and ranges and
//     checksums apply to them;
//   - HTTP/2 is off (ForceAttemptHTTP2 false and an empty, non-nil
//     TLSNextProto), so parallel ranges use separate HTTP/1.1 connections.
//
// TLSClientConfig is left alone: trust is the caller's. Note that a
// RoundTripper of the caller's own that does not use d bypasses every
// dial-time check.
func ConfigureTransport(t *http.Transport, d *Dialer) {
	if d == nil {
		d = &Dialer{}
	}
	t.DialContext = d.DialContext
	t.DialTLSContext = nil
	//lint:ignore SA1019 a leftover DialTLS would bypass the dialer for https.
	t.DialTLS = nil
	t.Proxy = nil
	if t.TLSHandshakeTimeout <= 0 {
		t.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	t.DisableCompression = true
	t.ForceAttemptHTTP2 = false
	t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
}

// NewTransport returns a new *http.Transport configured by
// ConfigureTransport with d and a clone of tlsConfig (nil for Go's
// defaults: system roots, full verification), with net/http's default idle
// connection limits.
func NewTransport(d *Dialer, tlsConfig *tls.Config) *http.Transport {
	t := &http.Transport{
		TLSClientConfig:       tlsConfig.Clone(),
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	ConfigureTransport(t, d)
	return t
}
