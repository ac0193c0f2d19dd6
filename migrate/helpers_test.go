package migrate_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/directdl/directdl/internal/qemuimg"
	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/qcow2"
)

// hosts is a source and a destination storage directory.
type hosts struct {
	src, dst string
}

func newHosts(t *testing.T) hosts {
	t.Helper()
	root := t.TempDir()
	h := hosts{src: filepath.Join(root, "src"), dst: filepath.Join(root, "dst")}
	for _, d := range []string{h.src, h.dst} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// rawBase writes a raw image of size bytes of seeded random data.
func rawBase(t testing.TB, path string, size int64, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// qcowImage creates a qcow2 image; with a backing name it is an overlay.
func qcowImage(t testing.TB, path string, size int64, backing, backingFormat string) {
	t.Helper()
	o := qcow2.Options{Size: size, BackingFile: backing, BackingFormat: backingFormat, Unsafe: backing != ""}
	if err := qcow2.Create(path, o); err != nil {
		t.Fatal(err)
	}
}

// qcowBase creates a qcow2 base whose bytes depend on cluster (so two
// bases of one size can differ).
func qcowBase(t testing.TB, path string, size int64, cluster int) {
	t.Helper()
	if err := qcow2.Create(path, qcow2.Options{Size: size, ClusterSize: cluster}); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

const (
	mib       = 1 << 20
	baseSize  = 8 * mib
	tmplUUID  = "6b7f4c1e-8d2a-4e8b-9f1a-2c3d4e5f6a7b"
	tmplUUID2 = "0f1e2d3c-4b5a-4968-8776-655443322110"
)

// linkedVM makes the usual case on the source: a qcow2 base (the
// template on primary storage) and the VM's overlay on it, named by a
// relative backing name. It returns the spec of a one-disk VM.
func linkedVM(t *testing.T, h hosts) migrate.Spec {
	t.Helper()
	qcowBase(t, filepath.Join(h.src, "tmpl.qcow2"), baseSize, 0)
	qcowImage(t, filepath.Join(h.src, "vm-root.qcow2"), baseSize, "tmpl.qcow2", "qcow2")
	return migrate.Spec{
		VM: "i-2-10-VM",
		Disks: []migrate.Disk{{
			Label: "vda", Path: filepath.Join(h.src, "vm-root.qcow2"), Template: tmplUUID,
		}},
		Source:      migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"},
		Destination: migrate.Destination{Host: migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"}, Dir: h.dst, Local: true},
	}
}

func mustPlan(t *testing.T, spec migrate.Spec, lookup migrate.TemplateLookup) *migrate.Plan {
	t.Helper()
	p, err := migrate.NewPlan(context.Background(), spec, lookup)
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	return p
}

func wantStrategy(t *testing.T, p *migrate.Plan, label string, want migrate.Strategy, reasonHas ...string) migrate.DiskPlan {
	t.Helper()
	d, ok := p.Disk(label)
	if !ok {
		t.Fatalf("no plan for disk %s", label)
	}
	if d.Strategy != want {
		t.Fatalf("disk %s: strategy %q, want %q (reason: %s)", label, d.Strategy, want, d.Reason)
	}
	for _, s := range reasonHas {
		if !strings.Contains(d.Reason, s) {
			t.Errorf("disk %s: reason %q does not say %q", label, d.Reason, s)
		}
	}
	return d
}

// problems returns the plan's problems of a check and severity.
func problems(p *migrate.Plan, check string, sev migrate.Severity) []migrate.Problem {
	var out []migrate.Problem
	for _, pr := range p.Problems {
		if pr.Check == check && pr.Severity == sev {
			out = append(out, pr)
		}
	}
	return out
}

// qemuInfoAgrees checks with qemu-img itself that the image at path has
// the virtual size and backing file name given.
func qemuInfoAgrees(t *testing.T, path string, size int64, backing string) {
	t.Helper()
	out := qemuimg.Run(t, filepath.Dir(path), "info", "--output=json", "-U", path)
	var info struct {
		VirtualSize int64  `json:"virtual-size"`
		Backing     string `json:"backing-filename"`
		Format      string `json:"format"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	if info.VirtualSize != size || info.Backing != backing || info.Format != "qcow2" {
		t.Errorf("qemu-img info %s: size %d backing %q format %s; want %d %q qcow2", path, info.VirtualSize, info.Backing, info.Format, size, backing)
	}
}
