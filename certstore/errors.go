package certstore

import "errors"

// Sentinel errors. Every error certstore returns that a caller may branch on
// wraps one of these; the message names the certificate, alias, zone, host
// or file concerned.
var (
	// ErrInvalidCertificate: the input is not a certificate certstore can
	// use (not PEM, DER or base64 DER; a block that is not a certificate; a
	// certificate that does not parse).
	ErrInvalidCertificate = errors.New("certstore: invalid certificate")

	// ErrInvalidAlias: an alias is not a lowercase DNS label (1 to 63 of
	// a-z, 0-9 and '-', no leading or trailing '-') or is reserved
	// ("cloud", "cloudca..."), as CloudStack requires.
	ErrInvalidAlias = errors.New("certstore: invalid alias")

	// ErrDuplicateAlias: a certificate with this alias already exists in the
	// zone for the hypervisor.
	ErrDuplicateAlias = errors.New("certstore: duplicate alias")

	// ErrNotFound: no certificate, alias or host with that name or id.
	ErrNotFound = errors.New("certstore: not found")

	// ErrExpired and ErrNotYetValid: a certificate offered as a trust anchor
	// is outside its validity period.
	ErrExpired     = errors.New("certstore: certificate has expired")
	ErrNotYetValid = errors.New("certstore: certificate is not yet valid")
)
