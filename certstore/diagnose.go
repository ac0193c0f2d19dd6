package certstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/directdl/directdl/internal/netguard"
)

// Problem classifies why a hop's chain does not verify. The values are
// ddctl probe's JSON "problem" values.
type Problem string

// The problems, in order of precedence: when several apply, Problems lists
// them all in this order and the first is the hop's Problem. Trust
// problems come first, because until the chain reaches a trusted root no
// other fix makes it verify, and they are what Java reports as "PKIX path
// building failed"; then validity, which every client refuses; then weak
// signatures, which Go refuses but Java 17 accepts to a private root; then
// host names, which directdl checks but CloudStack's agent does not.
const (
	// ProblemNone: the chain verifies.
	ProblemNone Problem = ""
	// ProblemSelfSigned: the leaf is self-signed and not trusted. Trusting
	// it pins that exact certificate.
	ProblemSelfSigned Problem = "self-signed"
	// ProblemUnknownAuthority: the chain, as served or completed through
	// AIA, ends at a root that is not among the trusted roots.
	ProblemUnknownAuthority Problem = "unknown-authority"
	// ProblemMissingIntermediate: the served chain stops at a certificate
	// whose issuer was not sent, is not trusted and is not self-signed:
	// the server omits its intermediate certificate(s). Without AIA this
	// is also what a chain to an unknown root that the server does not
	// send looks like; with AIA the two are told apart.
	ProblemMissingIntermediate Problem = "missing-intermediate"
	// ProblemExpired: a certificate of the chain (leaf, intermediate or
	// root) has expired.
	ProblemExpired Problem = "expired"
	// ProblemNotYetValid: a certificate of the chain is not valid yet
	// (or this host's clock is wrong).
	ProblemNotYetValid Problem = "not-yet-valid"
	// ProblemWeakSignature: a certificate of the chain is signed with
	// SHA-1 or MD5, which Go refuses.
	ProblemWeakSignature Problem = "weak-signature"
	// ProblemHostnameMismatch: the leaf is not valid for the hop's host.
	ProblemHostnameMismatch Problem = "hostname-mismatch"
	// ProblemInvalid: Go's verifier refuses the chain for another reason
	// (an extended key usage without serverAuth, a name constraint, a
	// path length); TLSResult.VerifyError says which.
	ProblemInvalid Problem = "invalid"
)

var problemOrder = []Problem{ProblemSelfSigned, ProblemUnknownAuthority, ProblemMissingIntermediate,
	ProblemExpired, ProblemNotYetValid, ProblemWeakSignature, ProblemHostnameMismatch, ProblemInvalid}

// TLSResult is one TLS connection's chain, verdict and diagnosis.
type TLSResult struct {
	// Version is the TLS version, such as "TLS 1.3".
	Version string `json:"version"`
	// ServerName is the SNI sent: the hop's host (empty for an IP
	// address, which TLS does not send as SNI).
	ServerName string `json:"sni"`
	// Chain is the chain exactly as the server sent it, in its order.
	Chain []CertInfo `json:"chain"`
	// Verified reports whether Chain verifies against the roots, for the
	// hop's host, now, as the downloader will verify it: AIA is never
	// used for this verdict.
	Verified bool `json:"verified"`
	// Problem is the first of Problems: "" when Verified.
	Problem Problem `json:"problem"`
	// Problems are all the problems found, in the order of precedence
	// documented on Problem; empty when Verified.
	Problems []Problem `json:"problems"`
	// Explanation says in plain words, naming the hop and the
	// certificates (subject and SHA-256), what is wrong and which
	// certificate to trust or what to fix on the server.
	Explanation string `json:"explanation"`
	// VerifyError is Go's verification error, when it failed.
	VerifyError string `json:"verify_error,omitempty"`
	// Trust is the certificate that trusting would make the chain verify
	// (a missing intermediate fetched through AIA, an unknown root, a
	// self-signed leaf), when there is one. Trusting it is the operator's
	// decision: check it first.
	Trust *CertInfo `json:"trust,omitempty"`
	// TrustURL is the AIA URL Trust was fetched from (redacted), when it
	// was.
	TrustURL string `json:"trust_url,omitempty"`
	// Completed is the chain completed through AIA, leaf first, when AIA
	// was tried.
	Completed []CertInfo `json:"completed,omitempty"`
	// Fetched lists the certificates AIA fetched into Completed, with
	// their URLs.
	Fetched []FetchedCert `json:"fetched,omitempty"`
	// AIAError says why AIA did not complete the chain, when it was tried
	// and did not.
	AIAError string `json:"aia_error,omitempty"`

	// Certificates are the served certificates, for callers that keep
	// them (ddctl certs fetch); CompletedCertificates is Completed's.
	Certificates          []*x509.Certificate `json:"-"`
	CompletedCertificates []*x509.Certificate `json:"-"`
}

