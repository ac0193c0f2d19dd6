package certstore

// Test PKI and servers for the probe and AIA tests. Every unexported name
// here starts with probe or aia: other test files of the package are
// written separately.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// probeLoopback is the policy of every test: loopback allowed, which the
// zero Policy refuses.
var probeLoopback = Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

// probeCert is a certificate with its key.
type probeCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// probeSpec describes a certificate to make; zero fields take defaults: a
// CA when hosts is empty, valid from an hour ago for 30 days, ECDSA P-256,
// signed with the parent's default algorithm.
type probeSpec struct {
	cn        string
	hosts     []string // DNS names or IP addresses: a leaf
	aia       []string // caIssuers URLs
	notBefore time.Time
	notAfter  time.Time
	sigAlg    x509.SignatureAlgorithm
	rsaKey    bool
	key       crypto.Signer // reuse a key (cross-signing)
	leafNoCA  bool          // a self-signed leaf: not a CA
}

// probeMake makes the certificate spec describes, signed by parent (nil:
// self-signed).
func probeMake(t testing.TB, spec probeSpec, parent *probeCert) *probeCert {
	t.Helper()
	key := spec.key
	if key == nil {
		var err error
		if spec.rsaKey {
			key, err = rsa.GenerateKey(rand.Reader, 2048)
		} else {
			key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	nb, na := spec.notBefore, spec.notAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour).Truncate(time.Second)
	}
	if na.IsZero() {
		na = time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: spec.cn, Organization: []string{"directdl probe test"}},
		NotBefore:             nb,
		NotAfter:              na,
		BasicConstraintsValid: true,
		IssuingCertificateURL: spec.aia,
		SignatureAlgorithm:    spec.sigAlg,
	}
	if len(spec.hosts) == 0 && !spec.leafNoCA {
		tmpl.IsCA = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if spec.rsaKey {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range spec.hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	signer, issuer := key, tmpl
	if parent != nil {
		signer, issuer = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		t.Fatalf("making %s: %v", spec.cn, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &probeCert{cert: c, key: key}
}

// probePKI is a root, an intermediate and a leaf for the loopback
// addresses; the leaf's AIA points at leafAIA, the intermediate's at
// intAIA.
type probePKI struct {
	root, int, leaf *probeCert
}

func probeNewPKI(t testing.TB, name string, leafAIA, intAIA []string) *probePKI {
	t.Helper()
	p := &probePKI{}
	// Roots predate what they sign, as real ones do.
	p.root = probeMake(t, probeSpec{cn: name + " root", notBefore: time.Now().Add(-365 * 24 * time.Hour), notAfter: time.Now().Add(3650 * 24 * time.Hour)}, nil)
	p.int = probeMake(t, probeSpec{cn: name + " intermediate", aia: intAIA}, p.root)
	p.leaf = probeMake(t, probeSpec{cn: "mirror.test", hosts: probeHosts, aia: leafAIA}, p.int)
	return p
}

// probeHosts are the names test leaves are valid for.
var probeHosts = []string{"mirror.test", "edge.test", "127.0.0.1", "127.0.0.2", "127.0.0.3"}

func (p *probePKI) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.root.cert)
	return pool
}

// full is the chain a well-configured server sends; leafOnly a
// misconfigured one's.
func (p *probePKI) full() []*x509.Certificate     { return []*x509.Certificate{p.leaf.cert, p.int.cert} }
func (p *probePKI) leafOnly() []*x509.Certificate { return []*x509.Certificate{p.leaf.cert} }

// probeServer is a test server on one loopback address that counts the
// requests it gets.
type probeServer struct {
	URL      string // scheme://ip:port
	Port     string
	requests atomic.Int64
}

func (s *probeServer) Requests() int64 { return s.requests.Load() }

// probeListen listens on ip at port ("0": any), retrying a taken port a
// few times when a given port is wanted on another address.
func probeListen(t testing.TB, ip, port string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
	if err != nil {
		t.Fatalf("listening on %s:%s: %v", ip, port, err)
	}
	return l
}

// probeServe serves h on l (TLS with chain and key when chain is non-empty)
// until the test ends.
func probeServe(t testing.TB, l net.Listener, chain []*x509.Certificate, key crypto.Signer, h http.Handler) *probeServer {
	t.Helper()
	s := &probeServer{}
	_, s.Port, _ = net.SplitHostPort(l.Addr().String())
	scheme := "http"
	if len(chain) > 0 {
		cert := tls.Certificate{PrivateKey: key}
		for _, c := range chain {
			cert.Certificate = append(cert.Certificate, c.Raw)
		}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}})
		scheme = "https"
	}
	s.URL = scheme + "://" + l.Addr().String()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.requests.Add(1)
			h.ServeHTTP(w, r)
		}),
		// Handshakes the probe abandons on purpose are not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// probeTLS starts an HTTPS server on ip serving chain.
