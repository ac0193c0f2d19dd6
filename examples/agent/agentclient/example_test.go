package agentclient_test

import (
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
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/examples/agent/agent"
	"github.com/directdl/directdl/examples/agent/agentclient"
)

// An orchestrator's certificate registry syncing a mirror's CA to an
// agent over its API, then revoking it.
func ExampleClient() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "agentclient-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The agent side (normally on the KVM host).
	store, err := certstore.OpenFileStore(filepath.Join(dir, "trust.jks"), "changeit")
	if err != nil {
		log.Fatal(err)
	}
	pool := filepath.Join(dir, "pool")
	if err := os.Mkdir(pool, 0o755); err != nil {
		log.Fatal(err)
	}
	a, err := agent.New(agent.Config{Pool: pool, Token: "t0ken", TrustStore: store})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close(ctx)
	srv := httptest.NewServer(a)
	defer srv.Close()

	// The orchestrator side.
	c, err := agentclient.New(srv.URL, "t0ken")
	if err != nil {
		log.Fatal(err)
	}
	reg, err := certstore.NewRegistry(certstore.NewMemoryDB(), certstore.HostList{{ID: 1, Zone: 1, Up: true, Store: c}})
	if err != nil {
		log.Fatal(err)
	}
	res, err := reg.Upload(ctx, certstore.Upload{Alias: "mirror-ca", PEM: newCA("Mirror CA"), Zone: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added:", res.Hosts[0].Added)
	certs, err := c.Certificates(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("agent trusts:", certs[0].Alias, certs[0].Subject)

	if _, err := reg.Revoke(ctx, res.Certificate.ID, 1); err != nil {
		log.Fatal(err)
	}
	entries, err := c.Entries(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after revoking:", len(entries))
	err = c.Delete(ctx, "mirror-ca")
	fmt.Println("deleting again is not found:", errors.Is(err, certstore.ErrNotFound))
	// Output:
	// added: [mirror-ca]
	// agent trusts: mirror-ca CN=Mirror CA
	// after revoking: 0
	// deleting again is not found: true
}

// newCA returns a new self-signed CA certificate as PEM.
func newCA(name string) []byte {
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
