package sqlregistry_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/certstore/registrytest"
	"github.com/directdl/directdl/certstore/sqlregistry"
)

// A certificate uploaded with its CA holds two aliases in its zone until it
// is revoked, and the records survive closing the database.
func Example() {
	dir, err := os.MkdirTemp("", "sqlregistry-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "certstore.sqlite")
	ctx := context.Background()

	db, err := sqlregistry.Open(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	uploaded := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	mirror, err := db.AddCertificate(ctx, certstore.Certificate{
		Alias: "mirror", Zone: 1, Hypervisor: certstore.KVM,
		Chain:   registrytest.Chain(2), // the mirror's certificate and its CA
		Created: uploaded,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added", mirror, "as", mirror.EntryAliases())

	_, err = db.AddCertificate(ctx, certstore.Certificate{
		Alias: "mirror-2", Zone: 1, Hypervisor: "kvm", Chain: registrytest.Chain(1), Created: uploaded,
	})
	fmt.Println(errors.Is(err, certstore.ErrDuplicateAlias), err)

	if err := db.PutHostState(ctx, certstore.HostState{Cert: mirror.ID, Host: 7, Status: certstore.Synced, Updated: uploaded}); err != nil {
		log.Fatal(err)
	}
	if err := db.RevokeCertificate(ctx, mirror.ID, uploaded.Add(24*time.Hour)); err != nil {
		log.Fatal(err)
	}
	if err := db.Close(); err != nil {
		log.Fatal(err)
	}

	db, err = sqlregistry.Open(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	all, err := db.Certificates(ctx, certstore.Filter{Zone: 1, IncludeRevoked: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range all {
		states, err := db.HostStates(ctx, c.ID, 0)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(c, "revoked at", c.Revoked.Format(time.RFC3339))
		for _, s := range states {
			fmt.Printf("  host %d: %s at %s\n", s.Host, s.Status, s.Updated.Format(time.RFC3339))
		}
	}
	// Output:
	// added certificate "mirror" (id 1, zone 1) as [mirror mirror-2]
	// true certstore: duplicate alias: zone 1 already has KVM certificate "mirror" (id 1) holding alias "mirror-2"; revoke it first or choose another alias
	// certificate "mirror" (id 1, zone 1) revoked at 2025-03-15T09:26:53Z
	//   host 7: synced at 2025-03-14T09:26:53Z
}
