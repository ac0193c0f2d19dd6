package migrate_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/template"
)

func TestPlanLinkedWhenDestinationHasTheBase(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	spec := linkedVM(t, h)
	copyFile(t, filepath.Join(h.src, "tmpl.qcow2"), filepath.Join(h.dst, "tmpl.qcow2"))
	p := mustPlan(t, spec, nil)
	d := wantStrategy(t, p, "vda", migrate.Linked, "only the top layer")
	if d.Sync != "top" || d.Backing != "tmpl.qcow2" || d.BackingFormat != "qcow2" {
		t.Errorf("sync %q backing %q (%q), want top, tmpl.qcow2 (qcow2)", d.Sync, d.Backing, d.BackingFormat)
	}
	if d.Destination != filepath.Join(h.dst, "vm-root.qcow2") || d.VirtualSize != baseSize {
		t.Errorf("destination %s size %d", d.Destination, d.VirtualSize)
	}
	if d.Fetch != "" || len(p.Fetches) != 0 {
		t.Errorf("fetches %v for a base the destination has", p.Fetches)
	}
	if got := d.Chain[1].DestinationPath; got != filepath.Join(h.dst, "tmpl.qcow2") {
		t.Errorf("base resolves to %s on the destination", got)
	}
	if want := "sha256:" + sha256File(t, filepath.Join(h.src, "tmpl.qcow2")); d.Chain[1].Digest != want {
		t.Errorf("base digest %s, want %s", d.Chain[1].Digest, want)
	}
	if p.Mode != migrate.Incremental || !slices.Contains(p.LibvirtFlags, "VIR_MIGRATE_NON_SHARED_INC") || p.LibvirtFlagBits != 1|8|128 {
		t.Errorf("mode %s flags %v (%d)", p.Mode, p.LibvirtFlags, p.LibvirtFlagBits)
	}
	if !strings.Contains(p.Virsh, "--copy-storage-inc") || !strings.Contains(p.Virsh, "--migrate-disks vda") {
		t.Errorf("virsh line %q", p.Virsh)
	}
	if err := p.Err(); err != nil {
		t.Errorf("preflight: %v", err)
	}
}

func TestPlanLinkedFromRecordedDigests(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	spec := linkedVM(t, h)
	sum := sha256File(t, filepath.Join(h.src, "tmpl.qcow2"))
	spec.Destination.Local = false
	spec.Destination.FreeBytes = 1 << 30
	spec.Destination.Files = []migrate.File{{Path: "tmpl.qcow2", Format: "qcow2", VirtualSize: baseSize, Digest: "{SHA-256}" + strings.ToUpper(sum)}}
	wantStrategy(t, mustPlan(t, spec, nil), "vda", migrate.Linked)

	// The destination's digest is trusted only if the source's base has
	// it: a recorded source digest that disagrees with the file is not
	// consulted when the policy allows reading the file... but with
	// NoHash it is all there is, and a different one means no link.
	spec.Policy.NoHash = true
	spec.Source.Files = []migrate.File{{Path: filepath.Join(h.src, "tmpl.qcow2"), Digest: "sha256:" + sum}}
	wantStrategy(t, mustPlan(t, spec, nil), "vda", migrate.Linked)
	spec.Source.Files[0].Digest = "sha256:" + strings.Repeat("0", 64)
	wantStrategy(t, mustPlan(t, spec, nil), "vda", migrate.Full, "is not the source's")
	spec.Source.Files = nil
	wantStrategy(t, mustPlan(t, spec, nil), "vda", migrate.Full, "policy forbids reading")
}

