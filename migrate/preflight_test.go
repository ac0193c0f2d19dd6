package migrate_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/directdl/directdl/migrate"
)

func TestPreflightVersions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		src, dst   string
		sev        migrate.Severity
		msg, fix   string
		noProblems bool
	}{
		{name: "same", src: "QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)", dst: "7.2.19", noProblems: true},
		{name: "newer destination patch", src: "7.2.0", dst: "7.2.19", noProblems: true},
		{name: "older destination", src: "8.2.2", dst: "7.2.0", sev: migrate.Error, msg: "older than the source's 8.2.2", fix: "upgrade QEMU"},
		{name: "newer destination minor", src: "7.1.0", dst: "7.2.0", sev: migrate.Warning, msg: "differs", fix: "same QEMU version"},
		{name: "unknown destination", src: "7.2.0", dst: "", sev: migrate.Warning, msg: "destination's QEMU version is unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHosts(t)
			spec := linkedVM(t, h)
			spec.Source.QEMU, spec.Destination.QEMU = tc.src, tc.dst
			p := mustPlan(t, spec, nil)
			got := append(problems(p, "versions", migrate.Error), problems(p, "versions", migrate.Warning)...)
			if tc.noProblems {
				if len(got) != 0 {
					t.Fatalf("problems %v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Severity != tc.sev || !strings.Contains(got[0].Message, tc.msg) || !strings.Contains(got[0].Fix, tc.fix) {
				t.Fatalf("problems %v, want one %s saying %q", got, tc.sev, tc.msg)
			}
			if err := p.Err(); (err != nil) != (tc.sev == migrate.Error) || err != nil && !errors.Is(err, migrate.ErrPreflight) {
				t.Errorf("Err() = %v", err)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][3]int{
		"7.2.0": {7, 2, 0}, "QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)": {7, 2, 19},
		"libvirtd (libvirt) 9.0.0": {9, 0, 0}, "10.1": {10, 1, 0},
	} {
		if got, ok := migrate.ParseVersion(in); !ok || got != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "seven", "7", "99999999999999999999.1"} {
		if v, ok := migrate.ParseVersion(in); ok {
			t.Errorf("ParseVersion(%q) = %v, want not ok", in, v)
		}
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"7.2.0", "QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)", "1.2", "x9.9.9.9", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := migrate.ParseVersion(s)
		if !ok {
			return
		}
		for _, n := range v {
			if n < 0 || n > 1<<20 {
				t.Fatalf("ParseVersion(%q) = %v", s, v)
			}
		}
		// Reading the version found, written plainly, gives it back.
		again, ok := migrate.ParseVersion(fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]))
		if !ok || again != v {
			t.Fatalf("ParseVersion(%q) = %v, but %v read back as %v", s, v, v, again)
		}
	})
}

func TestPreflightSpace(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	spec := linkedVM(t, h)
	spec.Destination.FreeBytes = 1000
	p := mustPlan(t, spec, migrate.Templates{})
	got := problems(p, "space", migrate.Error)
	if len(got) != 1 || !strings.Contains(got[0].Message, "1000 are free") || !strings.Contains(got[0].Message, "vda") {
		t.Fatalf("space problems %v", got)
	}
	if err := p.Err(); !errors.Is(err, migrate.ErrPreflight) || !strings.Contains(err.Error(), "fix:") {
		t.Errorf("Err() = %v", err)
	}
	spec.Destination.FreeBytes = p.NeedBytes
	if got := problems(mustPlan(t, spec, migrate.Templates{}), "space", migrate.Error); len(got) != 0 {
		t.Errorf("with exactly enough space: %v", got)
	}
	// Unknown space is a warning, not an error.
	spec.Destination.FreeBytes, spec.Destination.Local = 0, false
	p = mustPlan(t, spec, migrate.Templates{})
	if len(problems(p, "space", migrate.Warning)) != 1 || p.Err() != nil {
		t.Errorf("unknown space: %v", p.Problems)
	}
}

