package certstore_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/directdl/directdl/certstore"
)

// A mirror that sends its leaf without the intermediate: the probe names
// the problem and, with AIA, the certificate that would fix it.
func ExampleProbe() {
	// The CA publishes its intermediate at the caIssuers URL its leaves
	// carry, as real CAs do.
	var intermediateDER []byte
	ca := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(intermediateDER)
	}))
	defer ca.Close()
	root, rootKey := probeExampleCert("Example Root CA", nil, nil, nil)
	inter, interKey := probeExampleCert("Example Intermediate CA", root, rootKey, nil)
	leaf, leafKey := probeExampleCert("mirror.example", inter, interKey, []string{ca.URL + "/intermediate.cer"})
	intermediateDER = inter.Raw

	mirror := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "template bytes")
	}))
	mirror.TLS = &tls.Config{Certificates: []tls.Certificate{{
		Certificate: [][]byte{leaf.Raw}, // no intermediate: misconfigured
		PrivateKey:  leafKey,
	}}}
	mirror.StartTLS()
	defer mirror.Close()

	roots := x509.NewCertPool()
	roots.AddCert(root)
	rep, err := certstore.Probe(context.Background(), mirror.URL+"/template.qcow2", certstore.ProbeOptions{
		Roots: roots,
		// httptest listens on loopback, which the default policy refuses.
		Policy: certstore.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		AIA:    true,
	})
	if err != nil {
		log.Fatal(err)
	}
	hop := rep.Hops[0]
	fmt.Println("ok:", rep.OK)
	fmt.Println("certificates sent:", len(hop.TLS.Chain))
	fmt.Println("problem:", hop.TLS.Problem)
	fmt.Println("request sent:", hop.RequestSent)
	fmt.Println("trust the intermediate:", hop.TLS.Trust.SHA256 == certstore.Fingerprint(inter))
	// Output:
	// ok: false
	// certificates sent: 1
	// problem: missing-intermediate
	// request sent: false
	// trust the intermediate: true
}

// Completing a leaf-only chain through its AIA caIssuers URL; the fetched
// intermediate is a candidate, which the caller verifies against its own
// roots.
func ExampleComplete() {
	var intermediateDER []byte
	ca := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(intermediateDER)
	}))
	defer ca.Close()
	root, rootKey := probeExampleCert("Example Root CA", nil, nil, nil)
	inter, interKey := probeExampleCert("Example Intermediate CA", root, rootKey, nil)
	leaf, _ := probeExampleCert("mirror.example", inter, interKey, []string{ca.URL + "/intermediate.cer"})
	intermediateDER = inter.Raw

	roots := x509.NewCertPool()
	roots.AddCert(root)
	completed, fetched, err := certstore.Complete(context.Background(), []*x509.Certificate{leaf}, certstore.CompleteOptions{
		Roots:  roots, // stop at the first certificate a root vouches for
		Policy: certstore.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range completed {
		fmt.Println("chain:", c.Subject.CommonName)
	}
	fmt.Println("fetched:", fetched[0].Subject.CommonName)

	inters := x509.NewCertPool()
	for _, c := range completed[1:] {
		inters.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "mirror.example"})
	fmt.Println("verifies with it:", err == nil)
	// Output:
	// chain: mirror.example
	// chain: Example Intermediate CA
	// fetched: Example Intermediate CA
	// verifies with it: true
}

// probeExampleCert makes a certificate named cn signed by parent (nil:
// self-signed), a CA unless aia is given, in which case it is a leaf for
// cn and 127.0.0.1 carrying those caIssuers URLs.
func probeExampleCert(cn string, parent *x509.Certificate, parentKey crypto.Signer, aia []string) (*x509.Certificate, crypto.Signer) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true,
		IssuingCertificateURL: aia,
	}
	if aia == nil {
		tmpl.IsCA = true
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{cn}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		log.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	return c, key
}
