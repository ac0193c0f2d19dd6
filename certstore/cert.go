package certstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"time"
)

// Entry is one trusted certificate in a trust store, under its alias.
type Entry struct {
	Alias string
	Cert  *x509.Certificate
}

// TrustStore is the set of trusted certificates one host holds, by alias:
// a keystore file on an agent, or a remote agent's store reached over its
// API. The registry's Sync reads it back to decide what a host really
// holds, so Entries must report the store's actual content, not a cache.
//
// Implementations must be safe for concurrent use.
type TrustStore interface {
	// Entries lists the trusted-certificate entries. Entries of other kinds
	// (private keys) are not listed but are preserved by Import and Delete.
	Entries(ctx context.Context) ([]Entry, error)
	// Import adds e, replacing the certificate of an existing alias.
	Import(ctx context.Context, e Entry) error
	// Delete removes the alias; an error wrapping ErrNotFound if absent.
	Delete(ctx context.Context, alias string) error
}

// maxCertificateInput bounds ParseCertificates' input: a bundle of Mozilla's
// whole root store is about 220 KiB of PEM.
const maxCertificateInput = 4 << 20

// ParseCertificates reads every certificate in data, which may be:
//
//   - PEM: one or more CERTIFICATE blocks, with any text around them (as
//     `openssl x509 -text` prints); a block of another type, such as a
//     private key, is an error naming it, so a key is never taken for a
//     certificate by accident;
//   - base64 DER without BEGIN/END lines, as CloudStack accepts;
//   - DER.
//
// Every certificate must parse; the error names the one that does not by
// its position. An input without certificates is an error too. All errors
// wrap ErrInvalidCertificate.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if len(data) > maxCertificateInput {
		return nil, fmt.Errorf("%w: input is %d bytes, more than the %d a certificate bundle may have", ErrInvalidCertificate, len(data), maxCertificateInput)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: no certificate in empty input", ErrInvalidCertificate)
	}
	if bytes.Contains(trimmed, []byte("-----BEGIN")) {
		return parsePEM(trimmed)
	}
	if data[0] == 0x30 { // an ASN.1 SEQUENCE: DER
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("%w: DER input: %v", ErrInvalidCertificate, err)
		}
		return []*x509.Certificate{c}, nil
	}
	der, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(trimmed), nil)))
	if err != nil {
		return nil, fmt.Errorf("%w: neither PEM, DER nor base64 DER", ErrInvalidCertificate)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: base64 input: %v", ErrInvalidCertificate, err)
	}
	return []*x509.Certificate{c}, nil
}

func parsePEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		block, rest := pem.Decode(data)
		if block == nil {
			if bytes.Contains(data, []byte("-----BEGIN")) {
				return nil, fmt.Errorf("%w: PEM block %d is malformed (a BEGIN line without a matching END line, or bad base64)", ErrInvalidCertificate, n)
			}
			break
		}
		data = rest
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: PEM block %d is a %q, not a CERTIFICATE", ErrInvalidCertificate, n, block.Type)
		}
		if len(block.Headers) != 0 {
			return nil, fmt.Errorf("%w: PEM block %d has headers, which a certificate never has", ErrInvalidCertificate, n)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PEM block %d: %v", ErrInvalidCertificate, n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE block in PEM input", ErrInvalidCertificate)
	}
	return certs, nil
}

// EncodePEM returns the certificates as concatenated PEM CERTIFICATE blocks.
func EncodePEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// Fingerprint is the SHA-256 of the certificate's DER, in lowercase hex
// without separators: the identity certstore compares certificates by.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// CertInfo is the summary of a certificate that reports and JSON output
// show.
type CertInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SHA256    string    `json:"sha256"`
	IsCA      bool      `json:"is_ca"`
}

// Describe summarises c.
func Describe(c *x509.Certificate) CertInfo {
	return CertInfo{
		Subject:   c.Subject.String(),
		Issuer:    c.Issuer.String(),
		NotBefore: c.NotBefore.UTC(),
		NotAfter:  c.NotAfter.UTC(),
		SHA256:    Fingerprint(c),
		IsCA:      c.BasicConstraintsValid && c.IsCA,
	}
}

// IsSelfSigned reports whether c names itself as issuer and its signature
// verifies with its own key.
func IsSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// ValidateAlias checks that alias may name a certificate in the registry:
// a lowercase DNS label (CloudStack's NetUtils.verifyDomainNameLabel, and
// lowercase because Java ignores JKS entries whose alias is not) that is
// not "cloud" or "cloudca..." (the agent's own key and CA entries). The
// error wraps ErrInvalidAlias and says what is wrong.
func ValidateAlias(alias string) error {
	if alias == "" {
		return fmt.Errorf("%w: empty alias", ErrInvalidAlias)
	}
	if len(alias) > 63 {
		return fmt.Errorf("%w: %q is %d characters, more than 63", ErrInvalidAlias, alias, len(alias))
	}
	for i := 0; i < len(alias); i++ {
		c := alias[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-':
			if i == 0 || i == len(alias)-1 {
				return fmt.Errorf("%w: %q starts or ends with '-'", ErrInvalidAlias, alias)
			}
		case c >= 'A' && c <= 'Z':
			return fmt.Errorf("%w: %q has uppercase letters; Java ignores JKS entries whose alias is not lowercase, use %q", ErrInvalidAlias, alias, bytes.ToLower([]byte(alias)))
		default:
			return fmt.Errorf("%w: %q has %q; use a-z, 0-9 and '-'", ErrInvalidAlias, alias, c)
		}
	}
	if alias == "cloud" || len(alias) >= 7 && alias[:7] == "cloudca" {
		return fmt.Errorf("%w: %q is reserved for the agent's own key and CA certificates", ErrInvalidAlias, alias)
	}
	return nil
}
