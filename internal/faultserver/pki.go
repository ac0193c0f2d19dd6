package faultserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is a throwaway certificate hierarchy for tests: a root CA, an
// intermediate CA signed by it, and a leaf for the loopback hosts signed by
// the intermediate. Keys are ECDSA P-256. Make one with [NewPKI].
type PKI struct {
	Root, Intermediate, Leaf *x509.Certificate
	// RootKey, IntermediateKey and LeafKey are the private keys.
	RootKey, IntermediateKey, LeafKey crypto.Signer
}

// DefaultPKIHosts are the names a [NewPKI] leaf is valid for when the caller
// names none: localhost, 127.0.0.1 to 127.0.0.3 and ::1.
var DefaultPKIHosts = []string{"localhost", "127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"}

// NewPKI makes a root, an intermediate and a leaf valid from an hour ago for
// validFor (default 30 days, when zero or less). The leaf is valid for the
// given hosts, IP addresses or DNS names (default [DefaultPKIHosts]).
func NewPKI(validFor time.Duration, hosts ...string) (*PKI, error) {
	if validFor <= 0 {
		validFor = 30 * 24 * time.Hour
	}
	if len(hosts) == 0 {
		hosts = DefaultPKIHosts
	}
	notBefore := time.Now().Add(-time.Hour).Truncate(time.Second)
	notAfter := notBefore.Add(time.Hour + validFor)
	p := &PKI{}
	var err error
	p.Root, p.RootKey, err = makeCert(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "faultserver test root CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, nil)
	if err != nil {
		return nil, err
	}
	p.Intermediate, p.IntermediateKey, err = makeCert(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "faultserver test intermediate CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, p.Root, p.RootKey)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0]},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	p.Leaf, p.LeafKey, err = makeCert(leaf, p.Intermediate, p.IntermediateKey)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// makeCert signs tmpl with parent's key, or self-signs it when parent is
// nil, using a new key.
func makeCert(tmpl, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("faultserver: making %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// Certificate returns the leaf as a server certificate: with the
// intermediate in its chain, as a correctly configured server sends it, or
// without it (withIntermediate false), as a misconfigured one does, which a
// client can verify only if it holds or fetches the intermediate.
func (p *PKI) Certificate(withIntermediate bool) tls.Certificate {
	c := tls.Certificate{
		Certificate: [][]byte{p.Leaf.Raw},
		PrivateKey:  p.LeafKey,
		Leaf:        p.Leaf,
	}
	if withIntermediate {
		c.Certificate = append(c.Certificate, p.Intermediate.Raw)
	}
	return c
}

// RootPool returns a new pool holding the root CA only.
func (p *PKI) RootPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Root)
	return pool
}

// WritePEM writes the hierarchy to dir as PEM files, for programs such as
// curl and aria2c: root.pem, intermediate.pem, leaf.pem, chain.pem (leaf
// then intermediate) and leaf-key.pem (PKCS #8, mode 0600).
func (p *PKI) WritePEM(dir string) error {
	key, err := x509.MarshalPKCS8PrivateKey(p.LeafKey)
	if err != nil {
		return err
	}
	certPEM := func(cs ...*x509.Certificate) []byte {
		var b []byte
		for _, c := range cs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return b
	}
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{"root.pem", certPEM(p.Root), 0o644},
		{"intermediate.pem", certPEM(p.Intermediate), 0o644},
		{"leaf.pem", certPEM(p.Leaf), 0o644},
		{"chain.pem", certPEM(p.Leaf, p.Intermediate), 0o644},
		{"leaf-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600},
	}
	var errs []error
	for _, f := range files {
		errs = append(errs, os.WriteFile(filepath.Join(dir, f.name), f.data, f.perm))
	}
	return errors.Join(errs...)
}
