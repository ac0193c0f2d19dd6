package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"time"
)

// pki is a private certificate hierarchy like a mirror operator's: a root
// CA, an intermediate CA it signed, and one leaf the intermediate signed
// for the mirror's hosts.
type pki struct {
	root, intermediate, leaf *x509.Certificate
	leafKey                  crypto.Signer
}

// newPKI makes the hierarchy. The leaf is valid for every host of hosts
// (IP addresses) and names caIssuers, the URL where its issuer is
// published (RFC 5280 Authority Information Access): that is how a client
// can complete a chain a server sent without its intermediate.
func newPKI(caIssuers string, hosts ...net.IP) (*pki, error) {
	now := time.Now().Truncate(time.Second)
	p := &pki{}
	root, rootKey, err := sign(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "Quickstart Root CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(90 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, nil)
	if err != nil {
		return nil, err
	}
	inter, interKey, err := sign(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "Quickstart Intermediate CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(60 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, root, rootKey)
	if err != nil {
		return nil, err
	}
	leaf, leafKey, err := sign(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "mirror.quickstart.test"},
		DNSNames:              []string{"mirror.quickstart.test"},
		IPAddresses:           hosts,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IssuingCertificateURL: []string{caIssuers},
	}, inter, interKey)
	if err != nil {
		return nil, err
	}
	p.root, p.intermediate, p.leaf, p.leafKey = root, inter, leaf, leafKey
	return p, nil
}

// sign makes a certificate from tmpl with a new P-256 key, signed by
// parent's key, or self-signed when parent is nil.
func sign(tmpl, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("making %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// serverCert is the leaf as a server presents it: with its intermediate,
// as a correctly configured server does, or without it (chain false), the
// mistake CDNs make that Java reports as "PKIX path building failed".
func (p *pki) serverCert(chain bool) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{p.leaf.Raw}, PrivateKey: p.leafKey, Leaf: p.leaf}
	if chain {
		c.Certificate = append(c.Certificate, p.intermediate.Raw)
	}
	return c
}

// serve starts an HTTP server on l, or an HTTPS one when cert is not nil.
func serve(l net.Listener, cert *tls.Certificate, h http.Handler) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = l
	// Clients refusing a certificate, or hanging up on a download that is
	// being interrupted, are part of the story, not news.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if cert == nil {
		s.Start()
		return s
	}
	s.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	s.StartTLS()
	return s
}
