package migrate_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/qcow2"
)

// A VM cloned from a template that was deleted since, with no copy of the
// template on the destination (apache/cloudstack#10246): the plan copies
// the disk whole into an empty image of the same size, and Prepare makes
// that image.
func Example() {
	root, err := os.MkdirTemp("", "migrate-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	src, dst := filepath.Join(root, "src"), filepath.Join(root, "dst")
	os.Mkdir(src, 0o755)
	os.Mkdir(dst, 0o755)
	// The template on the source's primary storage, and the VM's disk.
	qcow2.Create(filepath.Join(src, "tmpl.qcow2"), qcow2.Options{Size: 1 << 30})
	qcow2.Create(filepath.Join(src, "vm.qcow2"), qcow2.Options{Size: 1 << 30, BackingFile: "tmpl.qcow2", BackingFormat: "qcow2"})

	spec := migrate.Spec{
		VM:          "web-1",
		Disks:       []migrate.Disk{{Label: "vda", Path: filepath.Join(src, "vm.qcow2"), Template: "6b7f4c1e"}},
		Source:      migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"},
		Destination: migrate.Destination{Host: migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"}, Dir: dst, Local: true, URI: "qemu+ssh://kvm2/system"},
	}
	// A template.Repository would do; this list says the template is gone.
	templates := migrate.Templates{{UUID: "6b7f4c1e", URL: "https://images.example/t.qcow2", Checksum: "{MD5}0123456789abcdef0123456789abcdef", Removed: true}}
	ctx := context.Background()
	plan, err := migrate.NewPlan(ctx, spec, templates)
	if err != nil {
		log.Fatal(err)
	}
	if err := plan.Err(); err != nil {
		log.Fatal(err)
	}
	d := plan.Disks[0]
	fmt.Println(d.Label, d.Strategy, "sync="+d.Sync, d.VirtualSize, "backing:", d.Backing == "")
	fmt.Println(plan.LibvirtFlags)
	fmt.Println(plan.Virsh)

	if _, err := migrate.Prepare(ctx, plan, nil); err != nil {
		log.Fatal(err)
	}
	img, err := qcow2.InspectFile(d.Destination)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("prepared: %d bytes, backing %q\n", img.Size, img.BackingFile)
	// Output:
	// vda full sync=full 1073741824 backing: true
	// [VIR_MIGRATE_LIVE VIR_MIGRATE_NON_SHARED_DISK]
	// virsh migrate --live --copy-storage-all --migrate-disks vda --xml DEST_XML web-1 qemu+ssh://kvm2/system
	// prepared: 1073741824 bytes, backing ""
}