// FetchedCert is a certificate AIA fetched, and where from.
type FetchedCert struct {
	CertInfo
	// URL is the caIssuers URL, redacted.
	URL string `json:"url"`
}

// aiaOutcome is Complete's result for one served chain, kept for the
// other edges and hops that serve the same chain.
type aiaOutcome struct {
	res *aiaResult
	err error
}

// probeDiagnosis is the state of diagnosing one chain.
type probeDiagnosis struct {
	p      *prober
	label  string
	host   string
	now    time.Time
	served []*x509.Certificate
	res    *TLSResult

	problems map[Problem]bool
	notes    []string
}

// diagnose verifies the chain of state as the downloader would and, when
// it does not verify, works out why. label names the hop ("hop 2
// (https://...)").
func (p *prober) diagnose(ctx context.Context, label, host string, state tls.ConnectionState) *TLSResult {
	served := state.PeerCertificates
	res := &TLSResult{
		Version:      tls.VersionName(state.Version),
		ServerName:   state.ServerName,
		Chain:        make([]CertInfo, len(served)),
		Problems:     []Problem{},
		Certificates: served,
	}
	for i, c := range served {
		res.Chain[i] = Describe(c)
	}
	if len(served) == 0 {
		res.Problems = []Problem{ProblemInvalid}
		res.Problem = ProblemInvalid
		res.Explanation = label + ": the server sent no certificate."
		return res
	}
	now := p.opts.Now()
	inter := x509.NewCertPool()
	for _, c := range served[1:] {
		inter.AddCert(c)
	}
	_, err := served[0].Verify(x509.VerifyOptions{
		Roots:         p.opts.Roots,
		Intermediates: inter,
		DNSName:       host,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err == nil {
		res.Verified = true
		res.Explanation = fmt.Sprintf("%s: the chain verifies: %s for %s.", label, probeCertName(served[0]), host)
		return res
	}
	res.VerifyError = err.Error()
	d := &probeDiagnosis{p: p, label: label, host: host, now: now, served: served, res: res, problems: map[Problem]bool{}}
	d.run(ctx, err)
	for _, pr := range problemOrder {
		if d.problems[pr] {
			res.Problems = append(res.Problems, pr)
		}
	}
	if len(res.Problems) == 0 {
		res.Problems = []Problem{ProblemInvalid}
		d.notes = append(d.notes, fmt.Sprintf("Go's verifier refuses the chain: %s.", err))
	}
	res.Problem = res.Problems[0]
	res.Explanation = label + ": " + strings.Join(d.notes, " ")
	return res
}

// certPath is a chain from the leaf: certs[i] is signed by certs[i+1].
type certPath struct {
	certs []*x509.Certificate
	// anchored is true when the last certificate is a trusted root or is
	// vouched for by one; anchor is then the root, when known.
	anchored bool
	anchor   *x509.Certificate
}

func (d *probeDiagnosis) run(ctx context.Context, verifyErr error) {
	leaf := d.served[0]
	served := probeBuildPath(leaf, d.served[1:])
	top := served.certs[len(served.certs)-1]
	d.anchorPath(&served)

	chain := served // the chain the other checks look at
	switch {
	case served.anchored:
	case len(served.certs) == 1 && aiaSelfSigned(leaf):
		d.problems[ProblemSelfSigned] = true
		d.trust(leaf, "")
		d.note("the server's certificate %s is self-signed and not among the trusted roots. Trusting it pins this exact certificate, which must then be trusted again every time the server renews it: trust %s only if you checked it with the server's operator, or better, have the server use a certificate from a CA you trust.", probeCertName(leaf), probeCertName(leaf))
	case aiaSelfSigned(top):
		d.problems[ProblemUnknownAuthority] = true
		d.trust(top, "")
		d.note("the chain the server sent ends at the root %s, which is not among the trusted roots: trust the root %s if you trust the CA that runs it.", probeCertName(top), probeCertName(top))
	case d.p.opts.AIA:
		chain = d.withAIA(ctx, served)
	default:
		d.problems[ProblemMissingIntermediate] = true
		d.note("%s, whose issuer %s it did not send and which is not among the trusted roots: either the server lacks its intermediate certificate (fix the server to send it after its leaf), or %s is a root you do not trust.%s Probe with AIA (ddctl probe -aia) to tell which and to name the certificate to trust.",
			probeSentUpTo(len(d.served), top), top.Issuer, top.Issuer, aiaHint(top))
	}
	d.checkTimes(chain)
	d.checkWeak(chain, verifyErr)
	d.checkHost(leaf)
}

// probeBuildPath follows issuer links from leaf through the other certificates
// (in any order), each used once, until a self-signed certificate or one
// whose issuer is not among them.
func probeBuildPath(leaf *x509.Certificate, others []*x509.Certificate) certPath {
	p := certPath{certs: []*x509.Certificate{leaf}}
	used := make([]bool, len(others))
	for cur := leaf; !aiaSelfSigned(cur); {
		next := -1
		for i, o := range others {
			if _, err := aiaSignedBy(cur, o); !used[i] && err == nil {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		used[next] = true
		cur = others[next]
		p.certs = append(p.certs, cur)
	}
	return p
}

// anchorPath finds whether the roots vouch for p: whether a certificate
// of p is a trusted root or is issued by one. The lowest such certificate
// ends the path, followed by the root when Go's chain adds one, and sets
// p.anchored and p.anchor. The links below it were checked by probeBuildPath;
// checking each certificate alone keeps time out of the question (a leaf
// may have expired before its renewed intermediate was issued, and no
// single time makes Go's chain building accept both): checkTimes reports
// time. A SHA-1 link to a root in the pool stops Go's chain building and
// shows only in its error, which is then taken as anchored, with the root
// unknown.
func (d *probeDiagnosis) anchorPath(p *certPath) {
	weakToRoot := false
	for i, c := range p.certs {
		for _, t := range []time.Time{d.now, aiaMidValidity(c), c.NotAfter.Add(-time.Second)} {
			chains, err := c.Verify(x509.VerifyOptions{Roots: d.p.opts.Roots, CurrentTime: t, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			if err == nil {
				ch := chains[0]
				p.certs = append(p.certs[:i:i], ch...)
				p.anchored, p.anchor = true, ch[len(ch)-1]
				return
			}
			var ua x509.UnknownAuthorityError
			if errors.As(err, &ua) && strings.Contains(err.Error(), "insecure algorithm") && i == len(p.certs)-1 {
				weakToRoot = true
			}
		}
	}
	p.anchored = weakToRoot
}

// withAIA completes served through AIA and classifies the result; it
// returns the chain the other checks should look at.
func (d *probeDiagnosis) withAIA(ctx context.Context, served certPath) certPath {
	top := served.certs[len(served.certs)-1]
	key := probeChainKey(d.served)
	out, ok := d.p.aiaCache[key]
	if !ok {
		r, err := completeChain(ctx, d.served, d.p.opts.AIAOptions)
		out = &aiaOutcome{res: r, err: err}
		d.p.aiaCache[key] = out
	}
	r := out.res
	if r == nil {
		d.problems[ProblemMissingIntermediate] = true
		d.note("%s, whose issuer %s it did not send; AIA could not be tried: %v.", probeSentUpTo(len(d.served), top), top.Issuer, out.err)
		return served
	}
	res := d.res
	var firstFetched *x509.Certificate
	for _, c := range r.path {
		res.Completed = append(res.Completed, Describe(c))
		if u := r.sources[c]; u != "" {
			res.Fetched = append(res.Fetched, FetchedCert{CertInfo: Describe(c), URL: netguard.RedactString(u)})
			if firstFetched == nil {
				firstFetched = c
			}
		}
	}
	res.CompletedCertificates = r.path
	if out.err != nil {
		res.AIAError = out.err.Error()
	}
	completed := certPath{certs: append([]*x509.Certificate(nil), r.path...)}
	if r.complete {
		d.anchorPath(&completed)
	}
	ctop := completed.certs[len(completed.certs)-1]
	missing := firstFetched != nil && !aiaSelfSigned(firstFetched)
	switch {
	case !r.complete || firstFetched == nil:
		// Nothing usable came from AIA: the chain is as served.
		d.problems[ProblemMissingIntermediate] = true
		d.note("%s, whose issuer %s it did not send and which is not among the trusted roots. Fetching it through AIA did not complete the chain: %s. Fix the server to send its intermediate certificate(s) after its leaf, or get %s from its CA and trust it.",
			probeSentUpTo(len(d.served), top), top.Issuer, aiaFailure(out.err, top), top.Issuer)
		if len(completed.certs) > len(served.certs) {
			return completed
		}
		return served
	case completed.anchored:
		d.problems[ProblemMissingIntermediate] = true
		root := "a trusted root"
		if completed.anchor != nil {
			root = "the trusted root " + probeCertName(completed.anchor)
		}
		d.trust(firstFetched, r.sources[firstFetched])
		d.note("%s but not its issuer, the intermediate %s. Fetching it through AIA (%s) completes the chain to %s: fix the server to send the intermediate after its leaf, or trust the intermediate %s, fetched from AIA %s.",
			probeSentUpTo(len(d.served), top), probeSubject(firstFetched), netguard.RedactString(r.sources[firstFetched]), root, probeCertName(firstFetched), netguard.RedactString(r.sources[firstFetched]))
	default:
		d.problems[ProblemUnknownAuthority] = true
		d.trust(ctop, r.sources[ctop])
		from := ""
		if u := r.sources[ctop]; u != "" {
			from = ", fetched from AIA " + netguard.RedactString(u)
		}
		d.note("the chain, completed through AIA, ends at the root %s%s, which is not among the trusted roots: trust the root %s if you trust the CA that runs it.", probeCertName(ctop), from, probeCertName(ctop))
		if missing {
			d.problems[ProblemMissingIntermediate] = true
			d.note("The server also does not send its intermediate %s (fetched from AIA %s): fix it to send it after its leaf.", probeCertName(firstFetched), netguard.RedactString(r.sources[firstFetched]))
		}
	}
	return completed
}

// probeChainKey identifies a served chain for the AIA cache.
func probeChainKey(certs []*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.WriteString(Fingerprint(c))
	}
	return b.String()
}

// checkTimes reports the certificates of p outside their validity now.
func (d *probeDiagnosis) checkTimes(p certPath) {
	for i, c := range p.certs {
		role := probeCertRole(p, i)
		switch {
		case d.now.After(c.NotAfter):
			d.problems[ProblemExpired] = true
			d.note("The %s %s expired on %s (%s ago): %s.", role, probeCertName(c), c.NotAfter.UTC().Format(time.RFC3339), probeAgo(d.now.Sub(c.NotAfter)), probeRenewHint(role))
		case d.now.Before(c.NotBefore):
			d.problems[ProblemNotYetValid] = true
			d.note("The %s %s is not valid until %s (in %s): check this host's clock, or the server installed it too early.", role, probeCertName(c), c.NotBefore.UTC().Format(time.RFC3339), probeAgo(c.NotBefore.Sub(d.now)))
		}
	}
}

func probeCertRole(p certPath, i int) string {
	switch {
	case i == 0:
		return "leaf"
	case i == len(p.certs)-1 && aiaSelfSigned(p.certs[i]):
		return "root"
	}
	return "intermediate"
}

func probeRenewHint(role string) string {
	switch role {
	case "leaf":
		return "the server needs a renewed certificate"
	case "root":
		return "the root must be replaced by its successor, in the trust store and in the server's chain"
	}
	return "the server must send the CA's current intermediate"
}

// probeAgo rounds d for a message.
func probeAgo(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
	return d.Round(time.Second).String()
}

// checkWeak reports the certificates of p signed with SHA-1 or MD5; a
// self-signed root's own signature does not count, as in Go.
func (d *probeDiagnosis) checkWeak(p certPath, verifyErr error) {
	found := false
	for i, c := range p.certs {
		last := i == len(p.certs)-1
		// Nothing checks a trust anchor's own signature: a root's
		// self-signature, or an anchor taken from the roots.
		if !aiaWeakAlgorithm(c.SignatureAlgorithm) || last && (aiaSelfSigned(c) || p.anchor == c) {
			continue
		}
		found = true
		d.problems[ProblemWeakSignature] = true
		d.note("The %s %s is signed with %s, which Go (and so directdl) refuses whatever the trust store holds; Java 17 still accepts SHA-1 chains that end at a private root in its trust store, so CloudStack's agent may not complain. Have the CA reissue it with SHA-256.", probeCertRole(p, i), probeCertName(c), c.SignatureAlgorithm)
	}
	if !found && strings.Contains(verifyErr.Error(), "insecure algorithm") {
		d.problems[ProblemWeakSignature] = true
		d.note("A certificate of the chain is signed with an algorithm Go refuses: %s.", verifyErr)
	}
}

// checkHost reports a leaf that is not valid for the hop's host.
func (d *probeDiagnosis) checkHost(leaf *x509.Certificate) {
	if leaf.VerifyHostname(d.host) == nil {
		return
	}
	d.problems[ProblemHostnameMismatch] = true
	var names []string
	names = append(names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	sort.Strings(names)
	valid := "no name at all: it has no subject alternative names (Go ignores the common name " + fmt.Sprintf("%q", leaf.Subject.CommonName) + ")"
	if len(names) > 0 {
		valid = strings.Join(names, ", ")
	}
	d.note("The leaf %s is valid for %s, not %s. CloudStack's agent does not check host names, but directdl does: use a URL with one of its names, or have the server's certificate cover %s.", probeCertName(leaf), valid, d.host, d.host)
}

func (d *probeDiagnosis) trust(c *x509.Certificate, rawURL string) {
	if d.res.Trust != nil {
		return
	}
	ci := Describe(c)
	d.res.Trust = &ci
	if rawURL != "" {
		d.res.TrustURL = netguard.RedactString(rawURL)
	}
}

func (d *probeDiagnosis) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if len(d.notes) == 0 {
		// The first sentence follows "hop N (URL): ".
		d.notes = append(d.notes, strings.ToLower(s[:1])+s[1:])
		return
	}
	d.notes = append(d.notes, strings.ToUpper(s[:1])+s[1:])
}

// probeSentUpTo says what the server sent, up to top, the last certificate of
// the path it allows.
func probeSentUpTo(n int, top *x509.Certificate) string {
	if n == 1 {
		return "the server sent only its leaf " + probeCertName(top)
	}
	return fmt.Sprintf("the server sent %d certificates, the path through them ending at %s", n, probeCertName(top))
}

// aiaHint names c's caIssuers URLs, where its issuer may be found.
func aiaHint(c *x509.Certificate) string {
	if len(c.IssuingCertificateURL) == 0 {
		return fmt.Sprintf(" %s lists no AIA caIssuers URL to fetch its issuer from.", probeSubject(c))
	}
	urls := make([]string, len(c.IssuingCertificateURL))
	for i, u := range c.IssuingCertificateURL {
		urls[i] = netguard.RedactString(u)
	}
	return fmt.Sprintf(" Its AIA caIssuers URL (%s) says where the issuer is published.", strings.Join(urls, ", "))
}

// aiaFailure words why AIA did not complete a chain.
func aiaFailure(err error, top *x509.Certificate) string {
	if err == nil {
		return "no certificate was fetched"
	}
	if len(top.IssuingCertificateURL) == 0 {
		return fmt.Sprintf("%s lists no AIA caIssuers URL", probeSubject(top))
	}
	return strings.TrimPrefix(err.Error(), "certstore: ")
}