func TestPlanFullWhenTheBaseCannotBeProven(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, h hosts, spec *migrate.Spec)
		reason string
	}{
		{"same name and size, other content", func(t *testing.T, h hosts, spec *migrate.Spec) {
			qcowBase(t, filepath.Join(h.dst, "tmpl.qcow2"), baseSize, 1<<16*2)
		}, "is not the source's"},
		{"other virtual size", func(t *testing.T, h hosts, spec *migrate.Spec) {
			qcowBase(t, filepath.Join(h.dst, "tmpl.qcow2"), 2*baseSize, 0)
		}, "virtual size"},
		{"other format", func(t *testing.T, h hosts, spec *migrate.Spec) {
			rawBase(t, filepath.Join(h.dst, "tmpl.qcow2"), baseSize, 1)
		}, "is raw"},
		{"inventory without a digest", func(t *testing.T, h hosts, spec *migrate.Spec) {
			spec.Destination.Local = false
			spec.Destination.FreeBytes = 1 << 30
			spec.Destination.Files = []migrate.File{{Path: "tmpl.qcow2", Format: "qcow2", VirtualSize: baseSize}}
		}, "no recorded digest"},
		{"no template named", func(t *testing.T, h hosts, spec *migrate.Spec) {
			spec.Disks[0].Template = ""
		}, "names no template"},
		{"policy: no linked clones", func(t *testing.T, h hosts, spec *migrate.Spec) {
			copyFile(t, filepath.Join(h.src, "tmpl.qcow2"), filepath.Join(h.dst, "tmpl.qcow2"))
			spec.Policy.NoLinked = true
		}, "policy forbids linked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHosts(t)
			spec := linkedVM(t, h)
			tc.setup(t, h, &spec)
			p := mustPlan(t, spec, migrate.Templates{})
			d := wantStrategy(t, p, "vda", migrate.Full, tc.reason)
			if d.Backing != "" || d.Sync != "full" || d.VirtualSize != baseSize || d.DestinationFormat != "qcow2" {
				t.Errorf("full disk: backing %q sync %q size %d format %s", d.Backing, d.Sync, d.VirtualSize, d.DestinationFormat)
			}
			if p.Mode != migrate.Complete || !slices.Contains(p.LibvirtFlags, "VIR_MIGRATE_NON_SHARED_DISK") || slices.Contains(p.LibvirtFlags, "VIR_MIGRATE_NON_SHARED_INC") {
				t.Errorf("mode %s flags %v", p.Mode, p.LibvirtFlags)
			}
		})
	}
}

// TestPlanTemplateDeleted is apache/cloudstack#10246: the VM's template
// was deleted and the destination never had its base. CloudStack picked
// the full copy but prepared no destination disk; the plan must say Full
// with an empty image of the exact size and no backing.
func TestPlanTemplateDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHosts(t)
	spec := linkedVM(t, h)
	repo := template.NewMemory()
	tmpl, err := repo.Register(ctx, template.NewTemplate{
		UUID: tmplUUID, Name: "centos", Format: template.QCOW2, Hypervisor: "KVM",
		URL: "http://127.0.0.1:1/centos.qcow2", Checksum: "sha256:" + sha256File(t, filepath.Join(h.src, "tmpl.qcow2")),
	}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.DeleteFromZone(ctx, tmpl.ID, 1, template.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	p := mustPlan(t, spec, repo)
	d := wantStrategy(t, p, "vda", migrate.Full, "was deleted", tmplUUID)
	if d.Backing != "" || d.VirtualSize != baseSize || len(p.Fetches) != 0 {
		t.Errorf("backing %q size %d fetches %v", d.Backing, d.VirtualSize, p.Fetches)
	}
	if p.Mode != migrate.Complete || p.LibvirtFlagBits != 1|64 {
		t.Errorf("mode %s flag bits %d", p.Mode, p.LibvirtFlagBits)
	}
	xml := p.DomainDisksXML()
	if !strings.Contains(xml, "<source file='"+d.Destination+"'/>") || !strings.Contains(xml, "<backingStore/>") || strings.Contains(xml, "<backingStore type") {
		t.Errorf("domain XML for a full disk:\n%s", xml)
	}
	if err := p.Err(); err != nil {
		t.Errorf("preflight: %v", err)
	}
}

func TestPlanFetchThenLinked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHosts(t)
	spec := linkedVM(t, h)
	// A second VM disk on the same template: one fetch for both.
	qcowImage(t, filepath.Join(h.src, "vm-data.qcow2"), baseSize, "tmpl.qcow2", "qcow2")
	spec.Disks = append(spec.Disks, migrate.Disk{Label: "vdb", Path: filepath.Join(h.src, "vm-data.qcow2"), Template: tmplUUID})
	sum := sha256File(t, filepath.Join(h.src, "tmpl.qcow2"))
	repo := template.NewMemory()
	if _, err := repo.Register(ctx, template.NewTemplate{
		UUID: tmplUUID, Name: "centos", Format: template.QCOW2, Hypervisor: "KVM",
		URL: "https://user:secret@127.0.0.1:1/centos.qcow2", Checksum: "{SHA-256}" + sum,
	}, 1, 2); err != nil {
		t.Fatal(err)
	}
	p := mustPlan(t, spec, repo)
	for _, l := range []string{"vda", "vdb"} {
		d := wantStrategy(t, p, l, migrate.Linked, "fetched")
		if d.Fetch != filepath.Join(h.dst, "tmpl.qcow2") || d.Backing != "tmpl.qcow2" {
			t.Errorf("%s: fetch %q backing %q", l, d.Fetch, d.Backing)
		}
		if strings.Contains(d.Reason, "secret") {
			t.Errorf("%s: reason shows the URL's password: %s", l, d.Reason)
		}
	}
	if len(p.Fetches) != 1 {
		t.Fatalf("fetches %+v, want one", p.Fetches)
	}
	f := p.Fetches[0]
	if f.Path != filepath.Join(h.dst, "tmpl.qcow2") || f.Checksum != "{SHA-256}"+sum || f.Format != "qcow2" || f.VirtualSize != baseSize || f.Template != tmplUUID {
		t.Errorf("fetch %+v", f)
	}
	if p.Mode != migrate.Incremental {
		t.Errorf("mode %s", p.Mode)
	}

	// The template was re-registered with another image: its checksum is
	// not the source base's, and fetching it would give the VM another base.
	other := migrate.Templates{{UUID: tmplUUID, URL: "http://127.0.0.1:1/x", Checksum: "sha256:" + strings.Repeat("ab", 32)}}
	wantStrategy(t, mustPlan(t, spec, other), "vda", migrate.Full, "template was replaced")

	// An MD5 checksum (CloudStack's bare hex) is compared in MD5.
	spec.Policy.NoFetch = true
	wantStrategy(t, mustPlan(t, spec, repo), "vda", migrate.Full, "policy forbids fetching")
}

