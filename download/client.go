package download

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/directdl/directdl/download/metalink"
	"github.com/directdl/directdl/download/nfs"
	"github.com/directdl/directdl/internal/netguard"
)

// Client downloads files. Make one with New and share it: it keeps
// connections alive between downloads, caps connections per host across
// them, and joins identical downloads that run at the same time. It is safe
// for concurrent use.
type Client struct {
	cfg  config
	http *http.Client
	tr   *http.Transport // nil with WithTransport
	// dialer connects to NFS servers, with the policy.
	dialer *netguard.Dialer

	mu       sync.Mutex
	hosts    map[string]*hostSlots
	inflight map[string]*call // by absolute destination path
}

// call is one download in flight, shared by every Get for the same URL and
// destination.
type call struct {
	url     string
	key     string
	sum     Checksum
	done    chan struct{}
	res     *Result
	err     error
	waiters int
	cancel  context.CancelFunc
	// cancelled: every waiter has gone; no new one may join.
	cancelled bool
}

func netPolicy(p Policy) netguard.Policy {
	return netguard.Policy{Allow: p.Allow, Deny: p.Deny, OnlyAllowed: p.OnlyAllowed}
}

// New returns a Client with the given options; with none it uses the
// defaults documented on each Option: 8 connections per download, 16 per
// host, 5s connect, socket and connection request timeouts, 5 retries,
// system roots only, and the default Policy, which refuses loopback,
// link-local and metadata addresses. Errors match ErrOption.
func New(opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			if !errors.Is(err, ErrOption) {
				err = fmt.Errorf("%w: %w", ErrOption, err)
			}
			return nil, err
		}
	}
	c := &Client{
		cfg:      cfg,
		hosts:    map[string]*hostSlots{},
		inflight: map[string]*call{},
	}
	d, err := netguard.NewDialer(netPolicy(cfg.policy), &net.Dialer{KeepAlive: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOption, err)
	}
	d.Timeout = cfg.connectTimeout
	c.dialer = d
	rt := cfg.transport
	if rt == nil {
		tr := netguard.NewTransport(d, nil)
		tr.MaxIdleConnsPerHost = cfg.hostConnections
		tr.ResponseHeaderTimeout = cfg.socketTimeout
		tr.DialTLSContext = c.dialTLS(d)
		c.tr = tr
		rt = tr
	}
	c.http = &http.Client{Transport: rt, CheckRedirect: netguard.CheckRedirect(redirectLimit(cfg.maxRedirects))}
	return c, nil
}

func redirectLimit(n int) int {
	if n == 0 {
		return -1 // netguard: negative follows none, zero is its default
	}
	return n
}

// dialTLS connects through the policy-checked dialer and runs the TLS
// handshake, both within the connect timeout, with the roots trusted at
// that moment.
func (c *Client) dialTLS(d *netguard.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.connectTimeout)
		defer cancel()
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(raw, c.tlsConfigFor(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
				err = &timeoutError{what: "TLS handshake", d: c.cfg.connectTimeout}
			}
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		return tc, nil
	}
}

// timeoutError is a connection step that took longer than its timeout. It
// is a net.Error whose Timeout is true.
type timeoutError struct {
	what string
	d    time.Duration
}

func (e *timeoutError) Error() string   { return fmt.Sprintf("%s timed out after %v", e.what, e.d) }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// tlsConfigFor builds the configuration of one connection. Verification is
// done in VerifyConnection against each trusted pool in turn (the system's
// or the caller's base roots, the WithRootCAs pool, the trust source's
// pool), because an x509.CertPool cannot be merged with another.
func (c *Client) tlsConfigFor(host string) *tls.Config {
	var cfg *tls.Config
	if c.cfg.tlsConfig != nil {
		cfg = c.cfg.tlsConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg.ServerName = host
	cfg.NextProtos = []string{"http/1.1"}
	pools := []*x509.CertPool{cfg.RootCAs} // nil: the system roots
	if c.cfg.rootCAs != nil {
		pools = append(pools, c.cfg.rootCAs)
	}
	if c.cfg.trust != nil {
		if p := c.cfg.trust.RootCAs(); p != nil {
			pools = append(pools, p)
		}
	}
	if len(pools) == 1 {
		return cfg
	}
	// Verification is not skipped: VerifyConnection below does it in full,
	// with the URL's host (a name or an IP address: cs.ServerName is empty
	// for an IP, since no SNI is sent), against every pool, before any hook
	// of the caller's own.
	userVerify := cfg.VerifyConnection
	now := cfg.Time
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: server sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, ic := range cs.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		opts := x509.VerifyOptions{DNSName: host, Intermediates: inter}
		if now != nil {
			opts.CurrentTime = now()
		}
		var first error
		for _, p := range pools {
			opts.Roots = p
			chains, err := cs.PeerCertificates[0].Verify(opts)
			if err == nil {
				if userVerify != nil {
					cs.VerifiedChains = chains
					return userVerify(cs)
				}
				return nil
			}
			if first == nil {
				first = err
			}
		}
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: first}
	}
	return cfg
}

