package certstore

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// probeRun probes rawURL with loopback allowed and fails the test on an
// error.
func probeRun(t testing.TB, rawURL string, opts ProbeOptions) *ProbeReport {
	t.Helper()
	if opts.Policy.Allow == nil {
		opts.Policy = probeLoopback
	}
	rep, err := Probe(context.Background(), rawURL, opts)
	if err != nil {
		t.Fatalf("Probe(%s): %v", rawURL, err)
	}
	return rep
}

// probeDump is the report as JSON, for failure messages.
func probeDump(rep *ProbeReport) string {
	b, _ := json.MarshalIndent(rep, "", "  ")
	return string(b)
}

// The case: hop 1 is fine and redirects to hop 2 on another
// address, which serves its leaf without the intermediate. The probe must
// name hop 2 and, with AIA, the intermediate to trust.
func TestProbeRedirectToMissingIntermediate(t *testing.T) {
	t.Parallel()
	aia := aiaStart(t, "127.0.0.3")
	pki := probeNewPKI(t, "headline", []string{aia.url("/int.cer")}, nil)
	aia.set("/int.cer", pki.int.cert.Raw)
	hop2 := probeTLS(t, "127.0.0.2", pki.leafOnly(), pki.leaf.key, probeContent())
	hop1 := probeTLS(t, "127.0.0.1", pki.full(), pki.leaf.key, probeRedirect(hop2.URL+"/templates/img.qcow2"))

	for _, withAIA := range []bool{false, true} {
		name := "without AIA"
		if withAIA {
			name = "with AIA"
		}
		t.Run(name, func(t *testing.T) {
			rep := probeRun(t, hop1.URL+"/img.qcow2", ProbeOptions{Roots: pki.roots(), AIA: withAIA})
			if len(rep.Hops) != 2 {
				t.Fatalf("got %d hops, want 2:\n%s", len(rep.Hops), probeDump(rep))
			}
			h1, h2 := rep.Hops[0], rep.Hops[1]
			if !h1.TLS.Verified || h1.Status != http.StatusFound || h1.Location != hop2.URL+"/templates/img.qcow2" {
				t.Errorf("hop 1: verified %v, status %d, location %q; want a verified 302 to hop 2", h1.TLS.Verified, h1.Status, h1.Location)
			}
			if len(h1.TLS.Chain) != 2 || len(h2.TLS.Chain) != 1 || h2.TLS.Chain[0].SHA256 != Fingerprint(pki.leaf.cert) {
				t.Errorf("chains as served: hop 1 has %d certificates (want 2), hop 2 %d (want the leaf only)", len(h1.TLS.Chain), len(h2.TLS.Chain))
			}
			if h2.Index != 2 || h2.URL != hop2.URL+"/templates/img.qcow2" {
				t.Errorf("hop 2 is index %d, URL %s", h2.Index, h2.URL)
			}
			if h2.TLS.Verified || h2.TLS.Problem != ProblemMissingIntermediate {
				t.Fatalf("hop 2: verified %v, problem %q; want missing-intermediate", h2.TLS.Verified, h2.TLS.Problem)
			}
			ex := h2.TLS.Explanation
			if !strings.HasPrefix(ex, "hop 2 ("+h2.URL+")") {
				t.Errorf("the explanation does not start by naming hop 2 and its URL: %s", ex)
			}
			if rep.OK || rep.FinalURL != h2.URL || h2.RequestSent || hop2.Requests() != 0 {
				t.Errorf("ok %v, final %s, request sent %v (%d at the server); want not ok, hop 2 final, no request", rep.OK, rep.FinalURL, h2.RequestSent, hop2.Requests())
			}
			intFP := Fingerprint(pki.int.cert)
			if !withAIA {
				if h2.TLS.Trust != nil || aia.hitsOf("/int.cer") != 0 {
					t.Errorf("without AIA: trust %v, AIA fetched %d times; want neither", h2.TLS.Trust, aia.hitsOf("/int.cer"))
				}
				if !strings.Contains(ex, aia.url("/int.cer")) {
					t.Errorf("the explanation does not point at the leaf's caIssuers URL: %s", ex)
				}
				return
			}
			if h2.TLS.Trust == nil || h2.TLS.Trust.SHA256 != intFP || h2.TLS.TrustURL != aia.url("/int.cer") {
				t.Fatalf("trust %+v from %q; want the intermediate %s from %s", h2.TLS.Trust, h2.TLS.TrustURL, intFP, aia.url("/int.cer"))
			}
			if !strings.Contains(ex, intFP) || !strings.Contains(ex, aia.url("/int.cer")) || !strings.Contains(ex, "trust the intermediate") {
				t.Errorf("the explanation does not name the intermediate's fingerprint and AIA URL as what to trust: %s", ex)
			}
			want := []string{Fingerprint(pki.leaf.cert), intFP}
			var got []string
			for _, c := range h2.TLS.Completed {
				got = append(got, c.SHA256)
			}
			if !slices.Equal(got, want) {
				t.Errorf("completed chain %v, want leaf and intermediate %v", got, want)
			}
			if len(h2.TLS.Fetched) != 1 || h2.TLS.Fetched[0].URL != aia.url("/int.cer") {
				t.Errorf("fetched %+v; want the intermediate from %s", h2.TLS.Fetched, aia.url("/int.cer"))
			}
		})
	}
}

