package certstore

import (
	"bytes"
	"context"
	"crypto"
	"crypto/md5"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/directdl/directdl/internal/netguard"
)

// Defaults of CompleteOptions.
const (
	DefaultAIAMaxDepth     = 5
	DefaultAIAMaxSize      = 1 << 20
	DefaultAIATimeout      = 5 * time.Second
	DefaultAIAMaxFetches   = 16
	DefaultAIAMaxRedirects = 3
)

var (
	// ErrAIA is the parent of every failed AIA caIssuers fetch; the error
	// is an *AIAError naming the URL.
	ErrAIA = errors.New("certstore: AIA fetch failed")
	// ErrIncompleteChain: Complete found no path from the leaf to a
	// self-signed certificate or to one the given Roots vouch for. The
	// message names the certificate whose issuer is missing and why each
	// of its AIA URLs did not give it.
	ErrIncompleteChain = errors.New("certstore: chain incomplete")
)

// AIAError is one AIA caIssuers URL that did not give a usable issuer.
type AIAError struct {
	// URL is the caIssuers URL, redacted.
	URL string
	// For names the certificate whose caIssuers URL it is.
	For string
	// Err says what was wrong: a refused address (matching
	// netguard.ErrDenied through errors.Is), a timeout, an HTTP status, a
	// response over the size limit, a body that is no certificate, or a
	// certificate that did not sign For.
	Err error
}

// Error names the URL, the certificate and the problem.
func (e *AIAError) Error() string {
	return fmt.Sprintf("certstore: AIA caIssuers %s of %s: %v", e.URL, e.For, e.Err)
}

// Unwrap returns Err.
func (e *AIAError) Unwrap() error { return e.Err }

// Is matches ErrAIA.
func (e *AIAError) Is(target error) bool { return target == ErrAIA }

// CompleteOptions configures Complete. The zero value uses the defaults
// given on each field and the zero Policy (no loopback, link-local or
// metadata addresses).
type CompleteOptions struct {
	// Roots, when set, ends the walk at the first certificate of the chain
	// that Roots vouch for (one in Roots, or issued by one), so a chain
	// that reaches a trusted root is not extended by more fetches. The
	// roots themselves are never added to the result. Nil: the walk ends
	// only at a self-signed certificate.
	Roots *x509.CertPool
	// Policy decides which addresses the fetches may connect to; it is
	// checked for every connection, redirects included.
	Policy Policy
	// Resolver looks up the hosts of caIssuers URLs. Nil:
	// net.DefaultResolver.
	Resolver Resolver
	// MaxDepth bounds the fetched certificates along one path from the
	// leaf. Default DefaultAIAMaxDepth (5).
	MaxDepth int
	// MaxSize bounds one response body in bytes. Default DefaultAIAMaxSize
	// (1 MiB).
	MaxSize int64
	// Timeout bounds one fetch, from connecting to the end of the body.
	// Default DefaultAIATimeout (5s).
	Timeout time.Duration
	// MaxFetches bounds the URLs fetched in all, since every certificate
	// may list several. Default DefaultAIAMaxFetches (16).
	MaxFetches int
	// MaxRedirects bounds the redirects of one fetch. Default
	// DefaultAIAMaxRedirects (3); negative follows none.
	MaxRedirects int
	// Now is the time Roots are checked at. Nil: time.Now.
	Now func() time.Time
}

