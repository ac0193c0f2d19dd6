package certstore

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzParseAIAResponse feeds the caIssuers response parser (DER, PEM,
// PKCS #7) arbitrary bytes, seeded with the files of testdata/aia: a DER
// and a PEM intermediate, a PEM chain, DER and PEM .p7c bundles made by
// openssl crl2pkcs7, and an HTML error page. It must never panic, must
// return certificates or an error, and whatever it returns must survive
// a PKCS #7 round trip.
func FuzzParseAIAResponse(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "aia"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("testdata", "aia", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Add([]byte("-----BEGIN PKCS7-----\n-----END PKCS7-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := parseAIAResponse(data)
		if err != nil {
			if certs != nil {
				t.Fatalf("certificates and an error: %v", err)
			}
			return
		}
		if len(certs) == 0 {
			t.Fatal("no certificate and no error")
		}
		for _, c := range certs {
			if c == nil || len(c.Raw) == 0 {
				t.Fatal("nil or empty certificate")
			}
		}
		again, err := parsePKCS7Certs(aiaPKCS7(t, certs...))
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if !slices.Equal(aiaFingerprints(again), aiaFingerprints(certs)) {
			t.Fatal("round trip changed the certificates")
		}
	})
}