// probeClassCase is one server setup and the problems the probe must
// report for it.
type probeClassCase struct {
	name  string
	chain []*x509.Certificate
	key   *probeCert
	roots *x509.CertPool
	aia   bool
	now   time.Time
	want  []Problem
	// trust is the certificate to trust, if any; mention must appear in
	// the explanation.
	trust   *x509.Certificate
	mention []string
}

func TestProbeClassifies(t *testing.T) {
	t.Parallel()
	aia := aiaStart(t, "127.0.0.3")
	good := probeNewPKI(t, "trusted", []string{aia.url("/good-int.cer")}, nil)
	aia.set("/good-int.cer", good.int.cert.Raw)
	// other chains to a root that is not trusted, through AIA too.
	other := probeNewPKI(t, "other", []string{aia.url("/other-int.cer")}, []string{aia.url("/other-root.cer")})
	aia.set("/other-int.cer", other.int.cert.Raw)
	aia.set("/other-root.cer", other.root.cert.Raw)

	now := time.Now()
	expiredLeaf := probeMake(t, probeSpec{cn: "expired.test", hosts: probeHosts, notBefore: now.Add(-60 * 24 * time.Hour), notAfter: now.Add(-24 * time.Hour)}, good.int)
	futureLeaf := probeMake(t, probeSpec{cn: "future.test", hosts: probeHosts, notBefore: now.Add(48 * time.Hour), notAfter: now.Add(90 * 24 * time.Hour)}, good.int)
	expiredInt := probeMake(t, probeSpec{cn: "expired intermediate", notBefore: now.Add(-60 * 24 * time.Hour), notAfter: now.Add(-time.Hour)}, good.root)
	leafOfExpiredInt := probeMake(t, probeSpec{cn: "mirror.test", hosts: probeHosts, notBefore: now.Add(-59 * 24 * time.Hour)}, expiredInt)
	otherName := probeMake(t, probeSpec{cn: "cdn.example.net", hosts: []string{"cdn.example.net", "10.9.9.9"}}, good.int)
	rsaInt := probeMake(t, probeSpec{cn: "rsa intermediate", rsaKey: true}, good.root)
	sha1Leaf := probeMake(t, probeSpec{cn: "sha1.test", hosts: probeHosts, rsaKey: true, sigAlg: x509.SHA1WithRSA}, rsaInt)
	selfSigned := probeMake(t, probeSpec{cn: "selfsigned.test", hosts: probeHosts, leafNoCA: true}, nil)
	expiredOtherName := probeMake(t, probeSpec{cn: "both.test", hosts: []string{"both.test"}, notBefore: now.Add(-60 * 24 * time.Hour), notAfter: now.Add(-24 * time.Hour)}, good.int)

	cases := []probeClassCase{
		{name: "ok", chain: good.full(), key: good.leaf, roots: good.roots()},
		{name: "ok with the root sent too", chain: []*x509.Certificate{good.leaf.cert, good.int.cert, good.root.cert}, key: good.leaf, roots: good.roots()},
		{name: "ok with the chain out of order", chain: []*x509.Certificate{good.leaf.cert, good.root.cert, good.int.cert}, key: good.leaf, roots: good.roots()},
		{name: "missing intermediate", chain: good.leafOnly(), key: good.leaf, roots: good.roots(),
			want: []Problem{ProblemMissingIntermediate}, mention: []string{"not among the trusted roots", Fingerprint(good.leaf.cert)}},
		{name: "missing intermediate, AIA completes it", chain: good.leafOnly(), key: good.leaf, roots: good.roots(), aia: true,
			want: []Problem{ProblemMissingIntermediate}, trust: good.int.cert},
		{name: "unknown root, sent by the server", chain: []*x509.Certificate{other.leaf.cert, other.int.cert, other.root.cert}, key: other.leaf, roots: good.roots(),
			want: []Problem{ProblemUnknownAuthority}, trust: other.root.cert, mention: []string{"trust the root"}},
		{name: "unknown root, without AIA", chain: other.full(), key: other.leaf, roots: good.roots(),
			want: []Problem{ProblemMissingIntermediate}, mention: []string{"or " + other.int.cert.Issuer.String() + " is a root you do not trust"}},
		{name: "unknown root, through AIA", chain: other.full(), key: other.leaf, roots: good.roots(), aia: true,
			want: []Problem{ProblemUnknownAuthority}, trust: other.root.cert, mention: []string{aia.url("/other-root.cer")}},
		{name: "unknown root and missing intermediate, through AIA", chain: other.leafOnly(), key: other.leaf, roots: good.roots(), aia: true,
			want: []Problem{ProblemUnknownAuthority, ProblemMissingIntermediate}, trust: other.root.cert, mention: []string{Fingerprint(other.int.cert)}},
		{name: "expired leaf", chain: []*x509.Certificate{expiredLeaf.cert, good.int.cert}, key: expiredLeaf, roots: good.roots(),
			want: []Problem{ProblemExpired}, mention: []string{"leaf " + probeCertName(expiredLeaf.cert) + " expired on " + expiredLeaf.cert.NotAfter.UTC().Format(time.RFC3339)}},
		{name: "expired intermediate", chain: []*x509.Certificate{leafOfExpiredInt.cert, expiredInt.cert}, key: leafOfExpiredInt, roots: good.roots(),
			want: []Problem{ProblemExpired}, mention: []string{"intermediate " + probeCertName(expiredInt.cert) + " expired"}},
		{name: "not yet valid", chain: []*x509.Certificate{futureLeaf.cert, good.int.cert}, key: futureLeaf, roots: good.roots(),
			want: []Problem{ProblemNotYetValid}, mention: []string{"not valid until " + futureLeaf.cert.NotBefore.UTC().Format(time.RFC3339)}},
		{name: "not yet valid by the caller's clock", chain: good.full(), key: good.leaf, roots: good.roots(), now: now.Add(-24 * time.Hour),
			want: []Problem{ProblemNotYetValid}},
		{name: "hostname mismatch", chain: []*x509.Certificate{otherName.cert, good.int.cert}, key: otherName, roots: good.roots(),
			want: []Problem{ProblemHostnameMismatch}, mention: []string{"valid for 10.9.9.9, cdn.example.net, not 127.0.0.1", "CloudStack's agent does not check host names"}},
		{name: "weak signature", chain: []*x509.Certificate{sha1Leaf.cert, rsaInt.cert}, key: sha1Leaf, roots: good.roots(),
			want: []Problem{ProblemWeakSignature}, mention: []string{"leaf " + probeCertName(sha1Leaf.cert) + " is signed with SHA1-RSA", "Java 17"}},
		{name: "self-signed", chain: []*x509.Certificate{selfSigned.cert}, key: selfSigned, roots: good.roots(),
			want: []Problem{ProblemSelfSigned}, trust: selfSigned.cert, mention: []string{"pins"}},
		{name: "self-signed and trusted", chain: []*x509.Certificate{selfSigned.cert}, key: selfSigned, roots: probePool(selfSigned.cert)},
		{name: "expired and for another name", chain: []*x509.Certificate{expiredOtherName.cert, good.int.cert}, key: expiredOtherName, roots: good.roots(),
			want: []Problem{ProblemExpired, ProblemHostnameMismatch}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := probeTLS(t, "127.0.0.1", tc.chain, tc.key.key, probeContent())
			opts := ProbeOptions{Roots: tc.roots, AIA: tc.aia}
			if !tc.now.IsZero() {
				opts.Now = func() time.Time { return tc.now }
			}
			rep := probeRun(t, s.URL+"/img.qcow2", opts)
			if len(rep.Hops) != 1 || rep.Hops[0].TLS == nil {
				t.Fatalf("want one TLS hop:\n%s", probeDump(rep))
			}
			res := rep.Hops[0].TLS
			t.Logf("explanation: %s", res.Explanation)
			want := tc.want
			if want == nil {
				want = []Problem{}
			}
			if !slices.Equal(res.Problems, want) {
				t.Fatalf("problems %q, want %q; explanation: %s", res.Problems, want, res.Explanation)
			}
			if len(want) == 0 {
				if !res.Verified || res.Problem != ProblemNone || !rep.OK || rep.Hops[0].Status != http.StatusPartialContent || s.Requests() != 1 {
					t.Fatalf("verified %v, problem %q, ok %v, status %d, %d requests; want a verified hop answered 206 to one request", res.Verified, res.Problem, rep.OK, rep.Hops[0].Status, s.Requests())
				}
				return
			}
			if res.Verified || res.Problem != want[0] || rep.OK {
				t.Errorf("verified %v, problem %q, ok %v; want unverified, %q, not ok", res.Verified, res.Problem, rep.OK, want[0])
			}
			if !strings.HasPrefix(res.Explanation, "hop 1 ("+s.URL+"/img.qcow2): ") {
				t.Errorf("the explanation does not name the hop: %s", res.Explanation)
			}
			if tc.trust != nil {
				if res.Trust == nil || res.Trust.SHA256 != Fingerprint(tc.trust) {
					t.Errorf("trust %+v, want %s", res.Trust, probeCertName(tc.trust))
				}
				if !strings.Contains(res.Explanation, probeCertName(tc.trust)) {
					t.Errorf("the explanation does not name %s: %s", probeCertName(tc.trust), res.Explanation)
				}
			} else if res.Trust != nil {
				t.Errorf("trust %+v, want none", res.Trust)
			}
			for _, m := range tc.mention {
				if !strings.Contains(res.Explanation, m) {
					t.Errorf("the explanation does not say %q: %s", m, res.Explanation)
				}
			}
		})
	}
}

