package faultserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotLoopback is returned for a listening address outside 127.0.0.0/8
// and ::1: the server never listens anywhere else.
var ErrNotLoopback = errors.New("faultserver: not a loopback IP address")

// Option configures a server made by [Start].
type Option func(*config) error

// config is what the options set.
type config struct {
	hosts     []string
	ports     map[string]string
	resources []Resource
	cert      *tls.Certificate
	faults    Faults
	logger    *slog.Logger
	handlers  map[string]http.Handler
}

// WithHosts sets the loopback IP addresses to listen on, each as "IP" or
// "IP:PORT" (e.g. "127.0.0.1", "127.0.0.2:8080", "::1"). Default:
// "127.0.0.1". The first is the host of [Server.URL]. Each host gets an
// HTTP listener and, with [WithTLS], an HTTPS one; a given port is for
// HTTPS when TLS is on, else for HTTP, and the other listener takes any
// free port. A name such as "localhost" is refused: only IP literals, so
// that nothing is resolved.
func WithHosts(hosts ...string) Option {
	return func(c *config) error {
		c.hosts, c.ports = nil, map[string]string{}
		for _, h := range hosts {
			ip, port := h, "0"
			if hp, p, err := net.SplitHostPort(h); err == nil {
				ip, port = hp, p
			}
			addr := net.ParseIP(ip)
			if addr == nil || !addr.IsLoopback() {
				return fmt.Errorf("%w: %q", ErrNotLoopback, h)
			}
			ip = addr.String()
			if slices.Contains(c.hosts, ip) {
				return fmt.Errorf("faultserver: host %s given twice", ip)
			}
			c.hosts = append(c.hosts, ip)
			c.ports[ip] = port
		}
		if len(c.hosts) == 0 {
			return errors.New("faultserver: WithHosts needs at least one host")
		}
		return nil
	}
}

// WithResource adds a resource to serve; several may be given. Without
// any, the server serves the default resource ([DefaultResourcePath]).
func WithResource(r Resource) Option {
	return func(c *config) error {
		if err := r.validate(); err != nil {
			return err
		}
		for _, o := range c.resources {
			if o.Path == r.Path {
				return fmt.Errorf("faultserver: resource %s given twice", r.Path)
			}
		}
		c.resources = append(c.resources, r)
		return nil
	}
}

// WithTLS adds an HTTPS listener on every host, serving cert (which should
// hold its chain, leaf first; see [PKI.Certificate]). Only HTTP/1.1 is
// offered, because the connection faults need to take over the connection.
func WithTLS(cert tls.Certificate) Option {
	return func(c *config) error {
		if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
			return errors.New("faultserver: WithTLS needs a certificate and its private key")
		}
		c.cert = &cert
		return nil
	}
}

// WithFaults sets the initial faults; see [Server.SetFaults].
func WithFaults(f Faults) Option {
	return func(c *config) error {
		c.faults = f
		return nil
	}
}

// WithHandler serves requests for path (exactly; the query is ignored)
// with h on every listener, before anything else: no fault, redirect or
// Status applies, and the requests are neither in the request log nor
// counted in [Stats] (the connections they come on are). It is meant for
// control endpoints of a standalone server, such as one that reports
// [Server.Stats] to a benchmark script without changing them. A path that
// is also a resource's is refused; a later WithHandler for the same path
// replaces the earlier one. h must be safe for concurrent use.
func WithHandler(path string, h http.Handler) Option {
	return func(c *config) error {
		if !strings.HasPrefix(path, "/") || h == nil {
			return fmt.Errorf("faultserver: WithHandler needs a path starting with / and a handler, got %q", path)
		}
		if c.handlers == nil {
			c.handlers = map[string]http.Handler{}
		}
		c.handlers[path] = h
		return nil
	}
}

// WithLogger logs each request at debug level, and the HTTP server's own
// errors (such as failed TLS handshakes) at debug level too. Default: no
// logging.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		c.logger = l
		return nil
	}
}

// Server is a running HTTP(S) server on loopback addresses, serving
// resources with switchable faults. Its methods are safe for concurrent
// use. Make one with [Start] or [StartTest]; Close it when done.
type Server struct {
	hosts     []string
	urls      map[string]string // "scheme host" to "scheme://host:port"
	resources map[string]*resource
	paths     []string
	handlers  map[string]http.Handler
	tls       bool
	logger    *slog.Logger
	servers   []*http.Server

	faults    atomic.Pointer[faultState]
	rec       recorder
	connIDs   atomic.Uint64
	redirects sync.Map // path to redirect

	done    chan struct{}
	mu      sync.Mutex // guards closed and wg.Add
	closed  bool
	wg      sync.WaitGroup // handlers and Serve loops
	closeMu sync.Once
}

