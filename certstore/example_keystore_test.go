package certstore_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/directdl/directdl/certstore"
)

// keystoreExampleCA makes a self-signed CA certificate for the examples; in real
// use it comes from certstore.ParseCertificates of a PEM file.
func keystoreExampleCA(name string) *x509.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		log.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// A JKS trust store for Java: the same entries always give the same
// bytes, and ReadStore reads them back, telling the format from the bytes.
func ExampleWriteJKS() {
	entries := []certstore.Entry{
		{Alias: "mirror-ca", Cert: keystoreExampleCA("Mirror CA")},
		{Alias: "cdn-ca", Cert: keystoreExampleCA("CDN CA")},
	}
	var a, b bytes.Buffer
	if err := certstore.WriteJKS(&a, entries, "changeit"); err != nil {
		log.Fatal(err)
	}
	if err := certstore.WriteJKS(&b, entries, "changeit"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("reproducible:", bytes.Equal(a.Bytes(), b.Bytes()))

	read, format, err := certstore.ReadStore(a.Bytes(), "changeit")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range read {
		fmt.Println(format, e.Alias, e.Cert.Subject.CommonName)
	}

	// Java ignores JKS entries whose alias is not lowercase.
	err = certstore.WriteJKS(&a, []certstore.Entry{{Alias: "Mirror-CA", Cert: entries[0].Cert}}, "changeit")
	fmt.Println(err != nil)
	// Output:
	// reproducible: true
	// JKS cdn-ca CDN CA
	// JKS mirror-ca Mirror CA
	// true
}

// A PEM bundle names its entries with comment lines, which OpenSSL, curl
// and Go skip; a block without one gets an alias from its fingerprint.
func ExampleReadStore() {
	ca := keystoreExampleCA("Mirror CA")
	var bundle bytes.Buffer
	if err := certstore.WritePEM(&bundle, []certstore.Entry{{Alias: "mirror-ca", Cert: ca}}); err != nil {
		log.Fatal(err)
	}
	bundle.Write(certstore.EncodePEM(keystoreExampleCA("Other CA")))

	entries, format, err := certstore.ReadStore(bundle.Bytes(), "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(format, len(entries))
	fmt.Println(entries[0].Alias)
	fmt.Println(entries[1].Alias[:5], len(entries[1].Alias))

	_, _, err = certstore.ReadStore([]byte{0xce, 0xce, 0xce, 0xce}, "changeit")
	fmt.Println(err)
	// Output:
	// PEM 2
	// mirror-ca
	// cert- 21
	// certstore: unsupported store format: a JCEKS store, which certstore does not read; convert it with keytool -importkeystore -srcstoretype JCEKS -deststoretype PKCS12 (or JKS)
}

// A FileStore is an agent's trust store file: every call reads the file
// as it is now, and changes replace it atomically under a lock, so
// several processes may share it.
func ExampleFileStore() {
	dir, err := os.MkdirTemp("", "certstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// The file does not exist yet: its name makes it JKS.
	store, err := certstore.OpenFileStore(filepath.Join(dir, "agent.jks"), "changeit")
	if err != nil {
		log.Fatal(err)
	}
	ca := keystoreExampleCA("Mirror CA")
	if err := store.Import(ctx, certstore.Entry{Alias: "mirror-ca", Cert: ca}); err != nil {
		log.Fatal(err)
	}
	entries, err := store.Entries(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e.Alias, e.Cert.Subject.CommonName)
	}

	// The pool the download package takes (download.WithTrustSource(store)
	// asks for it at every new connection).
	_, err = ca.Verify(x509.VerifyOptions{Roots: store.RootCAs()})
	fmt.Println("verifies:", err == nil)

	fmt.Println(store.Delete(ctx, "mirror-ca"))
	err = store.Delete(ctx, "mirror-ca")
	fmt.Println(errors.Is(err, certstore.ErrNotFound))
	// Output:
	// mirror-ca Mirror CA
	// verifies: true
	// <nil>
	// true
}