func probePool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// A name resolving to two addresses whose servers send different chains:
// both are recorded and the bad one is named.
func TestProbeAllAddresses(t *testing.T) {
	t.Parallel()
	pki := probeNewPKI(t, "edges", nil, nil)
	ls := probeSamePort(t, "127.0.0.1", "127.0.0.2")
	good := probeServe(t, ls[0], pki.full(), pki.leaf.key, probeContent())
	bad := probeServe(t, ls[1], pki.leafOnly(), pki.leaf.key, probeContent())
	res := probeResolver{"edge.test": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}}
	u := "https://edge.test:" + good.Port + "/img.qcow2"

	rep := probeRun(t, u, ProbeOptions{Roots: pki.roots(), Resolver: res, AllAddresses: true})
	if len(rep.Hops) != 1 {
		t.Fatalf("got %d hops:\n%s", len(rep.Hops), probeDump(rep))
	}
	h := rep.Hops[0]
	if !slices.Equal(h.Addresses, []string{"127.0.0.1", "127.0.0.2"}) || len(h.Edges) != 2 {
		t.Fatalf("addresses %v, %d edges; want both addresses probed:\n%s", h.Addresses, len(h.Edges), probeDump(rep))
	}
	e1, e2 := h.Edges[0], h.Edges[1]
	if e1.Address != "127.0.0.1" || !e1.TLS.Verified || len(e1.TLS.Chain) != 2 {
		t.Errorf("edge 127.0.0.1: %+v; want a verified 2-certificate chain", e1)
	}
	if e2.Address != "127.0.0.2" || e2.TLS.Verified || e2.TLS.Problem != ProblemMissingIntermediate || len(e2.TLS.Chain) != 1 {
		t.Errorf("edge 127.0.0.2: %+v; want the leaf alone, missing-intermediate", e2)
	}
	if !strings.HasPrefix(e2.TLS.Explanation, "hop 1 ("+u+") at 127.0.0.2: ") {
		t.Errorf("the bad edge's explanation does not name it: %s", e2.TLS.Explanation)
	}
	if e1.TLS.ServerName != "edge.test" || e2.TLS.ServerName != "edge.test" {
		t.Errorf("SNI %q and %q, want edge.test for both", e1.TLS.ServerName, e2.TLS.ServerName)
	}
	if rep.OK || h.Verified() {
		t.Errorf("ok %v, hop verified %v with a bad edge; want false", rep.OK, h.Verified())
	}
	if h.Address != "127.0.0.1" || !h.RequestSent || h.Status != http.StatusPartialContent || good.Requests() != 1 || bad.Requests() != 0 {
		t.Errorf("request went to %s (sent %v, status %d; %d and %d requests at the servers); want one to the first, verified address", h.Address, h.RequestSent, h.Status, good.Requests(), bad.Requests())
	}

	// Without AllAddresses only the first address is seen, and it is fine.
	rep = probeRun(t, u, ProbeOptions{Roots: pki.roots(), Resolver: res})
	if !rep.OK || len(rep.Hops[0].Edges) != 0 {
		t.Errorf("without AllAddresses: ok %v, %d edges; want ok and no edges", rep.OK, len(rep.Hops[0].Edges))
	}
}

