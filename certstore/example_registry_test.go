package certstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/directdl/directdl/certstore"
)

// A registry syncing a mirror's CA to the JKS trust stores of two KVM
// hosts, then revoking it.
func ExampleRegistry() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "certstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The hosts of zone 1, each with a local JKS trust store. An
	// orchestrator lists its real hosts here, reaching each agent's store
	// through its own TrustStore implementation.
	var hosts certstore.HostList
	for id := 1; id <= 2; id++ {
		store, err := certstore.OpenFileStore(filepath.Join(dir, fmt.Sprintf("host%d.jks", id)), "changeit")
		if err != nil {
			log.Fatal(err)
		}
		hosts = append(hosts, certstore.Host{ID: certstore.HostID(id), Zone: 1, Up: true, Store: store})
	}
	reg, err := certstore.NewRegistry(certstore.NewMemoryDB(), hosts)
	if err != nil {
		log.Fatal(err)
	}

	res, err := reg.Upload(ctx, certstore.Upload{Alias: "mirror-ca", PEM: exampleCA("Mirror CA"), Zone: 1})
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range res.Hosts {
		fmt.Printf("host %d: added %v\n", h.Host, h.Added)
	}
	list, err := reg.List(ctx, certstore.ListOptions{Hosts: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range list[0].Hosts {
		fmt.Printf("%s on host %d: %s\n", list[0].Alias, s.Host, s.Status)
	}

	if _, err := reg.Revoke(ctx, res.Certificate.ID, 1); err != nil {
		log.Fatal(err)
	}
	entries, err := hosts[0].Store.Entries(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("after revoking, host 1 trusts %d certificates\n", len(entries))
	// Output:
	// host 1: added [mirror-ca]
	// host 2: added [mirror-ca]
	// mirror-ca on host 1: synced
	// mirror-ca on host 2: synced
	// after revoking, host 1 trusts 0 certificates
}

// exampleCA returns a new self-signed CA certificate as PEM.
func exampleCA(name string) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(1, 0, 0),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	return certstore.EncodePEM(c)
}