func TestPlanMixedDisksForceFull(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	spec := linkedVM(t, h)
	copyFile(t, filepath.Join(h.src, "tmpl.qcow2"), filepath.Join(h.dst, "tmpl.qcow2"))
	// vdb was cloned from a template that is gone everywhere.
	rawBase(t, filepath.Join(h.src, "gone.raw"), 4*mib, 7)
	qcowImage(t, filepath.Join(h.src, "vm-data.qcow2"), 4*mib, "gone.raw", "raw")
	// vdc is a standalone raw disk, which never forces anything.
	rawBase(t, filepath.Join(h.src, "scratch.raw"), 2*mib, 8)
	spec.Disks = append(spec.Disks,
		migrate.Disk{Label: "vdb", Path: filepath.Join(h.src, "vm-data.qcow2"), Template: tmplUUID2},
		migrate.Disk{Label: "vdc", Path: filepath.Join(h.src, "scratch.raw"), Format: "raw"})
	p := mustPlan(t, spec, migrate.Templates{})
	wantStrategy(t, p, "vda", migrate.Full, "could be linked", "vdb")
	wantStrategy(t, p, "vdb", migrate.Full, "was deleted")
	c := wantStrategy(t, p, "vdc", migrate.Full, "no backing file")
	if c.DestinationFormat != "raw" || c.VirtualSize != 2*mib {
		t.Errorf("raw disk: format %s size %d", c.DestinationFormat, c.VirtualSize)
	}
	if p.Mode != migrate.Complete || !strings.Contains(p.ModeReason, "vdb") || !strings.Contains(p.ModeReason, "per VM") {
		t.Errorf("mode %s: %s", p.Mode, p.ModeReason)
	}
	for _, d := range p.Disks {
		if d.Backing != "" || d.Sync != "full" {
			t.Errorf("%s: backing %q sync %s in a full plan", d.Label, d.Backing, d.Sync)
		}
	}

	// Without vdb the standalone raw disk rides along an incremental plan.
	spec.Disks = []migrate.Disk{spec.Disks[0], spec.Disks[2]}
	p = mustPlan(t, spec, nil)
	wantStrategy(t, p, "vda", migrate.Linked)
	wantStrategy(t, p, "vdc", migrate.Full)
	if p.Mode != migrate.Incremental {
		t.Errorf("mode %s: %s", p.Mode, p.ModeReason)
	}
	if !strings.Contains(p.Virsh, "--migrate-disks vda,vdc") {
		t.Errorf("virsh %q", p.Virsh)
	}
}

func TestPlanStandaloneDisksOnly(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	qcowImage(t, filepath.Join(h.src, "a.qcow2"), 3*mib, "", "")
	spec := migrate.Spec{Disks: []migrate.Disk{{Label: "vda", Path: filepath.Join(h.src, "a.qcow2")}}, Destination: migrate.Destination{Dir: h.dst, Local: true}}
	p := mustPlan(t, spec, nil)
	wantStrategy(t, p, "vda", migrate.Full, "no backing file")
	if p.Mode != migrate.Complete || !strings.Contains(p.ModeReason, "no disk has a backing file") {
		t.Errorf("mode %s: %s", p.Mode, p.ModeReason)
	}
}