// An unverified hop gets no request unless FollowUnverified says so.
func TestProbeUnverifiedHop(t *testing.T) {
	t.Parallel()
	pki := probeNewPKI(t, "unverified", nil, nil)
	last := probeTLS(t, "127.0.0.1", pki.full(), pki.leaf.key, probeContent())
	bad := probeTLS(t, "127.0.0.2", pki.leafOnly(), pki.leaf.key, probeRedirect(last.URL+"/final"))
	u := bad.URL + "/img.qcow2?X-Amz-Signature=s3cr3t&X-Amz-Expires=60"

	rep := probeRun(t, u, ProbeOptions{Roots: pki.roots()})
	if bad.Requests() != 0 {
		t.Fatalf("the unverified server got %d requests, want none", bad.Requests())
	}
	h := rep.Hops[0]
	if len(rep.Hops) != 1 || h.Status != 0 || h.RequestSent || h.TLS.Problem != ProblemMissingIntermediate || len(h.TLS.Chain) != 1 || rep.OK {
		t.Fatalf("want one unverified hop with its chain, status 0, no request:\n%s", probeDump(rep))
	}
	if !strings.Contains(rep.Stopped, "was not sent") {
		t.Errorf("stopped %q does not say the request was not sent", rep.Stopped)
	}
	if js := probeDump(rep); strings.Contains(js, "s3cr3t") {
		t.Errorf("the report holds the signature:\n%s", js)
	}

	rep = probeRun(t, u, ProbeOptions{Roots: pki.roots(), FollowUnverified: true})
	if bad.Requests() != 1 || last.Requests() != 1 || len(rep.Hops) != 2 {
		t.Fatalf("FollowUnverified: %d and %d requests, %d hops; want the redirect followed:\n%s", bad.Requests(), last.Requests(), len(rep.Hops), probeDump(rep))
	}
	if rep.Hops[0].Status != http.StatusFound || !rep.Hops[1].TLS.Verified || rep.OK {
		t.Errorf("FollowUnverified: status %d, hop 2 verified %v, ok %v; want 302, true, false", rep.Hops[0].Status, rep.Hops[1].TLS.Verified, rep.OK)
	}
}

