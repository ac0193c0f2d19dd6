package getter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	gogetter "github.com/hashicorp/go-getter"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/netguard"
)

// DefaultIdleTimeout is how long an S3 object may send no byte before the
// fetch fails with download.ErrStalled: the download Client's default
// socket timeout.
const DefaultIdleTimeout = download.DefaultSocketTimeout

// DefaultSchemes returns the schemes a Getter made without WithSchemes
// runs: s3, gcs and git. Reading local files (file, and git or hg from a
// local path) is left out on purpose: whoever may name a source could
// otherwise copy any file the process can read.
func DefaultSchemes() []string { return []string{SchemeS3, SchemeGCS, SchemeGit} }

// Errors of this package, for errors.Is. Each also matches
// download.ErrRequest, as the engine's own refusals of a Request do.
var (
	// ErrScheme: the source's scheme is unknown, or not enabled with
	// WithSchemes.
	ErrScheme = errors.New("getter: scheme not enabled")
	// ErrSource: the source cannot be fetched as asked: a malformed URL,
	// ?archive= (unpacking), ?checksum=file:, a //subdirectory outside a
	// repository, or a checksum that contradicts the Request's.
	ErrSource = errors.New("getter: unusable source")
)

// Option configures a Getter made by New.
type Option func(*config) error

type config struct {
	schemes  []string
	policy   netguard.Policy
	idle     time.Duration
	resolver *net.Resolver
}

// WithSchemes sets which go-getter getters run, replacing the default
// (DefaultSchemes: s3, gcs, git): any of SchemeS3, SchemeGCS, SchemeGit,
// SchemeHg and SchemeFile. None at all leaves only http and https, which
// always go to the download engine and cannot be named here. SchemeFile
// lets callers copy any local file the process can read: enable it only
// when whoever names sources is trusted with that.
func WithSchemes(schemes ...string) Option {
	return func(c *config) error {
		c.schemes = c.schemes[:0]
		for _, s := range schemes {
			l := strings.ToLower(s)
			switch {
			case l == "http" || l == "https":
				return fmt.Errorf("%w: scheme %q always goes to the download engine; WithSchemes takes %s", download.ErrOption, s, strings.Join(known, ", "))
			case !slices.Contains(known, l):
				return fmt.Errorf("%w: unknown scheme %q; WithSchemes takes %s", download.ErrOption, s, strings.Join(known, ", "))
			}
			c.schemes = append(c.schemes, l)
		}
		return nil
	}
}

// WithPolicy sets the address policy that the host of an s3, gcs, git or
// hg URL must pass: it is resolved and every address checked before the
// fetch starts. Give the policy the download Client was made with. The
// default is the zero Policy, which refuses loopback, link-local (cloud
// metadata) and other special addresses. See the package documentation for
// what this check cannot catch.
func WithPolicy(p download.Policy) Option {
	return func(c *config) error {
		c.policy = netguard.Policy{Allow: p.Allow, Deny: p.Deny, OnlyAllowed: p.OnlyAllowed}
		if err := c.policy.Validate(); err != nil {
			return fmt.Errorf("%w: %w", download.ErrOption, err)
		}
		return nil
	}
}

// WithIdleTimeout sets how long an S3 object's body may send no byte
// before the fetch fails with download.ErrStalled. It is not a deadline
// for the whole transfer. Default DefaultIdleTimeout (5s).
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: idle timeout must be positive, got %v", download.ErrOption, d)
		}
		c.idle = d
		return nil
	}
}

// WithResolver sets the resolver used to check host names against the
// policy. Default net.DefaultResolver.
func WithResolver(r *net.Resolver) Option {
	return func(c *config) error {
		if r == nil {
			return fmt.Errorf("%w: nil resolver", download.ErrOption)
		}
		c.resolver = r
		return nil
	}
}

// Getter fetches sources the download engine does not read itself through
// go-getter v1, and hands http and https URLs to the engine. Make it with
// New; it is safe for concurrent use.
type Getter struct {
	c        *download.Client
	enabled  map[string]bool
	policy   netguard.Policy
	idle     time.Duration
	resolver *net.Resolver
}