func TestPreflightPaths(t *testing.T) {
	t.Parallel()
	t.Run("two disks, one destination", func(t *testing.T) {
		t.Parallel()
		h := newHosts(t)
		spec := linkedVM(t, h)
		qcowImage(t, filepath.Join(h.src, "b.qcow2"), mib, "", "")
		spec.Disks = append(spec.Disks, migrate.Disk{Label: "vdb", Path: filepath.Join(h.src, "b.qcow2"), Destination: filepath.Join(h.dst, "vm-root.qcow2")})
		p := mustPlan(t, spec, migrate.Templates{})
		got := problems(p, "paths", migrate.Error)
		if len(got) != 1 || got[0].Disk != "vdb" || !strings.Contains(got[0].Message, "also disk vda's") {
			t.Fatalf("problems %v", got)
		}
	})
	t.Run("destination disk exists with data", func(t *testing.T) {
		t.Parallel()
		h := newHosts(t)
		spec := linkedVM(t, h)
		rawBase(t, filepath.Join(h.dst, "vm-root.qcow2"), mib, 3)
		got := problems(mustPlan(t, spec, migrate.Templates{}), "paths", migrate.Error)
		if len(got) != 1 || got[0].Disk != "vda" || !strings.Contains(got[0].Message, "already exists") {
			t.Fatalf("problems %v", got)
		}
	})
	t.Run("destination disk in the inventory", func(t *testing.T) {
		t.Parallel()
		h := newHosts(t)
		spec := linkedVM(t, h)
		spec.Destination.Local = false
		spec.Destination.Files = []migrate.File{{Path: "vm-root.qcow2"}}
		got := problems(mustPlan(t, spec, migrate.Templates{}), "paths", migrate.Error)
		if len(got) != 1 || !strings.Contains(got[0].Message, "already exists on the destination host") {
			t.Fatalf("problems %v", got)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		t.Parallel()
		h := newHosts(t)
		spec := linkedVM(t, h)
		spec.Disks[0].Destination = filepath.Join(h.dst, "nope", "vm.qcow2")
		got := problems(mustPlan(t, spec, migrate.Templates{}), "paths", migrate.Error)
		if len(got) != 1 || !strings.Contains(got[0].Message, filepath.Join(h.dst, "nope")) {
			t.Fatalf("problems %v", got)
		}
	})
	t.Run("relative backing name follows the disk", func(t *testing.T) {
		t.Parallel()
		h := newHosts(t)
		spec := linkedVM(t, h)
		sub := filepath.Join(h.dst, "sub")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		// The disk moves into sub/, where "tmpl.qcow2" means sub/tmpl.qcow2.
		copyFile(t, filepath.Join(h.src, "tmpl.qcow2"), filepath.Join(sub, "tmpl.qcow2"))
		spec.Disks[0].Destination = filepath.Join(sub, "vm-root.qcow2")
		p := mustPlan(t, spec, nil)
		wantStrategy(t, p, "vda", migrate.Linked)
		// The planner proved the base where the name resolves: nothing to
		// warn about.
		if got := problems(p, "backing", migrate.Warning); len(got) != 0 {
			t.Errorf("problems %v", got)
		}
		if d, _ := p.Disk("vda"); d.Chain[1].DestinationPath != filepath.Join(sub, "tmpl.qcow2") {
			t.Errorf("base at %s", d.Chain[1].DestinationPath)
		}
		if !strings.Contains(p.Virsh, "--xml") {
			t.Errorf("a disk that moves needs the domain XML: %q", p.Virsh)
		}
	})
	t.Run("backing outside the destination directory", func(t *testing.T) {
		t.Parallel()
		h := newHosts(t)
		qcowBase(t, filepath.Join(filepath.Dir(h.src), "shared.qcow2"), baseSize, 0)
		qcowImage(t, filepath.Join(h.src, "vm.qcow2"), baseSize, "../shared.qcow2", "qcow2")
		spec := migrate.Spec{Disks: []migrate.Disk{{Label: "vda", Path: filepath.Join(h.src, "vm.qcow2")}}, Destination: migrate.Destination{Dir: h.dst, Local: true}}
		p := mustPlan(t, spec, nil)
		// The same file on this machine: the destination "has" it.
		wantStrategy(t, p, "vda", migrate.Linked)
		got := problems(p, "backing", migrate.Warning)
		if len(got) != 1 || !strings.Contains(got[0].Message, "outside the destination directory") {
			t.Fatalf("problems %v", got)
		}
	})
}

// A disk whose backing file the planner cannot follow still has one: it
// is copied whole and forces the VM's mode, or an incremental copy would
// give the destination its top layer on no base.
func TestPlanUnreadBackingForcesFull(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	spec := linkedVM(t, h)
	copyFile(t, filepath.Join(h.src, "tmpl.qcow2"), filepath.Join(h.dst, "tmpl.qcow2"))
	qcowImage(t, filepath.Join(h.src, "nbd.qcow2"), baseSize, "nbd:127.0.0.1:10809", "raw")
	spec.Disks = append(spec.Disks, migrate.Disk{Label: "vdb", Path: filepath.Join(h.src, "nbd.qcow2")})
	p := mustPlan(t, spec, nil)
	wantStrategy(t, p, "vdb", migrate.Full, "by protocol")
	wantStrategy(t, p, "vda", migrate.Full, "could be linked")
	if p.Mode != migrate.Complete {
		t.Errorf("mode %s", p.Mode)
	}
}