func (o CompleteOptions) withDefaults() (CompleteOptions, error) {
	if o.MaxDepth < 0 || o.MaxSize < 0 || o.Timeout < 0 || o.MaxFetches < 0 {
		return o, fmt.Errorf("%w: negative AIA limit (depth %d, size %d, timeout %s, fetches %d)", ErrInvalidOptions, o.MaxDepth, o.MaxSize, o.Timeout, o.MaxFetches)
	}
	if o.MaxDepth == 0 {
		o.MaxDepth = DefaultAIAMaxDepth
	}
	if o.MaxSize == 0 {
		o.MaxSize = DefaultAIAMaxSize
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultAIATimeout
	}
	if o.MaxFetches == 0 {
		o.MaxFetches = DefaultAIAMaxFetches
	}
	switch {
	case o.MaxRedirects == 0:
		o.MaxRedirects = DefaultAIAMaxRedirects
	case o.MaxRedirects < 0:
		o.MaxRedirects = -1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, o.Policy.Validate()
}

// Complete finds the issuers a chain lacks through the Authority
// Information Access caIssuers URLs of its certificates (RFC 5280
// 4.2.2.1), as browsers and Java with com.sun.security.enableAIAcaIssuers
// do and Go, curl and CloudStack's agent do not.
//
// chain is a certificate chain as a server sent it, leaf first; its other
// certificates may be in any order, and those that are not on the path
// from the leaf are left out. From the leaf, Complete looks for each
// certificate's issuer first among the given certificates, then at every
// caIssuers URL of the certificate, depth-first, until it reaches a
// self-signed certificate (or one Roots vouch for). A URL is fetched at
// most once and a certificate is never used twice on one path, so chains
// whose AIA URLs point at each other end. Responses may be DER, PEM or a
// PKCS #7 certs-only bundle (.p7c); a certificate from a response is
// accepted only if its subject is the child's issuer and its key signed
// the child (a SHA-1 or MD5 signature counts as signed here, so that the
// diagnosis can report it as weak). Only http and https URLs are fetched,
// every connection goes through the Policy, and the limits of opts apply.
//
// completed is the chain from the leaf toward the root, in order: the
// whole path when err is nil, else the longest path found. fetched holds
// the certificates of completed that came from AIA. Fetched certificates
// are candidates, never trusted: Complete adds nothing to any pool, and
// the caller verifies completed against its own roots.
//
// err is nil when the path ends at a self-signed certificate or at one
// Roots vouch for, even if some URLs failed. Otherwise it wraps
// ErrIncompleteChain, names the certificate whose issuer is missing, and
// joins the *AIAError of each URL that failed. An invalid option gives an
// error wrapping ErrInvalidOptions, and an empty chain one wrapping
// ErrInvalidCertificate. Complete is safe for concurrent use.
func Complete(ctx context.Context, chain []*x509.Certificate, opts CompleteOptions) (completed, fetched []*x509.Certificate, err error) {
	r, err := completeChain(ctx, chain, opts)
	if r == nil {
		return nil, nil, err
	}
	for _, c := range r.path {
		if r.sources[c] != "" {
			fetched = append(fetched, c)
		}
	}
	return r.path, fetched, err
}

// aiaResult is what completeChain found.
type aiaResult struct {
	// path is the chain from the leaf, as in Complete.
	path []*x509.Certificate
	// complete says that path ends at a self-signed certificate or at
	// one the Roots vouch for.
	complete bool
	// sources maps each fetched certificate of path to its (raw) URL.
	sources map[*x509.Certificate]string
	// errs are the failed URLs.
	errs []error
}

// aiaFetch is the cached outcome of one URL.
type aiaFetch struct {
	certs []*x509.Certificate
	err   error
}

type aiaCompleter struct {
	opts    CompleteOptions
	client  *http.Client
	served  []*x509.Certificate
	fetches map[string]*aiaFetch
	result  aiaResult
	best    []*x509.Certificate
	bestSrc map[*x509.Certificate]string
}

func completeChain(ctx context.Context, chain []*x509.Certificate, opts CompleteOptions) (*aiaResult, error) {
	if len(chain) == 0 || chain[0] == nil {
		return nil, fmt.Errorf("%w: no certificate to complete", ErrInvalidCertificate)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	gd, err := newGuardedDialer(o.Policy, o.Resolver, o.Timeout)
	if err != nil {
		return nil, err
	}
	// Each fetch's context carries the Timeout, from dial to body.
	tr := &http.Transport{
		DialContext:        gd.DialContext,
		DisableKeepAlives:  true,
		DisableCompression: true,
	}
	defer tr.CloseIdleConnections()
	c := &aiaCompleter{
		opts:    o,
		client:  &http.Client{Transport: tr, CheckRedirect: netguard.CheckRedirect(o.MaxRedirects)},
		served:  chain[1:],
		fetches: map[string]*aiaFetch{},
	}
	onPath := map[string]bool{Fingerprint(chain[0]): true}
	sources := map[*x509.Certificate]string{}
	c.walk(ctx, []*x509.Certificate{chain[0]}, onPath, sources, 0)
	r := &c.result
	if !r.complete {
		r.path, r.sources = c.best, c.bestSrc
	}
	if r.complete {
		return r, nil
	}
	top := r.path[len(r.path)-1]
	why := ""
	if ctx.Err() != nil {
		why = ": " + ctx.Err().Error()
	}
	switch {
	case len(r.errs) > 0:
		return r, fmt.Errorf("%w: no issuer found for %s (issuer %s)%s: %w", ErrIncompleteChain, probeCertName(top), top.Issuer, why, errors.Join(r.errs...))
	case len(top.IssuingCertificateURL) == 0:
		return r, fmt.Errorf("%w: no issuer found for %s: the issuer %s was not given and the certificate has no AIA caIssuers URL to fetch it from%s", ErrIncompleteChain, probeCertName(top), top.Issuer, why)
	default:
		return r, fmt.Errorf("%w: no issuer found for %s (issuer %s)%s", ErrIncompleteChain, probeCertName(top), top.Issuer, why)
	}
}

// walk extends path (whose certificates are in onPath) from its last
// certificate and reports whether it reached the end. depth counts the
// fetched certificates on path.
func (c *aiaCompleter) walk(ctx context.Context, path []*x509.Certificate, onPath map[string]bool, sources map[*x509.Certificate]string, depth int) bool {
	if len(path) > len(c.best) {
		c.best = append([]*x509.Certificate(nil), path...)
		c.bestSrc = aiaCopySources(sources)
	}
	cur := path[len(path)-1]
	if aiaSelfSigned(cur) || c.vouched(cur) {
		c.result = aiaResult{path: append([]*x509.Certificate(nil), path...), complete: true, sources: aiaCopySources(sources), errs: c.result.errs}
		return true
	}
	try := func(cand *x509.Certificate, src string, d int) bool {
		fp := Fingerprint(cand)
		if onPath[fp] {
			return false
		}
		onPath[fp] = true
		if src != "" {
			sources[cand] = src
		}
		done := c.walk(ctx, append(path, cand), onPath, sources, d)
		delete(onPath, fp)
		delete(sources, cand)
		return done
	}
	for _, s := range c.served {
		if _, err := aiaSignedBy(cur, s); err == nil && try(s, "", depth) {
			return true
		}
	}
	for _, raw := range cur.IssuingCertificateURL {
		if ctx.Err() != nil {
			return false
		}
		if depth >= c.opts.MaxDepth {
			c.fail(raw, cur, fmt.Errorf("not fetched: %d certificates were already fetched along this path, the depth limit (MaxDepth)", c.opts.MaxDepth))
			continue
		}
		f := c.fetch(ctx, raw, cur)
		if f.err != nil {
			continue
		}
		for _, cand := range f.certs {
			if try(cand, raw, depth+1) {
				return true
			}
		}
	}
	return false
}

func aiaCopySources(m map[*x509.Certificate]string) map[*x509.Certificate]string {
	out := make(map[*x509.Certificate]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// vouched reports whether the Roots vouch for c: c is in them or is
// issued by one of them. Time is not what is asked here, so a
// certificate outside its validity is tried again in the middle of it.
func (c *aiaCompleter) vouched(cert *x509.Certificate) bool {
	if c.opts.Roots == nil {
		return false
	}
	for _, t := range []time.Time{c.opts.Now(), aiaMidValidity(cert)} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: c.opts.Roots, CurrentTime: t, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
			return true
		}
	}
	return false
}

func aiaMidValidity(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) / 2)
}

