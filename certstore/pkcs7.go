package certstore

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
)

// oidSignedData is PKCS #7's signedData content type, 1.2.840.113549.1.7.2.
var oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}

// parsePKCS7Certs returns the certificates of a DER PKCS #7 (CMS)
// SignedData, the "certs-only" .p7c/.p7b file that CAs publish at AIA
// caIssuers URLs (RFC 5280 4.2.2.1). Signatures and CRLs in it are ignored:
// the certificates are only candidates, each checked against the
// certificate that pointed to it. Certificate choices other than plain
// X.509 certificates (attribute certificates, say) are skipped.
//
// It is hand-parsed with encoding/asn1, which is strict DER: BER with
// indefinite lengths is refused with an error saying so.
//
//	ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT SignedData }
//	SignedData ::= SEQUENCE { version INTEGER, digestAlgorithms SET,
//	    encapContentInfo SEQUENCE, certificates [0] IMPLICIT SET OPTIONAL,
//	    crls [1] IMPLICIT SET OPTIONAL, signerInfos SET }
func parsePKCS7Certs(der []byte) ([]*x509.Certificate, error) {
	var ci asn1.RawValue
	rest, err := asn1.Unmarshal(der, &ci)
	if err != nil {
		return nil, pkcs7Error(err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("pkcs7: %d bytes of trailing data", len(rest))
	}
	if !pkcs7IsUniversal(ci, asn1.TagSequence) {
		return nil, errors.New("pkcs7: not a ContentInfo SEQUENCE")
	}
	var ct asn1.ObjectIdentifier
	rest, err = asn1.Unmarshal(ci.Bytes, &ct)
	if err != nil {
		return nil, fmt.Errorf("pkcs7: content type: %w", pkcs7Error(err))
	}
	if !ct.Equal(oidSignedData) {
		return nil, fmt.Errorf("pkcs7: content type %s is not signedData (%s)", ct, oidSignedData)
	}
	var wrap asn1.RawValue
	if _, err := asn1.Unmarshal(rest, &wrap); err != nil {
		return nil, fmt.Errorf("pkcs7: content: %w", pkcs7Error(err))
	}
	if wrap.Class != asn1.ClassContextSpecific || wrap.Tag != 0 || !wrap.IsCompound {
		return nil, errors.New("pkcs7: signedData content is not [0] EXPLICIT")
	}
	var sd asn1.RawValue
	if _, err := asn1.Unmarshal(wrap.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("pkcs7: signedData: %w", pkcs7Error(err))
	}
	if !pkcs7IsUniversal(sd, asn1.TagSequence) {
		return nil, errors.New("pkcs7: signedData is not a SEQUENCE")
	}
	// version, digestAlgorithms and encapContentInfo come before the
	// optional certificates; only their framing matters here.
	fields := sd.Bytes
	for i, want := range []int{asn1.TagInteger, asn1.TagSet, asn1.TagSequence} {
		var f asn1.RawValue
		if fields, err = asn1.Unmarshal(fields, &f); err != nil {
			return nil, fmt.Errorf("pkcs7: signedData field %d: %w", i+1, pkcs7Error(err))
		}
		if !pkcs7IsUniversal(f, want) {
			return nil, fmt.Errorf("pkcs7: signedData field %d has tag %d, want %d", i+1, f.Tag, want)
		}
	}
	var set asn1.RawValue
	if _, err := asn1.Unmarshal(fields, &set); err != nil {
		return nil, fmt.Errorf("pkcs7: certificates: %w", pkcs7Error(err))
	}
	if set.Class != asn1.ClassContextSpecific || set.Tag != 0 || !set.IsCompound {
		return nil, errors.New("pkcs7: no certificates in the signedData")
	}
	var certs []*x509.Certificate
	for n, b := 1, set.Bytes; len(b) > 0; n++ {
		var el asn1.RawValue
		if b, err = asn1.Unmarshal(b, &el); err != nil {
			return nil, fmt.Errorf("pkcs7: certificate %d: %w", n, pkcs7Error(err))
		}
		if !pkcs7IsUniversal(el, asn1.TagSequence) {
			continue
		}
		c, err := x509.ParseCertificate(el.FullBytes)
		if err != nil {
			return nil, fmt.Errorf("pkcs7: certificate %d: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("pkcs7: no X.509 certificate in the signedData")
	}
	return certs, nil
}

func pkcs7IsUniversal(v asn1.RawValue, tag int) bool {
	return v.Class == asn1.ClassUniversal && v.Tag == tag && v.IsCompound == (tag == asn1.TagSequence || tag == asn1.TagSet)
}

// pkcs7Error explains the encoding/asn1 error most likely to meet a real
// file: Windows tools have written BER.
func pkcs7Error(err error) error {
	var se asn1.SyntaxError
	if errors.As(err, &se) && se.Msg == "indefinite length found (not DER)" {
		return fmt.Errorf("BER with indefinite lengths, not DER: %w", err)
	}
	return err
}
