// Command quickstart walks through what directdl does, on this machine only:
// no network, no setup, no root. Run it with
//
//	go run ./examples/quickstart
//
// It creates a VM template image, publishes it on a mirror on the loopback
// interface and direct-downloads it in parallel with its checksum verified
// as it arrives, diagnoses and fixes an HTTPS redirect to a CDN host with
// an incomplete certificate chain, makes a linked clone (an overlay) of it, inspects both,
// judges whether each is safe to accept as a downloaded template, checks
// their metadata, rebases the clone as a live migration to another host
// would, and keeps the template's records in a SQLite repository across
// zones: deleting it from one zone leaves its details intact in the others.
// It grows as the other packages land.
package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/qcow2"
	"github.com/directdl/directdl/template"
	"github.com/directdl/directdl/template/sqlrepo"
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

	// 2. Direct download: a mirror (here on 127.0.0.1) serves the template;
	// the hypervisor pulls it onto primary storage over parallel ranged
	// connections, hashing as it goes, and renames it into place only once
	// it matches the checksum.
	step("direct-download it from a mirror, verified against its {SHA-256} checksum")
	sum, err := fileSHA256(tmpl)
	if err != nil {
		return err
	}
	mirror := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer mirror.Close()
	primary := filepath.Join(dir, "primary")
	if err := os.Mkdir(primary, 0o755); err != nil {
		return err
	}
	dl, err := download.New(
		// The default policy refuses loopback and metadata addresses;
		// this mirror is on loopback, so allow exactly that.
		download.WithPolicy(download.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
		download.WithConnections(4),
	)
	if err != nil {
		return err
	}
	defer dl.CloseIdleConnections()
	res, err := dl.Get(ctx, download.Request{
		URL:      mirror.URL + "/" + filepath.Base(tmpl),
		Path:     filepath.Join(primary, "7f3c-template.qcow2"),
		Checksum: "{SHA-256}" + sum,
	})
	if err != nil {
		return err
	}
	say("%s: %d bytes over %d connection(s), verified %v (%s)", filepath.Base(res.Path), res.Size, res.Connections, res.Verified, res.Digest[:19]+"...")
	_, err = dl.Get(ctx, download.Request{
		URL:      mirror.URL + "/" + filepath.Base(tmpl),
		Path:     filepath.Join(primary, "wrong.qcow2"),
		Checksum: "{SHA-256}" + sum[:63] + "0",
	})
	if _, serr := os.Stat(filepath.Join(primary, "wrong.qcow2")); err != nil && os.IsNotExist(serr) {
		say("with a wrong checksum: refused, and nothing left on primary storage")
	}

	// 2b. The same from a Metalink's mirrors, one of them damaged.
	if err := mirrors(ctx, step, say, dir, tmpl, primary); err != nil {
		return err
	}

	// 2c. The same over HTTPS through a CDN redirect with a broken chain.
	if err := trust(ctx, step, say, dir, filepath.Base(tmpl), sum); err != nil {
		return err
	}

	// 3. A VM disk cloned from it: an overlay whose size comes from the
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

	// 4. Would we accept each file as a template downloaded from a user?
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

	// 5. Metadata check, as qemu-img check does.
	step("check refcounts and L1/L2 tables of both")
	for _, p := range []string{tmpl, vm} {
		res, err := qcow2.CheckFile(ctx, p)
		if err != nil {
			return err
		}
		say("%s: %d corruptions, %d leaks, image ends at %d bytes", filepath.Base(p), res.Corruptions, res.Leaks, res.ImageEndOffset)
	}

	// 6. On a migration destination the template lives elsewhere: point the
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

	// 7. The template's records, shared by the zones that offer it.
	db := filepath.Join(dir, "templates.sqlite")
	uuid, err := records(ctx, step, say, db, sum)
	if err != nil {
		return err
	}

	// 8. A VM cloned from the template, which is now deleted everywhere,
	// live-migrates to a host that never had it (apache/cloudstack#10246).
	if err := migration(ctx, step, say, dir, tmpl, db, uuid); err != nil {
		return err
	}

	step("done; everything was created under a temporary directory and removed")
	return nil
}

