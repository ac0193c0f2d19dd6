package faultserver

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPKIVerifies(t *testing.T) {
	t.Parallel()
	pki, err := NewPKI(time.Hour, "127.0.0.5", "example.test")
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	inter.AddCert(pki.Intermediate)
	for _, name := range []string{"127.0.0.5", "example.test"} {
		opts := x509.VerifyOptions{Roots: pki.RootPool(), Intermediates: inter, DNSName: name}
		if _, err := pki.Leaf.Verify(opts); err != nil {
			t.Errorf("verifying for %s: %v", name, err)
		}
	}
	if _, err := pki.Leaf.Verify(x509.VerifyOptions{Roots: pki.RootPool(), DNSName: "example.test"}); err == nil {
		t.Error("the leaf verified without its intermediate")
	}
	if _, err := pki.Leaf.Verify(x509.VerifyOptions{Roots: pki.RootPool(), Intermediates: inter, DNSName: "127.0.0.1"}); err == nil {
		t.Error("the leaf verified for a host it does not name")
	}
	if got := time.Until(pki.Leaf.NotAfter); got < 59*time.Minute || got > 61*time.Minute {
		t.Errorf("leaf expires in %v, want an hour", got)
	}
	if n := len(pki.Certificate(true).Certificate); n != 2 {
		t.Errorf("certificate with intermediate has %d certificates, want 2", n)
	}
	if n := len(pki.Certificate(false).Certificate); n != 1 {
		t.Errorf("certificate without intermediate has %d certificates, want 1", n)
	}
}

func TestPKIDefaults(t *testing.T) {
	t.Parallel()
	pki := testPKI(t)
	for _, h := range DefaultPKIHosts {
		if err := pki.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("default leaf: %v", err)
		}
	}
	if d := pki.Leaf.NotAfter.Sub(pki.Leaf.NotBefore); d < 30*24*time.Hour {
		t.Errorf("default validity %v, want at least 30 days", d)
	}
	if ip := net.ParseIP("::1"); !pki.Leaf.IPAddresses[len(pki.Leaf.IPAddresses)-1].Equal(ip) {
		t.Errorf("last IP address %v, want ::1", pki.Leaf.IPAddresses)
	}
}

func TestPKIWritePEM(t *testing.T) {
	t.Parallel()
	pki := testPKI(t)
	dir := t.TempDir()
	if err := pki.WritePEM(dir); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "chain.pem"), filepath.Join(dir, "leaf-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 2 {
		t.Errorf("chain.pem holds %d certificates, want 2", len(cert.Certificate))
	}
	root, err := os.ReadFile(filepath.Join(dir, "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(root); b == nil || string(b.Bytes) != string(pki.Root.Raw) {
		t.Error("root.pem does not hold the root")
	}
	if fi, err := os.Stat(filepath.Join(dir, "leaf-key.pem")); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("leaf-key.pem has mode %v, want 0600", fi.Mode().Perm())
	}
	// The written files serve TLS that a client trusting root.pem accepts.
	s := StartTest(t, WithTLS(cert))
	if resp, _ := mustGet(t, client(t, pki), "HEAD", s.URL(DefaultResourcePath)); resp.StatusCode != 200 {
		t.Errorf("HEAD: %d", resp.StatusCode)
	}
}
