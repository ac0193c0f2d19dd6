// Command quickstart walks through what directdl does, on this machine only:
// no network, no setup, no root. Run it with
//
//	go run ./examples/quickstart
//
// Today it exercises the qcow2 package: it creates a VM template image and a
// linked clone (an overlay) on it, inspects both, judges whether each is
// safe to accept as a downloaded template, checks their metadata, and
// rebases the clone as a live migration to another host would. It grows as
// the other packages land.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/directdl/directdl/qcow2"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatalf("quickstart: %v", err)
	}
}

func run(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "directdl-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	step := func(format string, args ...any) { fmt.Fprintf(w, "==> "+format+"\n", args...) }
	say := func(format string, args ...any) { fmt.Fprintf(w, "    "+format+"\n", args...) }

	// 1. A template, as an image store would publish it.
	tmpl := filepath.Join(dir, "centos-template.qcow2")
	step("create a 20 GiB template image (written atomically, identical to qemu-img's)")
	if err := qcow2.Create(tmpl, qcow2.Options{Size: 20 << 30}); err != nil {
		return err
	}
	if err := describe(say, tmpl); err != nil {
		return err
	}

	// 2. A VM disk cloned from it: an overlay whose size comes from the
	// template and whose backing file is stored relative to its directory.
	vm := filepath.Join(dir, "i-2-10-VM-root.qcow2")
	step("create a linked clone of it for a VM")
	err = qcow2.Create(vm, qcow2.Options{BackingFile: filepath.Base(tmpl), BackingFormat: "qcow2"})
	if err != nil {
		return err
	}
	if err := describe(say, vm); err != nil {
		return err
	}

	// 3. Would we accept each file as a template downloaded from a user?
	step("vet both as if they were templates downloaded from a user")
	for _, p := range []string{tmpl, vm} {
		v, err := vet(p)
		if err != nil {
			return err
		}
		if v.Safe {
			say("%s: safe to use as a template", filepath.Base(p))
		}
		for _, pr := range v.Problems {
			say("%s: UNSAFE (%s): %s", filepath.Base(p), pr.Code, pr.Message)
		}
	}

	// 4. Metadata check, as qemu-img check does.
	step("check refcounts and L1/L2 tables of both")
	for _, p := range []string{tmpl, vm} {
		res, err := qcow2.CheckFile(ctx, p)
		if err != nil {
			return err
		}
		say("%s: %d corruptions, %d leaks, image ends at %d bytes", filepath.Base(p), res.Corruptions, res.Leaks, res.ImageEndOffset)
	}

	// 5. On a migration destination the template lives elsewhere: point the
	// clone at it without touching data (qemu-img rebase -u).
	step("rebase the clone onto the template's path on a migration destination")
	dest := "/var/lib/libvirt/images/centos-template.qcow2"
	if err := qcow2.Rebase(vm, dest, "qcow2"); err != nil {
		return err
	}
	img, err := qcow2.InspectFile(vm)
	if err != nil {
		return err
	}
	say("%s now backed by %s (%s)", filepath.Base(vm), img.BackingFile, img.BackingFormat)

	step("done; everything was created under a temporary directory and removed")
	return nil
}

func describe(say func(string, ...any), path string) error {
	in, err := qcow2.InfoFile(path)
	if err != nil {
		return err
	}
	say("%s: qcow2 v%s, virtual size %d bytes, %d-byte clusters", filepath.Base(path), in.FormatSpecific.Data.Compat, in.VirtualSize, in.ClusterSize)
	if in.BackingFilename != "" {
		say("backing file %s (%s), resolved to %s", in.BackingFilename, in.BackingFilenameFormat, filepath.Base(in.FullBackingFilename))
	}
	return nil
}

func vet(path string) (*qcow2.Verdict, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return qcow2.Vet(f, qcow2.Policy{})
}
