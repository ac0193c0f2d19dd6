package certstore

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"time"
)

// Warning is something about a certificate that does not stop it from
// being trusted but that the operator should know: a pinned leaf, a weak
// signature, a certificate about to expire.
type Warning struct {
	// Code is a stable identifier: "not-a-ca", "weak-signature",
	// "weak-key", "expiring".
	Code    string   `json:"code"`
	Cert    CertInfo `json:"certificate"`
	Message string   `json:"message"`
}

// String returns the warning's message.
func (w Warning) String() string { return w.Message }

// Warning codes.
const (
	WarnNotCA         = "not-a-ca"
	WarnWeakSignature = "weak-signature"
	WarnWeakKey       = "weak-key"
	WarnExpiring      = "expiring"
)

// CheckAnchors validates certificates offered as trust anchors, as Upload
// does, at now. A certificate outside its validity period is an error
// wrapping ErrExpired or ErrNotYetValid that names it. The rest are
// warnings:
//
//   - a certificate that is not a CA (pinning a leaf): it stops working at
//     the server's next renewal, so the warning names its issuer as the
//     certificate to trust instead;
//   - a signature with SHA-1 or MD5 on a certificate that is not
//     self-signed: Go (and so directdl) refuses such chains, while Java 17
//     accepts SHA-1 below a root from its trust store;
//   - an RSA key under 2048 bits or an ECDSA curve under 256 bits;
//   - expiry within the thresholds (defaults 30 and 7 days).
func CheckAnchors(certs []*x509.Certificate, now time.Time, t Thresholds) ([]Warning, error) {
	var warns []Warning
	for i, c := range certs {
		info := Describe(c)
		where := fmt.Sprintf("certificate %d (%s, sha256 %s)", i+1, info.Subject, info.SHA256)
		if now.After(c.NotAfter) {
			return nil, fmt.Errorf("%w: %s expired on %s; get the current certificate from its issuer", ErrExpired, where, c.NotAfter.UTC().Format(time.RFC3339))
		}
		if now.Before(c.NotBefore) {
			return nil, fmt.Errorf("%w: %s is valid only from %s; check this machine's clock or wait", ErrNotYetValid, where, c.NotBefore.UTC().Format(time.RFC3339))
		}
		if !(c.BasicConstraintsValid && c.IsCA) {
			issuer := c.Issuer.String()
			if parent := issuerIn(c, certs); parent != nil {
				issuer = fmt.Sprintf("%s (sha256 %s, also in this upload)", parent.Subject.String(), Fingerprint(parent))
			}
			warns = append(warns, Warning{Code: WarnNotCA, Cert: info, Message: fmt.Sprintf(
				"%s is not a CA certificate: trusting it pins this one server certificate, which stops working when the server renews it; trust its issuer %s instead", where, issuer)})
		}
		if weakSignature(c.SignatureAlgorithm) && !IsSelfSigned(c) {
			warns = append(warns, Warning{Code: WarnWeakSignature, Cert: info, Message: fmt.Sprintf(
				"%s is signed with %s: Go, and so directdl, refuses chains through it (Java 17 still accepts SHA-1 below a root in its own trust store); ask its issuer for a SHA-256 certificate", where, c.SignatureAlgorithm)})
		}
		if msg := weakKey(c); msg != "" {
			warns = append(warns, Warning{Code: WarnWeakKey, Cert: info, Message: fmt.Sprintf("%s has %s", where, msg)})
		}
		if l := ExpiryLevel(c, now, t); l == LevelWarning || l == LevelCritical {
			warns = append(warns, Warning{Code: WarnExpiring, Cert: info, Message: fmt.Sprintf(
				"%s expires on %s (%d days left, %s); upload its successor before then", where, c.NotAfter.UTC().Format(time.DateOnly), daysLeft(c.NotAfter.Sub(now)), l)})
		}
	}
	return warns, nil
}

// issuerIn returns the certificate of certs that signed c, if any.
func issuerIn(c *x509.Certificate, certs []*x509.Certificate) *x509.Certificate {
	for _, p := range certs {
		if p != c && c.CheckSignatureFrom(p) == nil {
			return p
		}
	}
	return nil
}

func weakSignature(a x509.SignatureAlgorithm) bool {
	switch a {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return true
	}
	return false
}

func weakKey(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 {
			return fmt.Sprintf("a %d-bit RSA key, under the 2048 bits public CAs require", n)
		}
	case *ecdsa.PublicKey:
		if n := k.Curve.Params().BitSize; n < 256 {
			return fmt.Sprintf("a %d-bit ECDSA key, under the 256 bits public CAs require", n)
		}
	}
	return ""
}
