package certstore_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/download"
)

// A FileStore is the download engine's TrustSource: a certificate imported
// into the agent's store is trusted by the next download of the same
// Client, with no restart. The mirror here is an HTTPS test server on
// 127.0.0.1 whose certificate no system root vouches for.
func ExampleFileStore_trustSource() {
	mirror := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "template bytes")
	}))
	defer mirror.Close()
	dir, err := os.MkdirTemp("", "certstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	store, err := certstore.OpenFileStore(filepath.Join(dir, "trust.p12"), "changeit")
	if err != nil {
		log.Fatal(err)
	}
	c, err := download.New(
		download.WithTrustSource(store),
		download.WithPolicy(download.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
		download.WithRetries(0),
	)
	if err != nil {
		log.Fatal(err)
	}
	get := func(name string) error {
		_, err := c.Get(ctx, download.Request{URL: mirror.URL + "/t.qcow2", Path: filepath.Join(dir, name)})
		return err
	}

	err = get("before.qcow2")
	var unknown x509.UnknownAuthorityError
	fmt.Println("before import, unknown authority:", errors.As(err, &unknown))

	if err := store.Import(ctx, certstore.Entry{Alias: "mirror", Cert: mirror.Certificate()}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after import:", get("after.qcow2"))
	// Output:
	// before import, unknown authority: true
	// after import: <nil>
}