// New returns a Getter that downloads with c. Without options it runs the
// DefaultSchemes (s3, gcs, git), checks hosts against the zero Policy and
// fails an S3 body that stalls for DefaultIdleTimeout. Errors match
// download.ErrOption.
func New(c *download.Client, opts ...Option) (*Getter, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: getter.New needs a download Client", download.ErrOption)
	}
	cfg := config{schemes: DefaultSchemes(), idle: DefaultIdleTimeout, resolver: net.DefaultResolver}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	g := &Getter{c: c, enabled: map[string]bool{}, policy: cfg.policy, idle: cfg.idle, resolver: cfg.resolver}
	for _, s := range cfg.schemes {
		g.enabled[s] = true
	}
	return g, nil
}

// Schemes returns the enabled schemes, sorted.
func (g *Getter) Schemes() []string {
	out := make([]string, 0, len(g.enabled))
	for s := range g.enabled {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Get downloads req.URL to req.Path. An http or https URL (also with an
// http:: or https:: prefix) goes to the download Client's Get unchanged,
// with all its features. Any other source is fetched by go-getter into a
// private temporary file and then, like the engine's own downloads,
// checked against req.Size and the checksum and moved into place
// atomically; on any failure nothing is left behind. A ?checksum= in the
// URL is taken as the expected checksum (it must agree with req.Checksum
// and req.Sum when those are set too). Safe for concurrent use.
func (g *Getter) Get(ctx context.Context, req download.Request) (*download.Result, error) {
	s, err := parseSource(req.URL, g.enabled)
	if err != nil {
		return nil, err
	}
	if s.engine {
		req.URL = s.url
		return g.c.Get(ctx, req)
	}
	if !s.sum.IsZero() {
		want := req.Sum
		if want.IsZero() && req.Checksum != "" {
			if want, err = download.ParseChecksum(req.Checksum); err != nil {
				return nil, fmt.Errorf("%w: %w", download.ErrRequest, err)
			}
		}
		if !want.IsZero() && want != s.sum {
			return nil, badSource(req.URL, "its checksum %s differs from the Request's %s", s.sum, want)
		}
		req.Sum = s.sum
	}
	if err := g.checkHost(ctx, s); err != nil {
		return nil, err
	}
	req.URL = s.name
	var fetch download.FetchFunc
	switch s.scheme {
	case SchemeGit, SchemeHg:
		fetch = g.fetchRepo(s, req.Size)
	default:
		fetch = g.fetchFile(s, req.Size)
	}
	return g.c.GetWith(ctx, req, fetch)
}

// checkHost applies the policy to the addresses of the source's host.
// It runs once, before the fetch: the getters' own connections are not
// guarded (see the package documentation).
func (g *Getter) checkHost(ctx context.Context, s source) error {
	if strings.EqualFold(s.inner.Scheme, "file") {
		return nil
	}
	host := s.inner.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = g.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return fmt.Errorf("getter: resolving %s for %s: %w", host, netguard.RedactString(s.name), err)
		}
	}
	for _, a := range addrs {
		if err := g.policy.CheckAddr(a.Unmap()); err != nil {
			return fmt.Errorf("getter: %s: %w", netguard.RedactString(s.name), err)
		}
	}
	return nil
}

// fetchFile runs go-getter in file mode with the settings of the package
// documentation, for s3, gcs and file sources.
func (g *Getter) fetchFile(s source, limit int64) download.FetchFunc {
	return func(ctx context.Context, dst string) error {
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		var gg gogetter.Getter
		switch s.scheme {
		case SchemeS3:
			gg = new(gogetter.S3Getter)
		case SchemeGCS:
			gg = new(gogetter.GCSGetter)
		case SchemeFile:
			gg = &gogetter.FileGetter{Copy: true}
		default:
			return fmt.Errorf("getter: no file getter for %q", s.scheme)
		}
		gd := newGuard(limit, g.idle, cancel)
		c := &gogetter.Client{
			Ctx:  ctx,
			Src:  s.scheme + "::" + s.inner.String(),
			Dst:  dst,
			Mode: gogetter.ClientModeFile,
			// Detection already ran in parseSource; an empty, non-nil
			// list keeps go-getter's defaults out.
			Detectors:        []gogetter.Detector{},
			Decompressors:    map[string]gogetter.Decompressor{},
			Getters:          map[string]gogetter.Getter{s.scheme: gg},
			ProgressListener: gd,
			DisableSymlinks:  true,
			Insecure:         false,
			Umask:            0o022,
		}
		err := c.Get()
		if gerr := gd.failure(); gerr != nil {
			return gerr
		}
		return err
	}
}