func TestProbeRedirects(t *testing.T) {
	t.Parallel()
	pki := probeNewPKI(t, "redirects", nil, nil)
	plain := probeHTTP(t, "127.0.0.1", probeContent())
	downgrade := probeTLS(t, "127.0.0.1", pki.full(), pki.leaf.key, probeRedirect(plain.URL+"/img"))
	relative := probeTLS(t, "127.0.0.1", pki.full(), pki.leaf.key, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a/start" {
			w.Header().Set("Location", "../files/img?x=1")
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		probeContent().ServeHTTP(w, r)
	}))
	var loopB *probeServer
	loopA := probeTLS(t, "127.0.0.1", pki.full(), pki.leaf.key, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loopB.URL+"/b", http.StatusTemporaryRedirect)
	}))
	loopB = probeTLS(t, "127.0.0.2", pki.full(), pki.leaf.key, probeRedirect(loopA.URL+"/a"))
	toFTP := probeTLS(t, "127.0.0.1", pki.full(), pki.leaf.key, probeRedirect("ftp://127.0.0.1/img"))
	// A chain of three redirects, for the limit.
	hop3 := probeTLS(t, "127.0.0.3", pki.full(), pki.leaf.key, probeContent())
	hop2 := probeTLS(t, "127.0.0.2", pki.full(), pki.leaf.key, probeRedirect(hop3.URL+"/3"))
	hop1 := probeTLS(t, "127.0.0.1", pki.full(), pki.leaf.key, probeRedirect(hop2.URL+"/2"))
	only1 := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

	cases := []struct {
		name     string
		url      string
		opts     ProbeOptions
		hops     int
		ok       bool
		stopped  string
		lastURL  string
		hopError string
	}{
		{name: "plain http", url: plain.URL + "/img", hops: 1, ok: true},
		{name: "https to http refused", url: downgrade.URL + "/img", hops: 1, stopped: "downgrades HTTPS to HTTP"},
		{name: "relative location", url: relative.URL + "/a/start", hops: 2, ok: true, lastURL: relative.URL + "/files/img?x=1"},
		{name: "loop", url: loopA.URL + "/a", hops: 2, stopped: "redirect loop: hop 2"},
		{name: "other scheme", url: toFTP.URL + "/img", hops: 1, stopped: "only http and https"},
		{name: "three hops", url: hop1.URL + "/1", hops: 3, ok: true, lastURL: hop3.URL + "/3"},
		{name: "too many", url: hop1.URL + "/1", opts: ProbeOptions{MaxRedirects: 1}, hops: 2, stopped: "stopped after 1 redirects"},
		{name: "no redirects", url: hop1.URL + "/1", opts: ProbeOptions{MaxRedirects: -1}, hops: 1, stopped: "redirects are not followed"},
		{name: "policy denies hop 2", url: hop1.URL + "/1", opts: ProbeOptions{Policy: only1}, hops: 2, stopped: "hop 2", hopError: "127.0.0.2 is loopback"},
		{name: "policy denies hop 1", url: hop2.URL + "/2", opts: ProbeOptions{Policy: only1}, hops: 1, stopped: "hop 1", hopError: "allow it with an allow CIDR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.opts.Roots = pki.roots()
			rep := probeRun(t, tc.url, tc.opts)
			if len(rep.Hops) != tc.hops || rep.OK != tc.ok || !strings.Contains(rep.Stopped, tc.stopped) || tc.stopped == "" && rep.Stopped != "" {
				t.Fatalf("%d hops, ok %v, stopped %q; want %d, %v, %q:\n%s", len(rep.Hops), rep.OK, rep.Stopped, tc.hops, tc.ok, tc.stopped, probeDump(rep))
			}
			if tc.lastURL != "" && rep.FinalURL != tc.lastURL {
				t.Errorf("final URL %s, want %s", rep.FinalURL, tc.lastURL)
			}
			if last := rep.Final(); !strings.Contains(last.Error, tc.hopError) || tc.hopError == "" && last.Error != "" {
				t.Errorf("last hop's error %q, want %q", last.Error, tc.hopError)
			}
		})
	}
	if plainRep := probeRun(t, plain.URL+"/img", ProbeOptions{Roots: pki.roots()}); plainRep.Hops[0].TLS != nil {
		t.Errorf("a plain HTTP hop has TLS %+v", plainRep.Hops[0].TLS)
	}
}

func TestProbeInvalidInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		opts ProbeOptions
	}{
		{url: "ftp://mirror.test/img"},
		{url: "https:///img"},
		{url: "://"},
		{url: "https://mirror.test/", opts: ProbeOptions{Timeout: -time.Second}},
		{url: "https://mirror.test/", opts: ProbeOptions{Policy: Policy{OnlyAllowed: true}}},
		{url: "https://mirror.test/", opts: ProbeOptions{Policy: Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8")}}}},
		{url: "https://mirror.test/", opts: ProbeOptions{AIA: true, AIAOptions: CompleteOptions{MaxDepth: -1}}},
	} {
		rep, err := Probe(context.Background(), tc.url, tc.opts)
		if !errors.Is(err, ErrInvalidOptions) || rep != nil {
			t.Errorf("Probe(%q, %+v) = %v, %v; want ErrInvalidOptions", tc.url, tc.opts, rep, err)
		}
	}
}

// A hop that cannot be resolved or reached is reported, not returned as
// an error.
func TestProbeUnreachable(t *testing.T) {
	t.Parallel()
	l := probeListen(t, "127.0.0.1", "0")
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	for _, tc := range []struct{ url, want string }{
		{"https://" + addr + "/img", "connection refused"},
		{"https://nowhere.test/img", "no such host"},
	} {
		rep := probeRun(t, tc.url, ProbeOptions{Roots: x509.NewCertPool(), Resolver: probeResolver{}})
		if rep.OK || len(rep.Hops) != 1 || !strings.Contains(rep.Hops[0].Error, tc.want) || !strings.Contains(rep.Stopped, "could not be probed") {
			t.Errorf("%s: want a failed hop saying %q:\n%s", tc.url, tc.want, probeDump(rep))
		}
	}
}

// The report's JSON has the keys ddctl's contract names.
func TestProbeJSONKeys(t *testing.T) {
	t.Parallel()
	pki := probeNewPKI(t, "json", nil, nil)
	s := probeTLS(t, "127.0.0.1", pki.full(), pki.leaf.key, probeContent())
	rep := probeRun(t, s.URL+"/img", ProbeOptions{Roots: pki.roots()})
	var m map[string]any
	if err := json.Unmarshal([]byte(probeDump(rep)), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"hops", "final_url", "ok"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report has no %q", k)
		}
	}
	hop := m["hops"].([]any)[0].(map[string]any)
	for _, k := range []string{"url", "status", "location", "addresses", "tls"} {
		if _, ok := hop[k]; !ok {
			t.Errorf("hop has no %q", k)
		}
	}
	tlsm := hop["tls"].(map[string]any)
	for _, k := range []string{"chain", "verified", "problem"} {
		if _, ok := tlsm[k]; !ok {
			t.Errorf("tls has no %q", k)
		}
	}
	cert := tlsm["chain"].([]any)[0].(map[string]any)
	for _, k := range []string{"subject", "issuer", "not_before", "not_after", "sha256", "is_ca"} {
		if _, ok := cert[k]; !ok {
			t.Errorf("chain certificate has no %q", k)
		}
	}
}