// fetch gets raw (once: later calls return the first outcome) and keeps
// the certificates that signed child. Failures are recorded in c.result.
func (c *aiaCompleter) fetch(ctx context.Context, raw string, child *x509.Certificate) *aiaFetch {
	if f, ok := c.fetches[raw]; ok {
		return f
	}
	f := &aiaFetch{}
	c.fetches[raw] = f
	if len(c.fetches) > c.opts.MaxFetches {
		f.err = fmt.Errorf("not fetched: %d URLs were already fetched, the limit (MaxFetches)", c.opts.MaxFetches)
		c.fail(raw, child, f.err)
		return f
	}
	certs, err := c.get(ctx, raw)
	if err != nil {
		f.err = err
		c.fail(raw, child, err)
		return f
	}
	var rejected []string
	for _, cand := range certs {
		if _, err := aiaSignedBy(child, cand); err != nil {
			rejected = append(rejected, fmt.Sprintf("%s: %v", probeCertName(cand), err))
			continue
		}
		f.certs = append(f.certs, cand)
	}
	if len(f.certs) == 0 {
		f.err = fmt.Errorf("no certificate in the response signed it: %s", strings.Join(rejected, "; "))
		c.fail(raw, child, f.err)
	}
	return f
}

func (c *aiaCompleter) fail(raw string, child *x509.Certificate, err error) {
	c.result.errs = append(c.result.errs, &AIAError{URL: netguard.RedactString(raw), For: probeCertName(child), Err: err})
}

// get fetches one caIssuers URL and parses its certificates.
func (c *aiaCompleter) get(ctx context.Context, raw string) ([]*x509.Certificate, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return nil, fmt.Errorf("scheme %q is not fetched: only http and https", u.Scheme)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, errors.New("not a usable URL")
	}
	req.Header.Set("User-Agent", probeUserAgent)
	resp, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("timed out after %s (Timeout)", c.opts.Timeout)
		}
		return nil, aiaURLError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s", resp.Status)
	}
	if resp.ContentLength > c.opts.MaxSize {
		return nil, fmt.Errorf("response is %d bytes, more than the %d allowed (MaxSize)", resp.ContentLength, c.opts.MaxSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxSize+1))
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("timed out after %s (Timeout) reading the body", c.opts.Timeout)
		}
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	if int64(len(body)) > c.opts.MaxSize {
		return nil, fmt.Errorf("response is more than the %d bytes allowed (MaxSize)", c.opts.MaxSize)
	}
	return parseAIAResponse(body)
}