// records registers the template in two zones of a SQLite repository,
// copies it to a third, and deletes it zone by zone: its details survive
// until the last zone goes (CloudStack 4.19 and 4.20 wiped them in every
// zone, apache/cloudstack#10600).
// It returns the template's UUID.
func records(ctx context.Context, step, say func(string, ...any), db, sum string) (string, error) {
	step("register the template in zones 1 and 2 with UEFI=secure, copy it to zone 3")
	repo, err := sqlrepo.Open(ctx, db)
	if err != nil {
		return "", err
	}
	defer repo.Close()
	t, err := repo.Register(ctx, template.NewTemplate{
		Name: "centos-9", Format: template.QCOW2, Hypervisor: "KVM", DirectDownload: true,
		URL: "https://mirror.example/centos-template.qcow2", Checksum: "{SHA-256}" + sum,
		Details: map[string]string{"UEFI": "secure"},
	}, 1, 2)
	if err != nil {
		return "", err
	}
	if err := repo.CopyToZone(ctx, t.ID, 3); err != nil {
		return "", err
	}
	show := func() error {
		got, err := repo.Get(ctx, t.ID, template.IncludeRemoved())
		if err != nil {
			return err
		}
		state := "active"
		if !got.Removed.IsZero() {
			state = "removed"
		}
		say("template %d: %s, zones %v, details %v", got.ID, state, got.Zones, got.Details)
		return nil
	}
	if err := show(); err != nil {
		return "", err
	}
	for _, z := range []template.ZoneID{2, 1, 3} {
		step("delete it from zone %d", z)
		if _, err := repo.DeleteFromZone(ctx, t.ID, z, template.DeleteOptions{}); err != nil {
			return "", err
		}
		if err := show(); err != nil {
			return "", err
		}
	}
	return t.UUID, nil
}

// migration plans and prepares the live migration of a VM cloned from the
// template, whose record is deleted everywhere by now, to a host that does
// not hold the template: the disk is copied whole into an empty image of
// the same size, which Prepare creates (CloudStack 4.20 created none and
// libvirt failed, apache/cloudstack#10246).
func migration(ctx context.Context, step, say func(string, ...any), dir, tmpl, db, uuid string) error {
	step("plan the live migration of a VM cloned from the deleted template")
	vm := filepath.Join(dir, "i-2-11-VM-root.qcow2")
	if err := qcow2.Create(vm, qcow2.Options{BackingFile: filepath.Base(tmpl), BackingFormat: "qcow2"}); err != nil {
		return err
	}
	pool := filepath.Join(dir, "kvm2-pool")
	if err := os.Mkdir(pool, 0o755); err != nil {
		return err
	}
	repo, err := sqlrepo.Open(ctx, db)
	if err != nil {
		return err
	}
	defer repo.Close()
	plan, err := migrate.NewPlan(ctx, migrate.Spec{
		VM:          "i-2-11-VM",
		Disks:       []migrate.Disk{{Label: "vda", Path: vm, Template: uuid}},
		Source:      migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"},
		Destination: migrate.Destination{Host: migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"}, Dir: pool, Local: true, URI: "qemu+ssh://kvm2/system"},
	}, repo)
	if err != nil {
		return err
	}
	if err := plan.Err(); err != nil {
		return err
	}
	d := plan.Disks[0]
	say("vda: %s: %s", d.Strategy, d.Reason)
	say("libvirt flags %v: %s", plan.LibvirtFlags, plan.Virsh)

	step("prepare the destination's disk")
	done, err := migrate.Prepare(ctx, plan, nil)
	if err != nil {
		return err
	}
	for _, p := range done.Created {
		in, err := qcow2.InfoFile(p)
		if err != nil {
			return err
		}
		backing := in.BackingFilename
		if backing == "" {
			backing = "none"
		}
		say("created %s: virtual size %d bytes, backing file %s", filepath.Base(p), in.VirtualSize, backing)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
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
