package download

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// Defaults of a Client made by New with no options.
const (
	// DefaultConnectTimeout bounds a connection's dial and TLS handshake
	// together (CloudStack's connect timeout).
	DefaultConnectTimeout = 5 * time.Second
	// DefaultSocketTimeout is how long a response may send no byte before
	// the connection counts as stalled and is retried (CloudStack's socket
	// timeout). It also bounds the wait for response headers.
	DefaultSocketTimeout = 5 * time.Second
	// DefaultConnectionRequestTimeout is how long a download waits for a
	// free connection slot to its host before it fails (CloudStack's
	// connection request timeout).
	DefaultConnectionRequestTimeout = 5 * time.Second
	// DefaultConnections is the number of parallel connections of one
	// download.
	DefaultConnections = 8
	// DefaultHostConnections caps the connections to one host across all
	// downloads of a Client (aria2's hard maximum per server).
	DefaultHostConnections = 16
	// DefaultRetries is how many times a failed request is retried before
	// the download fails; a request that made progress before failing
	// starts its count afresh.
	DefaultRetries = 5
	// DefaultMinBackoff and DefaultMaxBackoff bound the exponential
	// backoff between retries, which is jittered (full jitter).
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	// DefaultMaxRedirects is the redirect limit.
	DefaultMaxRedirects = 10
	// DefaultMinSplit is the smallest range the engine splits off for
	// another connection (aria2's -k); ranges under twice this are not
	// split.
	DefaultMinSplit = 1 << 20
	// DefaultProgressInterval is how often progress events are sent.
	DefaultProgressInterval = 500 * time.Millisecond
)

// Option configures a Client made by New.
type Option func(*config) error

type config struct {
	connectTimeout, socketTimeout, requestTimeout time.Duration
	connections, hostConnections                  int
	retries                                       int
	minBackoff, maxBackoff                        time.Duration
	maxRedirects                                  int
	minSplit                                      int64
	policy                                        Policy
	rootCAs                                       *x509.CertPool
	tlsConfig                                     *tls.Config
	trust                                         TrustSource
	transport                                     http.RoundTripper
	progress                                      func(Progress)
	progressInterval                              time.Duration
	logger                                        *slog.Logger
	resume                                        bool
	userAgent                                     string
	mirrorConns                                   int
	metalinkHTTP                                  bool
}

func defaultConfig() config {
	return config{
		connectTimeout:   DefaultConnectTimeout,
		socketTimeout:    DefaultSocketTimeout,
		requestTimeout:   DefaultConnectionRequestTimeout,
		connections:      DefaultConnections,
		hostConnections:  DefaultHostConnections,
		retries:          DefaultRetries,
		minBackoff:       DefaultMinBackoff,
		maxBackoff:       DefaultMaxBackoff,
		maxRedirects:     DefaultMaxRedirects,
		minSplit:         DefaultMinSplit,
		progressInterval: DefaultProgressInterval,
		resume:           true,
		userAgent:        "directdl",
		metalinkHTTP:     true,
	}
}

// ErrOption is the parent of every error New returns for a bad option.
var ErrOption = errors.New("download: invalid option")

func optErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrOption}, args...)...)
}

func positive(name string, d time.Duration) error {
	if d <= 0 {
		return optErr("%s must be positive, got %v", name, d)
	}
	return nil
}

// WithConnectTimeout bounds each connection's dial and TLS handshake
// together. Default DefaultConnectTimeout (5s).
func WithConnectTimeout(d time.Duration) Option {
	return func(c *config) error { c.connectTimeout = d; return positive("connect timeout", d) }
}

// WithSocketTimeout sets how long a response may go without sending a byte
// (including the wait for its headers) before it counts as stalled and is
// retried. It is not a deadline for the whole transfer. Default
// DefaultSocketTimeout (5s).
func WithSocketTimeout(d time.Duration) Option {
	return func(c *config) error { c.socketTimeout = d; return positive("socket timeout", d) }
}

