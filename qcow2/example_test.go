package qcow2_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/directdl/directdl/qcow2"
)

// Create a template image and a linked clone (an overlay) on it, as an
// orchestrator does when it deploys a VM from a template.
func ExampleCreate() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	base := filepath.Join(dir, "template.qcow2")
	if err := qcow2.Create(base, qcow2.Options{Size: 10 << 30}); err != nil {
		log.Fatal(err)
	}
	// The overlay takes its size from the template; the backing name is
	// stored as given and resolved against the overlay's directory.
	vm := filepath.Join(dir, "vm-disk.qcow2")
	err = qcow2.Create(vm, qcow2.Options{BackingFile: "template.qcow2", BackingFormat: "qcow2"})
	if err != nil {
		log.Fatal(err)
	}
	img, err := qcow2.InspectFile(vm)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.Size, img.BackingFile, img.BackingFormat)
	// Output: 10737418240 template.qcow2 qcow2
}

// Inspect an image from any io.ReaderAt and judge whether it is safe to
// use as a template downloaded from a user.
func ExampleVet() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A "template" whose backing file is a host path: an attack.
	p := filepath.Join(dir, "upload.qcow2")
	err = qcow2.Create(p, qcow2.Options{Size: 1 << 30, BackingFile: "/dev/sda", BackingFormat: "raw", Unsafe: true})
	if err != nil {
		log.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	v, err := qcow2.Vet(f, qcow2.Policy{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("safe:", v.Safe)
	for _, p := range v.Problems {
		fmt.Println(p.Code)
	}
	// Output:
	// safe: false
	// backing-file
}

// InspectFile reads the header without opening the backing file.
func ExampleInspectFile() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	p := filepath.Join(dir, "disk.qcow2")
	err = qcow2.Create(p, qcow2.Options{Size: 1 << 30, ClusterSize: 4096, LazyRefcounts: true})
	if err != nil {
		log.Fatal(err)
	}
	img, err := qcow2.InspectFile(p)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("version %d (compat %s), %d-byte clusters, %d-bit refcounts, L1 %d entries\n",
		img.Version, img.Compat(), img.ClusterSize(), img.RefcountBits(), img.L1Size)
	fmt.Println("lazy refcounts:", img.CompatibleFeatures&qcow2.CompatLazyRefcounts != 0)
	// Output:
	// version 3 (compat 1.1), 4096-byte clusters, 16-bit refcounts, L1 512 entries
	// lazy refcounts: true
}

// Rebase points an overlay at a template in another place, as a live
// migration does when the template sits elsewhere on the destination.
func ExampleRebase() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	p := filepath.Join(dir, "vm.qcow2")
	err = qcow2.Create(p, qcow2.Options{Size: 1 << 30, BackingFile: "old/template.qcow2", BackingFormat: "qcow2", Unsafe: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := qcow2.Rebase(p, "/var/lib/libvirt/images/template.qcow2", "qcow2"); err != nil {
		log.Fatal(err)
	}
	img, _ := qcow2.InspectFile(p)
	fmt.Println(img.BackingFile)

	// An empty name removes the backing file.
	if err := qcow2.Rebase(p, "", ""); err != nil {
		log.Fatal(err)
	}
	img, _ = qcow2.InspectFile(p)
	fmt.Printf("%q\n", img.BackingFile)
	// Output:
	// /var/lib/libvirt/images/template.qcow2
	// ""
}

// Check an image's metadata as qemu-img check does: a refcount lower than
// the references is a corruption, a higher one a leak.
func ExampleCheckFile() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	p := filepath.Join(dir, "disk.qcow2")
	if err := qcow2.Create(p, qcow2.Options{Size: 1 << 30}); err != nil {
		log.Fatal(err)
	}
	res, err := qcow2.CheckFile(context.Background(), p)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("clean:", res.Clean(), "exit code:", res.ExitCode())
	fmt.Print(res.Summary())
	// Output:
	// clean: true exit code: 0
	// No errors were found on the image.
	// Image end offset: 262144
}
