package template_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/directdl/directdl/template"
)

// Deleting a template from one zone leaves it, and its details, in the
// others (the scenario of apache/cloudstack#10600); deleting it from the
// last zone soft-deletes it.
func Example() {
	ctx := context.Background()
	repo := template.NewMemory()
	defer repo.Close()

	tpl, err := repo.Register(ctx, template.NewTemplate{
		Name:    "ubuntu-24.04",
		URL:     "https://cloud-images.example.com/noble.qcow2",
		Details: map[string]string{"UEFI": "secure"},
	}, 1, 2)
	if err != nil {
		panic(err)
	}
	fmt.Println("registered in zones", tpl.Zones, "as", tpl.Format, tpl.Type)

	res, err := repo.DeleteFromZone(ctx, tpl.ID, 2, template.DeleteOptions{})
	if err != nil {
		panic(err)
	}
	got, err := repo.Get(ctx, tpl.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("zone 2 deleted; removed:", res.Removed, "zones:", got.Zones, "UEFI:", got.Details["UEFI"])

	res, err = repo.DeleteFromZone(ctx, tpl.ID, 1, template.DeleteOptions{})
	if err != nil {
		panic(err)
	}
	_, err = repo.Get(ctx, tpl.ID)
	fmt.Println("zone 1 deleted; removed:", res.Removed, "found:", !errors.Is(err, template.ErrNotFound))
	gone, _ := repo.Get(ctx, tpl.ID, template.IncludeRemoved())
	fmt.Println("soft-deleted:", !gone.Removed.IsZero(), "details left:", len(gone.Details))
	// Output:
	// registered in zones [1 2] as QCOW2 USER
	// zone 2 deleted; removed: false zones: [1] UEFI: secure
	// zone 1 deleted; removed: true found: false
	// soft-deleted: true details left: 0
}

// A template that volumes use is not deleted unless forced; the error names
// the volumes.
func ExampleMemory_DeleteFromZone() {
	ctx := context.Background()
	repo := template.NewMemory()
	tpl, _ := repo.Register(ctx, template.NewTemplate{Name: "centos"}, 1, 2)
	repo.AddUsage(ctx, template.Usage{Template: tpl.ID, Zone: 1, Volume: "vol-7"})

	_, err := repo.DeleteFromZone(ctx, tpl.ID, 1, template.DeleteOptions{})
	var inUse *template.InUseError
	if errors.As(err, &inUse) {
		fmt.Println(inUse.Volumes)
		fmt.Println(err)
	}
	res, err := repo.DeleteFromZone(ctx, tpl.ID, 1, template.DeleteOptions{Force: true})
	fmt.Println("forced:", res.Removed, err)
	// Output:
	// [vol-7]
	// template: template 1 is used in zone 1 by 1 volume(s): vol-7; delete them first or force
	// forced: false <nil>
}

// Agents reporting progress on one copy pass the version they read; the
// one that comes second reads again.
func ExampleMemory_UpdateStoreRef() {
	ctx := context.Background()
	repo := template.NewMemory()
	tpl, _ := repo.Register(ctx, template.NewTemplate{Name: "debian"}, 1)
	ref, _ := repo.CreateStoreRef(ctx, template.StoreRef{Template: tpl.ID, Zone: 1, Store: 5, Kind: template.ImageStore})

	ref, _ = repo.UpdateStoreRef(ctx, tpl.ID, 5, ref.Version, template.StoreUpdate{State: template.DownloadInProgress, Progress: 30})
	_, err := repo.UpdateStoreRef(ctx, tpl.ID, 5, ref.Version-1, template.StoreUpdate{State: template.DownloadInProgress, Progress: 20})
	fmt.Println(errors.Is(err, template.ErrConflict), err)

	_, err = repo.UpdateStoreRef(ctx, tpl.ID, 5, ref.Version, template.StoreUpdate{State: template.Bypassed})
	fmt.Println(errors.Is(err, template.ErrTransition), err)

	ref, err = repo.UpdateStoreRef(ctx, tpl.ID, 5, ref.Version, template.StoreUpdate{State: template.Downloaded, Progress: 100})
	fmt.Println(ref.State, ref.Version, err)
	// Output:
	// true template: store 5 of template 1 was updated meanwhile (version 1, now 2); read it again
	// true template: store 5 of template 1 cannot go from DOWNLOAD_IN_PROGRESS to BYPASSED (allowed: DOWNLOAD_IN_PROGRESS, DOWNLOADED, DOWNLOAD_ERROR, ABANDONED)
	// DOWNLOADED 3 <nil>
}
