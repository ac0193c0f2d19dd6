package sqlrepo_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/directdl/directdl/template"
	"github.com/directdl/directdl/template/sqlrepo"
)

// A template offered in two zones keeps its details when one zone deletes
// it (apache/cloudstack#10600), and is soft-deleted with them when the last
// zone does.
func Example() {
	dir, err := os.MkdirTemp("", "sqlrepo-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	repo, err := sqlrepo.Open(ctx, filepath.Join(dir, "templates.sqlite"))
	if err != nil {
		log.Fatal(err)
	}
	defer repo.Close()

	tpl, err := repo.Register(ctx, template.NewTemplate{
		Name:    "ubuntu-24.04",
		URL:     "https://images.example.com/noble.qcow2",
		Details: map[string]string{"UEFI": "secure"},
	}, 1, 2)
	if err != nil {
		log.Fatal(err)
	}

	res, err := repo.DeleteFromZone(ctx, tpl.ID, 2, template.DeleteOptions{})
	if err != nil {
		log.Fatal(err)
	}
	got, err := repo.Get(ctx, tpl.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("zone 2 deleted; removed:", res.Removed, "zones:", got.Zones, "details:", got.Details)

	res, err = repo.DeleteFromZone(ctx, tpl.ID, 1, template.DeleteOptions{})
	if err != nil {
		log.Fatal(err)
	}
	got, err = repo.Get(ctx, tpl.ID, template.IncludeRemoved())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("zone 1 deleted; removed:", res.Removed, "zones:", got.Zones, "details:", got.Details)
	// Output:
	// zone 2 deleted; removed: false zones: [1] details: map[UEFI:secure]
	// zone 1 deleted; removed: true zones: [] details: map[]
}