func TestPlanDeepChain(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	if err := os.Mkdir(filepath.Join(h.src, "base"), 0o755); err != nil {
		t.Fatal(err)
	}
	qcowBase(t, filepath.Join(h.src, "base", "tmpl.qcow2"), baseSize, 0)
	qcowImage(t, filepath.Join(h.src, "snap.qcow2"), baseSize, "base/tmpl.qcow2", "qcow2")
	qcowImage(t, filepath.Join(h.src, "vm.qcow2"), baseSize, "snap.qcow2", "qcow2")
	spec := migrate.Spec{Disks: []migrate.Disk{{Label: "vda", Path: filepath.Join(h.src, "vm.qcow2")}}, Destination: migrate.Destination{Dir: h.dst, Local: true}}

	// Nothing at the destination, no template: full.
	d := wantStrategy(t, mustPlan(t, spec, nil), "vda", migrate.Full)
	if len(d.Chain) != 3 || d.Chain[2].Path != filepath.Join(h.src, "base", "tmpl.qcow2") {
		t.Fatalf("chain %+v", d.Chain)
	}
	// The middle layer alone is not enough.
	copyFile(t, filepath.Join(h.src, "snap.qcow2"), filepath.Join(h.dst, "snap.qcow2"))
	wantStrategy(t, mustPlan(t, spec, nil), "vda", migrate.Full, "names no template")
	// With only the base there, the missing middle layer stops the link.
	os.Remove(filepath.Join(h.dst, "snap.qcow2"))
	if err := os.Mkdir(filepath.Join(h.dst, "base"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(h.src, "base", "tmpl.qcow2"), filepath.Join(h.dst, "base", "tmpl.qcow2"))
	wantStrategy(t, mustPlan(t, spec, nil), "vda", migrate.Full, "lacks", "snap.qcow2")
	copyFile(t, filepath.Join(h.src, "snap.qcow2"), filepath.Join(h.dst, "snap.qcow2"))
	// The whole chain, each layer where its name resolves: linked.
	p := mustPlan(t, spec, nil)
	d = wantStrategy(t, p, "vda", migrate.Linked, "backing chain of 2 images")
	if d.Backing != "snap.qcow2" || d.Chain[2].DestinationPath != filepath.Join(h.dst, "base", "tmpl.qcow2") {
		t.Errorf("backing %q, base at %s", d.Backing, d.Chain[2].DestinationPath)
	}
	xml := p.DomainDisksXML()
	if strings.Count(xml, "<backingStore type='file'>") != 2 || strings.Count(xml, "</backingStore>") != 2 {
		t.Errorf("domain XML:\n%s", xml)
	}
}

func TestPlanProtocolBackingIsCopiedWhole(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	qcowImage(t, filepath.Join(h.src, "vm.qcow2"), baseSize, "nbd:127.0.0.1:10809", "raw")
	spec := migrate.Spec{Disks: []migrate.Disk{{Label: "vda", Path: filepath.Join(h.src, "vm.qcow2")}}, Destination: migrate.Destination{Dir: h.dst, Local: true}}
	p := mustPlan(t, spec, nil)
	wantStrategy(t, p, "vda", migrate.Full, "by protocol")
	if len(problems(p, "backing", migrate.Warning)) != 1 {
		t.Errorf("problems %v, want a backing warning", p.Problems)
	}
}

func TestPlanSpecErrors(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	qcowImage(t, filepath.Join(h.src, "a.qcow2"), mib, "", "")
	rawBase(t, filepath.Join(h.src, "r.raw"), mib, 1)
	qcowImage(t, filepath.Join(h.src, "loop1.qcow2"), mib, "loop2.qcow2", "qcow2")
	qcowImage(t, filepath.Join(h.src, "loop2.qcow2"), mib, "loop1.qcow2", "qcow2")
	qcowImage(t, filepath.Join(h.src, "dangling.qcow2"), mib, "missing.qcow2", "qcow2")
	disk := func(label, path, format string) migrate.Disk {
		return migrate.Disk{Label: label, Path: path, Format: format}
	}
	a := disk("vda", filepath.Join(h.src, "a.qcow2"), "")
	for _, tc := range []struct {
		name  string
		disks []migrate.Disk
		dir   string
		want  string
	}{
		{"no disks", nil, h.dst, "no disks"},
		{"relative dir", []migrate.Disk{a}, "dst", "absolute path"},
		{"duplicate label", []migrate.Disk{a, a}, h.dst, "unique"},
		{"bad label", []migrate.Disk{disk("1; rm", a.Path, "")}, h.dst, "label"},
		{"relative path", []migrate.Disk{disk("vda", "a.qcow2", "")}, h.dst, "absolute path"},
		{"unknown format", []migrate.Disk{disk("vda", a.Path, "vmdk")}, h.dst, "only qcow2 and raw"},
		{"qcow2 opened as raw", []migrate.Disk{disk("vda", a.Path, "raw")}, h.dst, "holds a qcow2 header"},
		{"raw opened as qcow2", []migrate.Disk{disk("vda", filepath.Join(h.src, "r.raw"), "qcow2")}, h.dst, "not a qcow2 image"},
		{"missing image", []migrate.Disk{disk("vda", filepath.Join(h.src, "nope.qcow2"), "")}, h.dst, "cannot read image"},
		{"missing backing file", []migrate.Disk{disk("vda", filepath.Join(h.src, "dangling.qcow2"), "")}, h.dst, "cannot read backing file"},
		{"backing loop", []migrate.Disk{disk("vda", filepath.Join(h.src, "loop1.qcow2"), "")}, h.dst, "loops"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := migrate.Spec{Disks: tc.disks, Destination: migrate.Destination{Dir: tc.dir}}
			_, err := migrate.NewPlan(context.Background(), spec, nil)
			if !errors.Is(err, migrate.ErrSpec) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrSpec saying %q", err, tc.want)
			}
			var se *migrate.SpecError
			if len(tc.disks) > 0 && tc.dir == h.dst && (!errors.As(err, &se) || se.Disk == "") {
				t.Errorf("error %v does not name the disk", err)
			}
		})
	}
}