// redirect is a chain set by [Server.Redirect].
type redirect struct {
	to   string
	hops []Hop
}

// Start listens on the configured hosts and serves until [Server.Close].
func Start(opts ...Option) (*Server, error) {
	c := config{hosts: []string{"127.0.0.1"}, ports: map[string]string{"127.0.0.1": "0"}}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	if len(c.resources) == 0 {
		r := PatternResource(DefaultResourcePath, DefaultResourceSeed, DefaultResourceSize)
		if err := r.validate(); err != nil {
			return nil, err
		}
		c.resources = []Resource{r}
	}
	for p := range c.handlers {
		if slices.ContainsFunc(c.resources, func(r Resource) bool { return r.Path == p }) {
			return nil, fmt.Errorf("faultserver: %s is both a resource and a handler's path; give one of them another", p)
		}
	}
	s := &Server{
		hosts:     c.hosts,
		urls:      map[string]string{},
		resources: map[string]*resource{},
		handlers:  c.handlers,
		tls:       c.cert != nil,
		logger:    c.logger,
		done:      make(chan struct{}),
	}
	for _, r := range c.resources {
		s.resources[r.Path] = &resource{Resource: r}
		s.paths = append(s.paths, r.Path)
	}
	s.faults.Store(newFaultState(c.faults, s.paths))

	errLog := log.New(io.Discard, "", 0)
	if s.logger != nil {
		errLog = slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug)
	}
	type listener struct {
		ln     net.Listener
		scheme string
		host   string
	}
	var lns []listener
	fail := func(err error) (*Server, error) {
		for _, l := range lns {
			l.ln.Close()
		}
		return nil, err
	}
	for _, h := range c.hosts {
		schemes := map[string]string{"http": c.ports[h]}
		if c.cert != nil {
			schemes = map[string]string{"https": c.ports[h], "http": "0"}
		}
		for _, scheme := range []string{"https", "http"} {
			port, ok := schemes[scheme]
			if !ok {
				continue
			}
			ln, err := net.Listen("tcp", net.JoinHostPort(h, port))
			if err != nil {
				return fail(fmt.Errorf("faultserver: %w", err))
			}
			lns = append(lns, listener{ln, scheme, h})
			s.urls[scheme+" "+h] = scheme + "://" + ln.Addr().String()
		}
	}
	for _, l := range lns {
		scheme, host := l.scheme, l.host
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s.handle(w, r, scheme, host)
			}),
			ErrorLog:          errLog,
			ReadHeaderTimeout: 30 * time.Second,
			// No HTTP/2: connection faults hijack the connection.
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
			ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
				return context.WithValue(ctx, connIDKey{}, s.connIDs.Add(1))
			},
			ConnState: func(_ net.Conn, st http.ConnState) {
				switch st {
				case http.StateNew:
					s.rec.connOpened()
				case http.StateClosed, http.StateHijacked:
					s.rec.connClosed()
				}
			},
		}
		ln := l.ln
		if scheme == "https" {
			ln = tls.NewListener(ln, &tls.Config{
				Certificates: []tls.Certificate{*c.cert},
				NextProtos:   []string{"http/1.1"},
				MinVersion:   tls.VersionTLS12,
			})
		}
		s.servers = append(s.servers, srv)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			srv.Serve(ln) // returns when Close closes the listener
		}()
	}
	return s, nil
}

// TB is the part of testing.TB that [StartTest] uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// StartTest starts a server for a test or benchmark: it fails t if the
// server cannot start, and closes it when t ends.
func StartTest(t TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(opts...)
	if err != nil {
		t.Fatalf("starting fault server: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Close stops the server: it closes the listeners and every connection,
// ends stalls and delays, and waits for the handlers to return. It is safe
// to call more than once.
func (s *Server) Close() error {
	s.closeMu.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.done)
		for _, srv := range s.servers {
			srv.Close()
		}
		s.wg.Wait()
	})
	return nil
}

// URL returns the URL of path on the first host: https when the server has
// TLS, else http.
func (s *Server) URL(path string) string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return s.URLFor(scheme, s.hosts[0], path)
}

