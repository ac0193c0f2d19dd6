package certstore

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// probeOne probes a server on 127.0.0.1 that sends chain and returns its
// TLS result.
func probeOne(t *testing.T, chain []*x509.Certificate, key *probeCert, opts ProbeOptions) *TLSResult {
	t.Helper()
	s := probeTLS(t, "127.0.0.1", chain, key.key, probeContent())
	rep := probeRun(t, s.URL+"/img", opts)
	if len(rep.Hops) != 1 || rep.Hops[0].TLS == nil {
		t.Fatalf("want one TLS hop:\n%s", probeDump(rep))
	}
	return rep.Hops[0].TLS
}

// A SHA-1 link between the intermediate and a trusted root shows only in
// Go's error; it is still a weak signature, not an unknown authority.
func TestDiagnoseWeakIntermediate(t *testing.T) {
	t.Parallel()
	root := probeMake(t, probeSpec{cn: "rsa root", rsaKey: true, notBefore: time.Now().Add(-24 * time.Hour)}, nil)
	in := probeMake(t, probeSpec{cn: "sha1 intermediate", sigAlg: x509.SHA1WithRSA}, root)
	leaf := probeMake(t, probeSpec{cn: "mirror.test", hosts: probeHosts}, in)
	res := probeOne(t, []*x509.Certificate{leaf.cert, in.cert}, leaf, ProbeOptions{Roots: probePool(root.cert)})
	if !slices.Equal(res.Problems, []Problem{ProblemWeakSignature}) {
		t.Fatalf("problems %q, want weak-signature: %s", res.Problems, res.Explanation)
	}
	if !strings.Contains(res.Explanation, "intermediate "+probeCertName(in.cert)+" is signed with SHA1-RSA") {
		t.Errorf("the explanation does not name the intermediate: %s", res.Explanation)
	}
}

// Several problems at once are all listed, in the documented order.
func TestDiagnosePrecedence(t *testing.T) {
	t.Parallel()
	pki := probeNewPKI(t, "precedence", nil, nil)
	now := time.Now()
	leaf := probeMake(t, probeSpec{cn: "old.test", hosts: []string{"old.test"}, notBefore: now.Add(-90 * 24 * time.Hour), notAfter: now.Add(-time.Hour)}, pki.int)
	res := probeOne(t, []*x509.Certificate{leaf.cert}, leaf, ProbeOptions{Roots: pki.roots()})
	want := []Problem{ProblemMissingIntermediate, ProblemExpired, ProblemHostnameMismatch}
	if !slices.Equal(res.Problems, want) || res.Problem != want[0] {
		t.Fatalf("problems %q (primary %q), want %q", res.Problems, res.Problem, want)
	}
	// The order of the list is the order of the explanation's sentences.
	last := -1
	for _, s := range []string{"did not send", "expired on", "is valid for old.test, not 127.0.0.1"} {
		i := strings.Index(res.Explanation, s)
		if i <= last {
			t.Errorf("%q is missing or out of order in: %s", s, res.Explanation)
		}
		last = i
	}
	if res.VerifyError == "" {
		t.Error("no VerifyError")
	}
}

// A failure none of the classes covers is reported as invalid, with Go's
// error.
func TestDiagnoseInvalid(t *testing.T) {
	t.Parallel()
	pki := probeNewPKI(t, "invalid", nil, nil)
	leaf := probeMake(t, probeSpec{cn: "client.test", hosts: probeHosts}, pki.int)
	// Rebuild the leaf for client authentication only.
	tmpl := *leaf.cert
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, pki.int.cert, leaf.key.Public(), pki.int.key)
	if err != nil {
		t.Fatal(err)
	}
	client, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	res := probeOne(t, []*x509.Certificate{client, pki.int.cert}, leaf, ProbeOptions{Roots: pki.roots()})
	if res.Problem != ProblemInvalid || !strings.Contains(res.Explanation, "incompatible key usage") {
		t.Errorf("problem %q, explanation %s; want invalid with Go's error", res.Problem, res.Explanation)
	}
}

func TestSystemRoots(t *testing.T) {
	a := probeNewPKI(t, "file", nil, nil)
	b := probeNewPKI(t, "dir", nil, nil)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(bundle, EncodePEM(a.root.cert), 0o644); err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(dir, "certs")
	if err := os.Mkdir(certDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certDir, "dir-root.pem"), EncodePEM(b.root.cert), 0o644); err != nil {
		t.Fatal(err)
	}
	// c_rehash's link, and a file that is no certificate: both skipped.
	if err := os.Symlink("dir-root.pem", filepath.Join(certDir, "abcd1234.0")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certDir, "README"), []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", bundle)
	t.Setenv("SSL_CERT_DIR", certDir)
	pool, err := SystemRoots()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*probePKI{a, b} {
		if _, err := p.leaf.cert.Verify(x509.VerifyOptions{Roots: pool, Intermediates: probePool(p.int.cert)}); err != nil {
			t.Errorf("%s: %v", p.root.cert.Subject, err)
		}
	}

	// Probe without Roots uses them.
	s := probeTLS(t, "127.0.0.1", a.full(), a.leaf.key, probeContent())
	if rep := probeRun(t, s.URL+"/img", ProbeOptions{}); !rep.OK {
		t.Errorf("probe with the system roots:\n%s", probeDump(rep))
	}

	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", filepath.Join(empty, "none.pem"))
	t.Setenv("SSL_CERT_DIR", empty)
	if _, err := SystemRoots(); !errors.Is(err, ErrNoSystemRoots) {
		t.Errorf("no roots: %v, want ErrNoSystemRoots", err)
	}
	if _, err := Probe(context.Background(), s.URL, ProbeOptions{Policy: probeLoopback}); !errors.Is(err, ErrNoSystemRoots) {
		t.Errorf("probe without roots: %v, want ErrNoSystemRoots", err)
	}
}

func TestBuildPath(t *testing.T) {
	t.Parallel()
	pki := probeNewPKI(t, "path", nil, nil)
	stray := probeMake(t, probeSpec{cn: "stray"}, nil)
	p := probeBuildPath(pki.leaf.cert, []*x509.Certificate{stray.cert, pki.root.cert, pki.int.cert})
	if got, want := aiaFingerprints(p.certs), aiaFingerprints([]*x509.Certificate{pki.leaf.cert, pki.int.cert, pki.root.cert}); !slices.Equal(got, want) {
		t.Errorf("path %v, want leaf, intermediate, root", got)
	}
	if p := probeBuildPath(pki.leaf.cert, nil); len(p.certs) != 1 {
		t.Errorf("leaf alone: %d certificates", len(p.certs))
	}
}
