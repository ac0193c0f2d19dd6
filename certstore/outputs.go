package certstore

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// NewCertPool returns a new pool holding the entries' certificates, and
// only them: pass it as the Roots of x509.VerifyOptions (never nil Roots,
// which on macOS and Windows hands verification to the platform, which
// fetches missing intermediates that a Linux agent will not), or to
// download.WithRootCAs, which adds it to the system roots. Entries
// without a certificate are skipped.
func NewCertPool(entries []Entry) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, e := range entries {
		if e.Cert != nil {
			pool.AddCert(e.Cert)
		}
	}
	return pool
}

// NewTLSConfig returns a client configuration that trusts the system
// roots plus the entries' certificates, with TLS 1.2 as the lowest
// version and the usual verification: chain and host name (taken by
// net/http from the URL, or set ServerName for a bare tls.Dial). Nothing
// turns verification off.
//
// The system roots are read once, now (SSL_CERT_FILE and SSL_CERT_DIR
// override their location on Linux); an error reading them is returned.
// The configuration may be used by many connections at once; a trust
// store that changes needs a new configuration, or a FileStore used as
// the download package's trust source.
func NewTLSConfig(entries []Entry) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		return nil, fmt.Errorf("certstore: reading the system roots: %w", err)
	}
	for _, e := range entries {
		if e.Cert != nil {
			pool.AddCert(e.Cert)
		}
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
