package download_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

// TestTLSIPHostVerified guards against a bug found in review: with more than one trusted pool (any use
// of WithRootCAs or WithTrustSource), tlsConfigFor verifies in
// VerifyConnection with DNSName: cs.ServerName. For an IP-literal URL
// crypto/tls leaves ConnectionState.ServerName empty (no SNI for IPs), so
// x509 skips the name check: a certificate for any other name, from any
// trusted root (system roots included), is accepted for https://IP/.
func TestTLSIPHostVerified(t *testing.T) {
	t.Parallel()
	// A leaf valid only for "evil.example", not for 127.0.0.1.
	pki, err := faultserver.NewPKI(0, "evil.example")
	if err != nil {
		t.Fatal(err)
	}
	s := faultserver.StartTest(t, faultserver.WithTLS(pki.Certificate(true)))
	url := s.URL("/file")
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("unexpected URL %s", url)
	}
	get := func(opts ...download.Option) error {
		cl := newClient(t, append(opts, download.WithRetries(0))...)
		_, err := cl.Get(context.Background(), download.Request{URL: url, Path: filepath.Join(t.TempDir(), "f")})
		return err
	}
	// Control: one pool, Go's own verification: refused for the IP.
	if err := get(download.WithTLSConfig(&tls.Config{RootCAs: pki.RootPool()})); err == nil {
		t.Fatal("control: single pool accepted a certificate for evil.example at 127.0.0.1")
	}
	// The same root trusted through WithRootCAs (system roots + pool).
	if err := get(download.WithRootCAs(pki.RootPool())); err == nil {
		t.Error("WithRootCAs accepted a certificate for evil.example at https://127.0.0.1: the IP is not checked")
	}
	// Control: a host name is checked (cs.ServerName is set for names).
	cl := newClient(t, download.WithRootCAs(pki.RootPool()), download.WithRetries(0))
	if _, err := cl.Get(context.Background(), download.Request{URL: strings.Replace(url, "127.0.0.1", "localhost", 1),
		Path: filepath.Join(t.TempDir(), "f")}); err == nil {
		t.Error("control: a certificate for evil.example was accepted for localhost")
	}
	// Same through a trust source.
	src := &staticTrust{}
	src.pool.Store(pki.RootPool())
	if err := get(download.WithTrustSource(src)); err == nil {
		t.Error("WithTrustSource accepted a certificate for evil.example at https://127.0.0.1")
	}
}

// TestTLSVerifyConnectionKept guards against a bug found in review: WithTLSConfig documents that the
// caller's config is used; with an extra pool, tlsConfigFor overwrites the
// caller's VerifyConnection (certificate pinning, revocation checks), so
// it never runs.
func TestTLSVerifyConnectionKept(t *testing.T) {
	t.Parallel()
	pki, err := faultserver.NewPKI(0)
	if err != nil {
		t.Fatal(err)
	}
	s := faultserver.StartTest(t, faultserver.WithTLS(pki.Certificate(true)))
	pinErr := errors.New("pin mismatch")
	base := &tls.Config{RootCAs: pki.RootPool(), VerifyConnection: func(tls.ConnectionState) error { return pinErr }}
	get := func(opts ...download.Option) error {
		cl := newClient(t, append(opts, download.WithRetries(0))...)
		_, err := cl.Get(context.Background(), download.Request{URL: s.URL("/file"), Path: filepath.Join(t.TempDir(), "f")})
		return err
	}
	if err := get(download.WithTLSConfig(base)); !errors.Is(err, pinErr) {
		t.Fatalf("control: err = %v, want the caller's VerifyConnection error", err)
	}
	if err := get(download.WithTLSConfig(base), download.WithRootCAs(x509.NewCertPool())); !errors.Is(err, pinErr) {
		t.Errorf("with WithRootCAs added, the caller's VerifyConnection did not run: err = %v", err)
	}
}