func probeTLS(t testing.TB, ip string, chain []*x509.Certificate, key crypto.Signer, h http.Handler) *probeServer {
	t.Helper()
	return probeServe(t, probeListen(t, ip, "0"), chain, key, h)
}

// probeHTTP starts a plain HTTP server on ip.
func probeHTTP(t testing.TB, ip string, h http.Handler) *probeServer {
	t.Helper()
	return probeServe(t, probeListen(t, ip, "0"), nil, nil, h)
}

// probeSamePort listens on every ip at one port, for a name that resolves
// to all of them.
func probeSamePort(t testing.TB, ips ...string) []net.Listener {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		first, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(first.Addr().String())
		ls := []net.Listener{first}
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == len(ips) {
			return ls
		}
		for _, l := range ls {
			l.Close()
		}
	}
	t.Fatalf("no port free on all of %v", ips)
	return nil
}

// probeContent answers with a few bytes, honouring Range as a file server
// does.
func probeContent() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "img.qcow2", time.Unix(0, 0), bytes.NewReader([]byte("QFI\xfb template bytes")))
	})
}

// probeRedirect answers every request with a 302 to to.
func probeRedirect(to string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, to, http.StatusFound)
	})
}

// probeResolver is a fake Resolver: names map to loopback addresses.
type probeResolver map[string][]netip.Addr

func (r probeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host (fake resolver)", Name: host, IsNotFound: true}
}

// aiaServer is a plain HTTP server on 127.0.0.3 that serves bodies by path
// and counts requests per path.
type aiaServer struct {
	*probeServer
	mu     sync.Mutex
	bodies map[string][]byte
	hits   map[string]int
	block  map[string]bool // paths that answer only when the request ends
}

func aiaStart(t testing.TB, ip string) *aiaServer {
	t.Helper()
	a := &aiaServer{bodies: map[string][]byte{}, hits: map[string]int{}, block: map[string]bool{}}
	a.probeServer = probeHTTP(t, ip, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.hits[r.URL.Path]++
		body, ok := a.bodies[r.URL.Path]
		block := a.block[r.URL.Path]
		a.mu.Unlock()
		if block {
			<-r.Context().Done()
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-cert")
		_, _ = w.Write(body)
	}))
	return a
}

// url is the URL of path on the server.
func (a *aiaServer) url(path string) string { return a.URL + path }

func (a *aiaServer) set(path string, body []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.bodies[path] = body
}

func (a *aiaServer) setBlocking(path string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.block[path] = true
}

func (a *aiaServer) hitsOf(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hits[path]
}

// aiaPKCS7 encodes certs as a DER PKCS #7 certs-only SignedData, the
// .p7c format.
func aiaPKCS7(t testing.TB, certs ...*x509.Certificate) []byte {
	t.Helper()
	var raw []asn1.RawValue
	for _, c := range certs {
		raw = append(raw, asn1.RawValue{FullBytes: c.Raw})
	}
	set, err := asn1.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	// asn1.Marshal wrote a SEQUENCE OF; the certificates field is
	// [0] IMPLICIT SET OF: same contents, another tag.
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(set, &seq); err != nil {
		t.Fatal(err)
	}
	certsField := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: seq.Bytes}
	type encap struct {
		ContentType asn1.ObjectIdentifier
	}
	type signedData struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		ContentInfo      encap
		Certificates     asn1.RawValue
		SignerInfos      asn1.RawValue
	}
	emptySet := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true}
	sd, err := asn1.Marshal(signedData{
		Version:          1,
		DigestAlgorithms: emptySet,
		ContentInfo:      encap{ContentType: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}},
		Certificates:     certsField,
		SignerInfos:      emptySet,
	})
	if err != nil {
		t.Fatal(err)
	}
	type contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}
	out, err := asn1.Marshal(contentInfo{
		ContentType: oidSignedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sd},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