// URLFor returns the URL of path at one listener: scheme "http" or
// "https", host one of the server's hosts. It panics if there is no such
// listener, which is a mistake in the test.
func (s *Server) URLFor(scheme, host, path string) string {
	base, ok := s.urls[scheme+" "+host]
	if !ok {
		panic(fmt.Sprintf("faultserver: no %s listener on %s", scheme, host))
	}
	return base + path
}

// Hosts returns the IP addresses the server listens on, the first being
// that of [Server.URL].
func (s *Server) Hosts() []string { return slices.Clone(s.hosts) }

// SetFaults replaces the faults, at once for responses that start
// afterwards, and restarts the counted faults. See [Faults].
func (s *Server) SetFaults(f Faults) {
	s.faults.Store(newFaultState(f, s.paths))
}

// Faults returns the faults set last. To change one, get them, change the
// copy and set them back (which restarts the counted faults).
func (s *Server) Faults() Faults {
	f := s.faults.Load().Faults
	if f.Status != nil {
		m := make(map[string]int, len(f.Status))
		for k, v := range f.Status {
			m[k] = v
		}
		f.Status = m
	}
	return f
}

// Redirect makes requests for from redirect along hops, the last of which
// points to path to (on that hop's scheme and host), unless it names a URL
// itself. Hops between the first and the last request from again with a
// query parameter that tracks the position in the chain. Setting a chain
// for from replaces the previous one; no hops removes it.
func (s *Server) Redirect(from, to string, hops ...Hop) error {
	if len(hops) == 0 {
		s.redirects.Delete(from)
		return nil
	}
	if len(from) == 0 || from[0] != '/' || len(to) == 0 || to[0] != '/' {
		return fmt.Errorf("faultserver: redirect paths %q and %q must start with /", from, to)
	}
	for i, h := range hops {
		switch h.Status {
		case 0, 301, 302, 303, 307, 308:
		default:
			return fmt.Errorf("faultserver: redirect hop %d: status %d is not a redirect", i, h.Status)
		}
		if h.URL != "" {
			if i != len(hops)-1 {
				return fmt.Errorf("faultserver: redirect hop %d names a URL, which ends the chain, but is not the last", i)
			}
			continue
		}
		if h.Scheme != "" && h.Scheme != "http" && h.Scheme != "https" {
			return fmt.Errorf("faultserver: redirect hop %d: scheme %q is not http or https", i, h.Scheme)
		}
		if h.Scheme == "https" && !s.tls {
			return fmt.Errorf("faultserver: redirect hop %d is to https but the server has no TLS (use WithTLS)", i)
		}
		if h.Host != "" && !slices.Contains(s.hosts, h.Host) {
			return fmt.Errorf("faultserver: redirect hop %d is to host %s, which the server does not listen on (use WithHosts)", i, h.Host)
		}
	}
	s.redirects.Store(from, &redirect{to: to, hops: slices.Clone(hops)})
	return nil
}

// Change makes a new version of the resource at path: a new ETag and a
// Last-Modified one hour later, and, if content is true, new content (for
// a resource generated by a [Pattern] only). Responses in flight go on with
// the old content.
func (s *Server) Change(path string, content bool) error {
	r, ok := s.resources[path]
	if !ok {
		return fmt.Errorf("faultserver: no resource %s", path)
	}
	return r.change(content)
}

// Version returns the current version of the resource at path, and false
// if there is none.
func (s *Server) Version(path string) (Version, bool) {
	r, ok := s.resources[path]
	if !ok {
		return Version{}, false
	}
	return r.version(), true
}

// Requests returns a copy of the request log, oldest first, of the requests
// that have finished (at most [MaxLogEntries]).
func (s *Server) Requests() []Request { return s.rec.snapshot() }

// Stats returns the counters.
func (s *Server) Stats() Stats { return s.rec.stats() }

// ResetStats clears the request log and the counters; the peaks restart
// from what is active now.
func (s *Server) ResetStats() { s.rec.reset() }

// connIDKey is the context key of a connection's number.
type connIDKey struct{}

// enter registers a handler unless the server is closing.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// sleep waits for d, or less if ctx ends or the server closes, and reports
// whether it waited the whole time. A zero or negative d waits until ctx
// ends or the server closes.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-ctx.Done():
	case <-s.done:
	}
	return false
}