// A hop that stops answering is bounded by Timeout.
func TestProbeTimeout(t *testing.T) {
	t.Parallel()
	pki := probeNewPKI(t, "timeout", nil, nil)
	s := probeTLS(t, "127.0.0.1", pki.full(), pki.leaf.key, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	rep := probeRun(t, s.URL+"/img", ProbeOptions{Roots: pki.roots(), Timeout: 300 * time.Millisecond})
	if h := rep.Hops[0]; !strings.Contains(h.Error, "timed out after 300ms") || !h.TLS.Verified || rep.OK {
		t.Errorf("want a verified hop that timed out:\n%s", probeDump(rep))
	}
}

func BenchmarkProbe(b *testing.B) {
	pki := probeNewPKI(b, "bench", nil, nil)
	hop3 := probeTLS(b, "127.0.0.3", pki.full(), pki.leaf.key, probeContent())
	hop2 := probeTLS(b, "127.0.0.2", pki.full(), pki.leaf.key, probeRedirect(hop3.URL+"/3"))
	hop1 := probeTLS(b, "127.0.0.1", pki.full(), pki.leaf.key, probeRedirect(hop2.URL+"/2"))
	opts := ProbeOptions{Roots: pki.roots(), Policy: probeLoopback}
	for _, bc := range []struct {
		name string
		url  string
		hops int
	}{{"1hop", hop3.URL + "/3", 1}, {"3hops", hop1.URL + "/1", 3}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				rep, err := Probe(context.Background(), bc.url, opts)
				if err != nil || !rep.OK || len(rep.Hops) != bc.hops {
					b.Fatalf("probe: %v\n%s", err, probeDump(rep))
				}
			}
		})
	}
}