func TestPlanLookupError(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	spec := linkedVM(t, h)
	boom := errors.New("database is down")
	_, err := migrate.NewPlan(context.Background(), spec, failingLookup{boom})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "vda") || !strings.Contains(err.Error(), tmplUUID) {
		t.Fatalf("got %v, want the lookup's error naming the disk and template", err)
	}
}

type failingLookup struct{ err error }

func (f failingLookup) TemplateSource(context.Context, string) (string, string, bool, error) {
	return "", "", false, f.err
}

func TestPlanJSON(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	spec := linkedVM(t, h)
	copyFile(t, filepath.Join(h.src, "tmpl.qcow2"), filepath.Join(h.dst, "tmpl.qcow2"))
	p := mustPlan(t, spec, nil)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back migrate.Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, p) {
		t.Errorf("plan changed through JSON:\n%+v\n%+v", back, *p)
	}
	// The keys ddctl migrate plan -json promises (CLI.md).
	var m struct {
		Flags []string         `json:"libvirt-flags"`
		Disks []map[string]any `json:"disks"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Flags) == 0 || len(m.Disks) != 1 {
		t.Fatalf("json %s", b)
	}
	for _, k := range []string{"strategy", "source", "destination", "virtual-size", "backing", "reason"} {
		if _, ok := m.Disks[0][k]; !ok {
			t.Errorf("disk JSON has no %q: %s", k, b)
		}
	}
	// The spec is JSON too.
	sb, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var spec2 migrate.Spec
	if err := json.Unmarshal(sb, &spec2); err != nil || !reflect.DeepEqual(spec2, spec) {
		t.Errorf("spec changed through JSON: %v\n%+v\n%+v", err, spec2, spec)
	}
}

func TestPlanOddInputs(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	spec := linkedVM(t, h)
	// A backing format the planner does not read: copied whole.
	qcowImage(t, filepath.Join(h.src, "v.qcow2"), baseSize, "base.vmdk", "vmdk")
	spec.Disks = append(spec.Disks, migrate.Disk{Label: "vdb", Path: filepath.Join(h.src, "v.qcow2")})
	p := mustPlan(t, spec, nil)
	wantStrategy(t, p, "vdb", migrate.Full, "vmdk backing file")
	if p.Mode != migrate.Complete {
		t.Errorf("mode %s", p.Mode)
	}
	// A template whose checksum is blank cannot vouch for a fetch.
	spec.Disks = spec.Disks[:1]
	wantStrategy(t, mustPlan(t, spec, migrate.Templates{{UUID: tmplUUID, URL: "http://127.0.0.1:1/t", Checksum: "  "}}), "vda", migrate.Full, "it is empty")
	wantStrategy(t, mustPlan(t, spec, migrate.Templates{{UUID: tmplUUID, URL: "http://127.0.0.1:1/t", Checksum: "{SHA-256}"}}), "vda", migrate.Full, "cannot be read")
	// Negative free space is a spec error.
	spec.Destination.FreeBytes = -1
	if _, err := migrate.NewPlan(context.Background(), spec, nil); !errors.Is(err, migrate.ErrSpec) {
		t.Errorf("free-bytes -1: %v", err)
	}
}