// WithConnectionRequestTimeout sets how long a download waits for a free
// connection slot to its host (see WithHostConnections) before failing.
// Extra connections of a download that already has one are opened only when
// a slot is free within this time. Default DefaultConnectionRequestTimeout
// (5s).
func WithConnectionRequestTimeout(d time.Duration) Option {
	return func(c *config) error { c.requestTimeout = d; return positive("connection request timeout", d) }
}

// WithConnections sets the number of parallel connections per download,
// 1 to 64. A Request may ask for fewer or more. Default DefaultConnections
// (8).
func WithConnections(n int) Option {
	return func(c *config) error {
		if n < 1 || n > maxConnections {
			return optErr("connections must be 1 to %d, got %d", maxConnections, n)
		}
		c.connections = n
		return nil
	}
}

const maxConnections = 64

// WithHostConnections caps the connections to one host (host:port) across
// all the downloads of the Client, 1 to 1024. Default
// DefaultHostConnections (16).
func WithHostConnections(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1024 {
			return optErr("host connections must be 1 to 1024, got %d", n)
		}
		c.hostConnections = n
		return nil
	}
}

// WithRetries sets how many times a failed request is retried (0: never).
// Network errors, stalls, truncated bodies, 408, 429 and 5xx responses are
// retried; 4xx responses such as 403 and 404, policy refusals, TLS
// verification failures and checksum mismatches are not. A request that
// transferred data before failing starts its count afresh. Default
// DefaultRetries (5).
func WithRetries(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return optErr("retries must not be negative, got %d", n)
		}
		c.retries = n
		return nil
	}
}

// WithBackoff sets the bounds of the exponential backoff between retries:
// the n-th retry waits a random time up to min·2ⁿ⁻¹, at most max. A
// Retry-After header, up to max, is honoured instead. Defaults
// DefaultMinBackoff (500ms) and DefaultMaxBackoff (30s).
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) error {
		if min <= 0 || max < min {
			return optErr("backoff needs 0 < min <= max, got %v and %v", min, max)
		}
		c.minBackoff, c.maxBackoff = min, max
		return nil
	}
}

// WithMaxRedirects sets the redirect limit (0: follow none). Default
// DefaultMaxRedirects (10).
func WithMaxRedirects(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return optErr("max redirects must not be negative, got %d", n)
		}
		c.maxRedirects = n
		return nil
	}
}

// WithMinSplit sets the smallest range split off for another connection.
// Default DefaultMinSplit (1 MiB); at least 16 KiB.
func WithMinSplit(n int64) Option {
	return func(c *config) error {
		if n < 16<<10 {
			return optErr("min split must be at least 16 KiB, got %d", n)
		}
		c.minSplit = n
		return nil
	}
}

// Policy decides which addresses a Client may connect to. It is checked when
// connecting, on the resolved address, for every connection including each
// redirect hop, so a name that resolves elsewhere later (DNS rebinding) or a
// redirect to an internal address is refused.
//
// The zero Policy refuses loopback, link-local (with the cloud metadata
// address 169.254.169.254), unspecified, multicast, broadcast and reserved
// addresses and allows everything else. The first matching rule decides:
// a Deny prefix refuses; an Allow prefix allows, even a special address;
// with OnlyAllowed everything else is refused; then the special ranges are
// refused.
type Policy struct {
	Allow       []netip.Prefix
	Deny        []netip.Prefix
	OnlyAllowed bool
}

// WithPolicy sets the URL policy. Default: the zero Policy.
func WithPolicy(p Policy) Option {
	return func(c *config) error {
		c.policy = p
		return netPolicy(p).Validate()
	}
}

// TrustSource supplies the certificate authorities to trust, in addition to
// the system's, for each new TLS connection. A trust store that changes
// (certstore's, say) takes effect on the next connection without a new
// Client. RootCAs must be safe for concurrent use; nil means none extra.
type TrustSource interface {
	RootCAs() *x509.CertPool
}

