package registrytest_test

import (
	"crypto/x509"
	"fmt"
	"log"
	"time"

	"github.com/directdl/directdl/certstore/registrytest"
)

// Chain makes the certificates a suite's uploads hold: a leaf first, each
// certificate signed by the next, a self-signed root last. The chain
// verifies with its root as the only trust anchor.
func ExampleChain() {
	chain := registrytest.Chain(3)
	for _, c := range chain {
		fmt.Printf("%s (CA %v), issued by %s\n", c.Subject.CommonName, c.IsCA, c.Issuer.CommonName)
	}

	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(chain[2])
	inter.AddCert(chain[1])
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "mirror.example.com",
		CurrentTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), // inside the chain's fixed validity, whatever the clock says
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified")

	// Every call makes new keys, so two chains share no certificate.
	fmt.Println(registrytest.Chain(1)[0].Equal(registrytest.Chain(1)[0]))
	// Output:
	// registrytest leaf (CA false), issued by registrytest CA 2
	// registrytest CA 2 (CA true), issued by registrytest CA 3
	// registrytest CA 3 (CA true), issued by registrytest CA 3
	// verified
	// false
}