// CloseIdleConnections closes the connections kept alive for later
// downloads.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// hostSlots are the connection slots of one host. firstWaiting counts the
// downloads waiting for their first connection: extra connections of other
// downloads give their slots back between chunks while any wait, so a new
// download is not starved by running ones.
type hostSlots struct {
	sem          *semaphore.Weighted
	firstWaiting atomic.Int32
}

// slots returns the connection slots of u's host.
func (c *Client) slots(u *url.URL) (*hostSlots, string) {
	key := hostKey(u)
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.hosts[key]
	if !ok {
		s = &hostSlots{sem: semaphore.NewWeighted(int64(c.cfg.hostConnections))}
		c.hosts[key] = s
	}
	return s, key
}

// hostKey is "host:port" with the scheme's default port filled in, so that
// https://h/ and https://h:443/ share their slots.
func hostKey(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		case "nfs":
			port = "2049"
		default:
			port = "80"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// Get downloads req.URL to req.Path and returns what it did. On success the
// file at req.Path is complete and, when a checksum was given, verified; on
// failure nothing was written there (a file already at req.Path is left as
// it was), and what was fetched stays beside it for the next Get to
// resume, unless the content itself was wrong (a checksum or size
// mismatch, a remote that kept changing, an unusable response).
//
// A second Get for the same URL and path while the first runs waits for
// the first and gets its result; one for the same path with another URL or
// another checksum fails with ErrBusy. Get returns when ctx is done; the shared
// download stops once every caller has gone.
func (c *Client) Get(ctx context.Context, req Request) (*Result, error) {
	start := time.Now()
	j, err := c.newJob(req, nil)
	if err != nil {
		return nil, err
	}
	return c.get(ctx, j, start)
}

// get runs j, or joins the same download already running.
// Fetch is Get for callers that declare a small interface of their own
// instead of importing this package, such as migrate.Fetcher: it downloads
// url to path, verified against checksum (any form ParseChecksum reads),
// with Get's guarantees, and reports only the error.
func (c *Client) Fetch(ctx context.Context, url, path, checksum string) error {
	_, err := c.Get(ctx, Request{URL: url, Path: path, Checksum: checksum})
	return err
}

func (c *Client) get(ctx context.Context, j *job, start time.Time) (*Result, error) {
	c.mu.Lock()
	cl, ok := c.inflight[j.path]
	for ok && cl.cancelled {
		// Every caller of that transfer has gone and it is winding
		// down: wait for it, then start afresh (it leaves what it
		// fetched to resume from).
		c.mu.Unlock()
		select {
		case <-cl.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("download: %s: %w", j.safeURL, context.Cause(ctx))
		}
		c.mu.Lock()
		cl, ok = c.inflight[j.path]
	}
	if ok && (cl.url != j.rawURL || cl.key != j.key) {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %s is being downloaded from %s (another source)", ErrBusy, j.path, netguard.RedactString(cl.url))
	}
	if ok && cl.sum != j.sum {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %s is being downloaded with checksum %s, not %s", ErrBusy, j.path, cl.sum, j.sum)
	}
	if !ok {
		dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cl = &call{url: j.rawURL, key: j.key, sum: j.sum, done: make(chan struct{}), cancel: cancel}
		c.inflight[j.path] = cl
		go func() {
			var res *Result
			var err error
			if j.fetch != nil {
				res, err = c.runFetch(dctx, j)
			} else {
				res, err = c.run(dctx, j)
			}
			cancel()
			c.mu.Lock()
			delete(c.inflight, j.path)
			c.mu.Unlock()
			cl.res, cl.err = res, err
			close(cl.done)
		}()
	}
	cl.waiters++
	c.mu.Unlock()

	select {
	case <-cl.done:
		if cl.err != nil {
			return nil, cl.err
		}
		r := *cl.res
		r.Redirects = append([]string(nil), r.Redirects...)
		r.Sources = append([]MirrorReport(nil), r.Sources...)
		r.Duration = time.Since(start)
		return &r, nil
	case <-ctx.Done():
		c.mu.Lock()
		cl.waiters--
		last := cl.waiters == 0
		if last {
			cl.cancelled = true
			cl.cancel()
		}
		c.mu.Unlock()
		if last {
			<-cl.done // no goroutine outlives the last call waiting for it
		}
		return nil, fmt.Errorf("download: %s: %w", j.safeURL, context.Cause(ctx))
	}
}

// Outcome is the result of one Request of a Batch: a Result or an error.
type Outcome struct {
	Result *Result
	Err    error
}

// Batch downloads reqs, at most parallel at a time (zero or less: 2),
// and returns one Outcome per request, in the order of reqs. A failed
// download does not stop the others; ctx does.
func (c *Client) Batch(ctx context.Context, reqs []Request, parallel int) []Outcome {
	if parallel <= 0 {
		parallel = 2
	}
	out := make([]Outcome, len(reqs))
	var g errgroup.Group
	g.SetLimit(parallel)
	for i, r := range reqs {
		g.Go(func() error {
			out[i].Result, out[i].Err = c.Get(ctx, r)
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// job is one download's fixed facts, checked before anything is touched.
type job struct {
	rawURL  string
	url     *url.URL
	safeURL string
	path    string // absolute
	sum     Checksum
	hasSum  bool
	size    int64
	conns   int
	// fetch, when set, writes the file instead of the engine (GetWith);
	// url is then nil and rawURL opaque.
	fetch FetchFunc
	// metalink is the file a Request's Metalink describes; metalinkURL
	// says url names a Metalink document, and metalinkFile which of its
	// files to get. nfs says url is an nfs:// URL.
	metalink     *metalink.File
	metalinkURL  bool
	metalinkFile string
	nfs          bool
	// key tells two jobs for the same path apart beyond their URL and
	// checksum: the Metalink file, the file of a Metalink URL, a fetch.
	key string
}

// newJob checks req. With fetch, the URL is only a name: any scheme, and
// no checksum is taken from it.
func (c *Client) newJob(req Request, fetch FetchFunc) (*job, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrRequest}, args...)...)
	}
	var j *job
	if fetch != nil && (req.Metalink != nil || req.AsMetalink || req.MetalinkFile != "") {
		return nil, bad("GetWith takes no Metalink: the fetch function is the source")
	}
	switch {
	case req.Metalink != nil:
		f := *req.Metalink
		f.URLs = append([]metalink.URL(nil), f.URLs...)
		for i := range f.URLs {
			if f.URLs[i].Priority == 0 {
				f.URLs[i].Priority = metalink.DefaultPriority // not given
			}
		}
		if err := (&metalink.Metalink{Files: []metalink.File{f}}).Validate(metalink.RequireSize()); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRequest, err)
		}
		safe := netguard.RedactString(req.URL)
		if req.URL == "" {
			safe = "metalink:" + f.Name
		}
		j = &job{rawURL: req.URL, safeURL: safe, size: req.Size, conns: c.cfg.connections, metalink: &f}
		j.key = "metalink " + metalinkKey(&f)
	case fetch != nil:
		if req.URL == "" {
			return nil, bad("no URL")
		}
		j = &job{rawURL: req.URL, safeURL: netguard.RedactString(req.URL), size: req.Size, conns: 1, fetch: fetch, key: "fetch"}
	default:
		u, err := url.Parse(req.URL)
		if err != nil {
			return nil, bad("URL %s: %v", netguard.RedactString(req.URL), netguard.RedactError(err))
		}
		safe := netguard.Redact(u)
		switch u.Scheme {
		case "http", "https":
		case "nfs":
			if _, err := nfs.ParseURL(req.URL); err != nil {
				return nil, bad("URL %s: %v", safe, netguard.RedactError(err))
			}
		default:
			return nil, bad("URL %s: scheme %q is not http, https or nfs", safe, u.Scheme)
		}
		if u.Host == "" {
			return nil, bad("URL %s has no host", safe)
		}
		j = &job{rawURL: req.URL, url: u, safeURL: safe, size: req.Size, conns: c.cfg.connections, nfs: u.Scheme == "nfs"}
		j.metalinkURL = !j.nfs && (req.AsMetalink || IsMetalinkURL(u))
		j.metalinkFile = req.MetalinkFile
		if j.metalinkURL {
			j.key = "metalink file " + strconv.Quote(j.metalinkFile)
		}
	}
	if req.MetalinkFile != "" && !j.metalinkURL {
		return nil, bad("MetalinkFile %q is for a URL that names a Metalink document", req.MetalinkFile)
	}
	if req.Connections > 0 {
		j.conns = min(req.Connections, maxConnections)
	}
	if req.Size < 0 {
		return nil, bad("negative size %d", req.Size)
	}
	switch {
	case !req.Sum.IsZero():
		j.sum, j.hasSum = req.Sum, true
		if req.Checksum != "" {
			s, err := ParseChecksum(req.Checksum)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrRequest, err)
			}
			if s != req.Sum {
				return nil, bad("Checksum %q and Sum %s differ", req.Checksum, req.Sum)
			}
		}
	case req.Checksum != "":
		s, err := ParseChecksum(req.Checksum)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRequest, err)
		}
		j.sum, j.hasSum = s, true
	case fetch != nil || j.url == nil || j.nfs:
	default:
		s, rest, err := ChecksumFromURL(j.url)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRequest, err)
		}
		if !s.IsZero() {
			j.sum, j.hasSum, j.url = s, true, rest
		}
	}
	if req.Path == "" {
		return nil, bad("no destination path")
	}
	p, err := filepath.Abs(req.Path)
	if err != nil {
		return nil, bad("destination %s: %v", req.Path, err)
	}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return nil, bad("destination %s is a directory; name the file", p)
	}
	if fi, err := os.Stat(filepath.Dir(p)); err != nil || !fi.IsDir() {
		return nil, bad("destination directory %s does not exist", filepath.Dir(p))
	}
	j.path = p
	return j, nil
}