// aiaURLError drops the *url.Error around a client error, whose URL
// the AIAError already names (redacted).
func aiaURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return netguard.RedactError(ue.Err)
	}
	return netguard.RedactError(err)
}

// parseAIAResponse reads the certificates of a caIssuers response: one DER
// certificate (RFC 5280's application/pkix-cert), a DER PKCS #7 certs-only
// bundle (application/pkcs7-mime), or PEM holding CERTIFICATE or PKCS7
// blocks, which some CAs serve instead. The content type is not trusted
// to say which: many servers send application/octet-stream.
func parseAIAResponse(data []byte) ([]*x509.Certificate, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("empty response")
	}
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) || bytes.Contains(trimmed, []byte("\n-----BEGIN")) {
		return parseAIAPEM(trimmed)
	}
	if data[0] != 0x30 {
		if trimmed[0] == '<' {
			return nil, errors.New("response is HTML or XML, not a certificate (an error page?)")
		}
		return nil, errors.New("response is not a DER, PEM or PKCS #7 certificate")
	}
	c, certErr := x509.ParseCertificate(data)
	if certErr == nil {
		return []*x509.Certificate{c}, nil
	}
	certs, p7Err := parsePKCS7Certs(data)
	if p7Err == nil {
		return certs, nil
	}
	return nil, fmt.Errorf("response is neither a DER certificate (%v) nor a PKCS #7 bundle (%v)", certErr, p7Err)
}

func parseAIAPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d: %w", n, err)
			}
			certs = append(certs, c)
		case "PKCS7", "CMS":
			cs, err := parsePKCS7Certs(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d: %w", n, err)
			}
			certs = append(certs, cs...)
		default:
			return nil, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE or PKCS7", n, b.Type)
		}
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM block decodes")
	}
	return certs, nil
}

// aiaSignedBy reports whether parent issued child: parent's subject is
// child's issuer, parent may sign certificates, and parent's key made
// child's signature. weak is true when that signature uses SHA-1 or MD5,
// which Go's verifier refuses however valid it is.
func aiaSignedBy(child, parent *x509.Certificate) (weak bool, err error) {
	if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
		return false, fmt.Errorf("its subject is %s, not the issuer %s", parent.Subject, child.Issuer)
	}
	err = child.CheckSignatureFrom(parent)
	var ia x509.InsecureAlgorithmError
	if err == nil || !errors.As(err, &ia) {
		if err != nil {
			err = fmt.Errorf("its key did not sign the certificate: %w", err)
		}
		return false, err
	}
	if err := aiaCheckSignature(parent, child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature); err != nil {
		return true, fmt.Errorf("its key did not sign the certificate: %w", err)
	}
	return true, nil
}

// aiaSelfSigned is IsSelfSigned without the CA constraint and with
// SHA-1 and MD5 signatures allowed: a self-signed leaf is often not marked
// as a CA, and a root's own signature is never what makes it trusted.
func aiaSelfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	return aiaCheckSignature(c, c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// aiaCheckSignature checks a signature by signer's key, accepting SHA-1
// (as Certificate.CheckSignature does) and MD5 with RSA.
func aiaCheckSignature(signer *x509.Certificate, algo x509.SignatureAlgorithm, signed, sig []byte) error {
	if algo == x509.MD5WithRSA {
		pub, ok := signer.PublicKey.(*rsa.PublicKey)
		if !ok {
			return errors.New("MD5WithRSA signature by a non-RSA key")
		}
		sum := md5.Sum(signed)
		return rsa.VerifyPKCS1v15(pub, crypto.MD5, sum[:], sig)
	}
	return signer.CheckSignature(algo, signed, sig)
}

// aiaWeakAlgorithm reports the signature algorithms Go refuses in chains.
func aiaWeakAlgorithm(a x509.SignatureAlgorithm) bool {
	switch a {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return true
	}
	return false
}

// probeCertName names a certificate in messages: its subject and fingerprint.
func probeCertName(c *x509.Certificate) string {
	return fmt.Sprintf("%s (sha256 %s)", probeSubject(c), Fingerprint(c))
}

// probeSubject is c's subject, or a stand-in for an empty one.
func probeSubject(c *x509.Certificate) string {
	if s := c.Subject.String(); s != "" {
		return s
	}
	return "the certificate with an empty subject"
}
