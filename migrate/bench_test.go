package migrate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/directdl/directdl/migrate"
)

// BenchmarkPlan plans one spec of 10,000 disks cloned from 10 templates,
// each disk its own path (hard links to one overlay per template, so the
// files take no space; the planner opens and reads each path). With
// recorded digests (an inventory from the destination's agent) planning
// reads only headers; with local hashing it also reads each base once.
func BenchmarkPlan(b *testing.B) {
	const disks, templates = 10000, 10
	root := b.TempDir()
	src, dst := filepath.Join(root, "src"), filepath.Join(root, "dst")
	os.Mkdir(src, 0o755)
	os.Mkdir(dst, 0o755)
	var inventory []migrate.File
	for i := range templates {
		base := fmt.Sprintf("tmpl-%d.qcow2", i)
		qcowBase(b, filepath.Join(src, base), 64*mib, 1<<(9+i%8))
		copyFile(b, filepath.Join(src, base), filepath.Join(dst, base))
		inventory = append(inventory, migrate.File{Path: base, Format: "qcow2", VirtualSize: 64 * mib, Digest: "sha256:" + sha256File(b, filepath.Join(src, base))})
		qcowImage(b, filepath.Join(src, fmt.Sprintf("ov-%d.qcow2", i)), 64*mib, base, "qcow2")
	}
	spec := migrate.Spec{Source: migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"}, Destination: migrate.Destination{Host: migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"}, Dir: dst, FreeBytes: 1 << 50}}
	for i := range disks {
		p := filepath.Join(src, fmt.Sprintf("vm-%05d.qcow2", i))
		if err := os.Link(filepath.Join(src, fmt.Sprintf("ov-%d.qcow2", i%templates)), p); err != nil {
			b.Fatal(err)
		}
		spec.Disks = append(spec.Disks, migrate.Disk{Label: fmt.Sprintf("d%05d", i), Path: p})
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name  string
		setup func(s *migrate.Spec)
	}{
		{"disks=10000/recorded-digests", func(s *migrate.Spec) {
			s.Destination.Files = inventory
			for _, f := range inventory {
				s.Source.Files = append(s.Source.Files, migrate.File{Path: filepath.Join(src, f.Path), Digest: f.Digest})
			}
		}},
		{"disks=10000/local-hashing", func(s *migrate.Spec) { s.Destination.Local = true }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := spec
			bc.setup(&s)
			for b.Loop() {
				p, err := migrate.NewPlan(ctx, s, nil)
				if err != nil {
					b.Fatal(err)
				}
				if p.Mode != migrate.Incremental || len(p.Disks) != disks {
					b.Fatalf("mode %s, %d disks", p.Mode, len(p.Disks))
				}
			}
		})
	}
}