// WithRootCAs trusts the certificates in pool in addition to the system
// roots. Hostname verification stays on.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(c *config) error {
		if pool == nil {
			return optErr("nil root CA pool")
		}
		c.rootCAs = pool
		return nil
	}
}

// WithTrustSource makes the Client ask src for extra roots on every new TLS
// connection (see TrustSource).
func WithTrustSource(src TrustSource) Option {
	return func(c *config) error {
		if src == nil {
			return optErr("nil trust source")
		}
		c.trust = src
		return nil
	}
}

// WithTLSConfig uses cfg (cloned for each connection, with ServerName set to
// the URL's host) for TLS instead of the system roots: its RootCAs, if set,
// are then the only roots trusted, and its client certificates are offered.
// WithRootCAs and WithTrustSource still add to what it trusts. A cfg with
// InsecureSkipVerify is refused: verification is never off.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return optErr("nil TLS config")
		}
		if cfg.InsecureSkipVerify {
			return optErr("TLS config has InsecureSkipVerify; verification cannot be turned off")
		}
		c.tlsConfig = cfg.Clone()
		return nil
	}
}

// WithTransport makes the Client send its requests through rt, for callers
// who need a proxy or instrumentation. rt should not ask for compressed
// responses. The URL policy then applies only to redirect targets' schemes
// and the redirect limit: addresses are checked only by the Client's own
// transport, so a custom one must do its own dial-time checks. Trust
// options do not apply to rt either.
func WithTransport(rt http.RoundTripper) Option {
	return func(c *config) error {
		if rt == nil {
			return optErr("nil transport")
		}
		c.transport = rt
		return nil
	}
}

// WithProgress makes every download send Progress events to sink, at most
// every interval (zero: DefaultProgressInterval, 500ms), and a last one with
// Final set (and Err, when the download failed). sink is called from the
// download's goroutines, one call at a time per download but concurrently
// for downloads that run at once (Batch, or Gets from several goroutines),
// so it must be safe for concurrent use; it must return quickly. Default:
// no events.
func WithProgress(sink func(Progress), interval time.Duration) Option {
	return func(c *config) error {
		if sink == nil {
			return optErr("nil progress sink")
		}
		if interval < 0 {
			return optErr("progress interval must not be negative, got %v", interval)
		}
		c.progress = sink
		if interval > 0 {
			c.progressInterval = interval
		}
		return nil
	}
}

// WithLogger logs through l: each download at info level, retries and
// fallbacks at warn level, requests at debug level. URLs are logged with
// passwords and signatures redacted. Default: no logging.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return optErr("nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithResume sets whether a download continues from what an earlier,
// interrupted one left beside its destination (default true). When false,
// leftovers are removed and the download starts from zero.
func WithResume(on bool) Option {
	return func(c *config) error { c.resume = on; return nil }
}

// WithUserAgent sets the User-Agent header (default "directdl").
func WithUserAgent(ua string) Option {
	return func(c *config) error { c.userAgent = ua; return nil }
}

// WithMirrorConnections caps the connections one mirror of a Metalink
// download gets at once, 1 to 64. Default: the download's connections
// divided evenly among the mirrors still in use, rounded up, so that every
// mirror works in parallel and the better ones (by priority, then by
// measured rate) get the larger share; a mirror that fails or is dropped
// leaves its share to the others. A mirror named in a Link header always
// gets one connection (RFC 6249).
func WithMirrorConnections(n int) Option {
	return func(c *config) error {
		if n < 1 || n > maxConnections {
			return optErr("mirror connections must be 1 to %d, got %d", maxConnections, n)
		}
		c.mirrorConns = n
		return nil
	}
}

// WithMetalinkHTTP sets whether a plain HTTP download uses what its first
// response offers by RFC 6249 (default true): a Digest (or Repr-Digest)
// header becomes the checksum when the Request has none, and mirrors in
// Link rel=duplicate headers join the download, one connection each, when
// the download has a checksum to vouch for their bytes.
func WithMetalinkHTTP(on bool) Option {
	return func(c *config) error { c.metalinkHTTP = on; return nil }
}