// When ctx ends, Probe returns what it has with ctx's error.
func TestProbeCanceled(t *testing.T) {
	t.Parallel()
	pki := probeNewPKI(t, "cancel", nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := probeTLS(t, "127.0.0.1", pki.full(), pki.leaf.key, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel() // the caller gives up while the hop is waiting for its response
		<-r.Context().Done()
	}))
	rep, err := Probe(ctx, s.URL+"/img", ProbeOptions{Roots: pki.roots(), Policy: probeLoopback})
	if !errors.Is(err, context.Canceled) || rep == nil || len(rep.Hops) != 1 || rep.OK || !strings.Contains(rep.Stopped, "interrupted at hop 1") {
		t.Fatalf("err %v; want context.Canceled and the report so far:\n%s", err, probeDump(rep))
	}
}

// A signed URL's secret reaches the verified server that needs it, and
// nowhere in the report.
func TestProbeRedactsSecrets(t *testing.T) {
	t.Parallel()
	pki := probeNewPKI(t, "secrets", nil, nil)
	got := make(chan string, 1)
	target := probeTLS(t, "127.0.0.2", pki.full(), pki.leaf.key, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query().Get("X-Amz-Signature")
		probeContent().ServeHTTP(w, r)
	}))
	front := probeTLS(t, "127.0.0.1", pki.full(), pki.leaf.key, probeRedirect(target.URL+"/obj?X-Amz-Credential=AKIDSECRET&X-Amz-Signature=s3cr3t"))
	rep := probeRun(t, "https://user:pa55word@"+strings.TrimPrefix(front.URL, "https://")+"/img?token=t0ken", ProbeOptions{Roots: pki.roots()})
	if !rep.OK || len(rep.Hops) != 2 {
		t.Fatalf("want two verified hops:\n%s", probeDump(rep))
	}
	if sig := <-got; sig != "s3cr3t" {
		t.Errorf("the target got signature %q, want the real one", sig)
	}
	js := probeDump(rep)
	for _, secret := range []string{"s3cr3t", "AKIDSECRET", "pa55word", "t0ken"} {
		if strings.Contains(js, secret) {
			t.Errorf("the report holds %q:\n%s", secret, js)
		}
	}
}
