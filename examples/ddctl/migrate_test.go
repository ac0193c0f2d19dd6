package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/migrate/qemu"
	"github.com/directdl/directdl/qcow2"
)

// migrateHosts makes a source directory with a template base and a VM
// overlay on it, and an empty destination directory.
func migrateHosts(t *testing.T) (src, dst, sum string) {
	t.Helper()
	root := t.TempDir()
	src, dst = filepath.Join(root, "src"), filepath.Join(root, "dst")
	for _, d := range []string{src, dst} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := qcow2.Create(filepath.Join(src, "tmpl.qcow2"), qcow2.Options{Size: 16 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := qcow2.Create(filepath.Join(src, "vm.qcow2"), qcow2.Options{Size: 16 << 20, BackingFile: "tmpl.qcow2", BackingFormat: "qcow2"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(src, "tmpl.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return src, dst, hex.EncodeToString(h[:])
}

func writeSpec(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const migrateUUID = "3e1c9d7a-5b2f-4a61-8c0e-9f8d7c6b5a41"

func migrateSpec(src, dst string) map[string]any {
	return map[string]any{
		"vm":          "i-2-10-VM",
		"disks":       []map[string]any{{"label": "vda", "path": filepath.Join(src, "vm.qcow2"), "template": migrateUUID}},
		"source":      map[string]any{"qemu": "7.2.0", "libvirt": "9.0.0"},
		"destination": map[string]any{"dir": dst, "local": true, "qemu": "7.2.0", "libvirt": "9.0.0"},
	}
}

func TestMigratePlanJSON(t *testing.T) {
	src, dst, _ := migrateHosts(t)
	// The template is deleted and the destination never had it: #10246.
	spec := migrateSpec(src, dst)
	spec["templates"] = []map[string]any{{"uuid": migrateUUID, "url": "http://127.0.0.1:1/t.qcow2", "checksum": "{SHA-256}" + strings.Repeat("0", 64), "removed": true}}
	code, out, errOut := ddctl(t, "migrate", "plan", "-json", "-spec", writeSpec(t, spec))
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var p struct {
		Flags []string `json:"libvirt-flags"`
		Disks []struct {
			Strategy    string `json:"strategy"`
			Source      string `json:"source"`
			Destination string `json:"destination"`
			VirtualSize int64  `json:"virtual-size"`
			Reason      string `json:"reason"`
		} `json:"disks"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
	}
	if len(p.Disks) != 1 {
		t.Fatalf("plan %s", out)
	}
	d := p.Disks[0]
	if d.Strategy != "full" || d.Source != filepath.Join(src, "vm.qcow2") || d.Destination != filepath.Join(dst, "vm.qcow2") || d.VirtualSize != 16<<20 || !strings.Contains(d.Reason, "deleted") {
		t.Errorf("disk %+v", d)
	}
	if strings.Join(p.Flags, ",") != "VIR_MIGRATE_LIVE,VIR_MIGRATE_NON_SHARED_DISK" {
		t.Errorf("flags %v", p.Flags)
	}

	// The human form goes to stderr, stdout stays empty.
	code, out, errOut = ddctl(t, "migrate", "plan", "-spec", writeSpec(t, spec))
	if code != 0 || out != "" || !strings.Contains(errOut, "vda: full") || !strings.Contains(errOut, "virsh migrate --live --copy-storage-all") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestMigratePlanWithRepository(t *testing.T) {
	src, dst, sum := migrateHosts(t)
	db := filepath.Join(t.TempDir(), "t.sqlite")
	code, out, errOut := tpl(t, "register", db, "-name", "centos", "-url", "http://127.0.0.1:1/centos.qcow2",
		"-checksum", "sha256:"+sum, "-uuid", migrateUUID, "-zone", "1", "-zone", "2")
	if code != 0 {
		t.Fatalf("register: %d %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	spec := writeSpec(t, migrateSpec(src, dst))
	strategy := func() (string, string) {
		t.Helper()
		code, out, errOut := ddctl(t, "migrate", "plan", "-json", "-db", db, "-spec", spec)
		if code != 0 {
			t.Fatalf("plan: exit %d: %s", code, errOut)
		}
		var p migrate.Plan
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatal(err)
		}
		return string(p.Disks[0].Strategy), p.Disks[0].Fetch
	}
	// Active in the repository, absent at the destination: fetch, then link.
	if s, fetch := strategy(); s != "linked" || fetch != filepath.Join(dst, "tmpl.qcow2") {
		t.Errorf("active template: %s, fetch %q", s, fetch)
	}
	// Deleted from one zone: still there.
	if code, _, errOut := tpl(t, "delete", db, "-id", id, "-zone", "1"); code != 0 {
		t.Fatal(errOut)
	}
	if s, _ := strategy(); s != "linked" {
		t.Errorf("after deleting one zone: %s", s)
	}
	// Deleted from the last zone: full.
	if code, _, errOut := tpl(t, "delete", db, "-id", id, "-zone", "2"); code != 0 {
		t.Fatal(errOut)
	}
	if s, fetch := strategy(); s != "full" || fetch != "" {
		t.Errorf("after deleting the last zone: %s, fetch %q", s, fetch)
	}
}

func TestMigratePrepare(t *testing.T) {
	src, dst, _ := migrateHosts(t)
	spec := writeSpec(t, migrateSpec(src, dst))
	code, out, errOut := ddctl(t, "migrate", "prepare", "-json", "-spec", spec)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		Prepared migrate.Prepared `json:"prepared"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dst, "vm.qcow2")
	if len(r.Prepared.Created) != 1 || r.Prepared.Created[0] != disk {
		t.Fatalf("created %v", r.Prepared.Created)
	}
	img, err := qcow2.InspectFile(disk)
	if err != nil || img.Size != 16<<20 || img.BackingFile != "" {
		t.Fatalf("prepared disk: %+v %v", img, err)
	}
	// Idempotent.
	code, out, errOut = ddctl(t, "migrate", "prepare", "-json", "-spec", spec)
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || len(r.Prepared.Created) != 0 || len(r.Prepared.Kept) != 1 {
		t.Fatalf("second prepare: exit %d %s %s", code, out, errOut)
	}
}

func TestMigrateErrors(t *testing.T) {
	src, dst, _ := migrateHosts(t)
	// Preflight failure: exit 1, the plan still printed, nothing created.
	spec := migrateSpec(src, dst)
	spec["destination"].(map[string]any)["free-bytes"] = 1000
	spec["destination"].(map[string]any)["local"] = false
	path := writeSpec(t, spec)
	code, out, errOut := ddctl(t, "migrate", "plan", "-json", "-spec", path)
	if code != 1 || !json.Valid([]byte(out)) || !strings.Contains(errOut, "1000 are free") {
		t.Errorf("preflight failure: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	spec["destination"].(map[string]any)["local"] = true
	spec["destination"].(map[string]any)["qemu"] = "6.2.0"
	code, _, errOut = ddctl(t, "migrate", "prepare", "-spec", writeSpec(t, spec))
	if code != 1 || !strings.Contains(errOut, "older than the source's") {
		t.Errorf("prepare with preflight errors: exit %d, %q", code, errOut)
	}
	if entries, _ := os.ReadDir(dst); len(entries) != 0 {
		t.Errorf("destination holds %v", entries)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no spec", []string{"plan"}, "-spec FILE required"},
		{"unknown key", []string{"plan", "-spec", writeSpec(t, map[string]any{"disks": []any{}, "destinaton": map[string]any{}})}, "unknown field"},
		{"spec error", []string{"plan", "-spec", writeSpec(t, map[string]any{"disks": []map[string]any{{"label": "vda", "path": filepath.Join(src, "nope.qcow2")}}, "destination": map[string]any{"dir": dst}})}, "cannot read image"},
		{"run without sockets", []string{"run", "-spec", path}, "-source-qmp required"},
	} {
		code, out, errOut := ddctl(t, append([]string{"migrate"}, tc.args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 2 saying %q", tc.name, code, out, errOut, tc.want)
		}
	}
}

// ddctl migrate run plans, prepares and migrates a running QEMU to a
// destination QEMU over their QMP sockets, on 127.0.0.1.
func TestMigrateRunWithQEMU(t *testing.T) {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("qemu-system-x86_64 not found (Debian package qemu-system-x86): %v", err)
		}
		t.Skip("qemu-system-x86_64 not found")
	}
	src, dst, _ := migrateHosts(t)
	vm := filepath.Join(src, "vm.qcow2")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The template is gone: a full migration into a disk run prepares.
	spec := writeSpec(t, migrateSpec(src, dst))
	sock := t.TempDir()
	srcVM, err := qemu.Start(ctx, qemu.Config{Binary: bin, Dir: sock, Name: "src", Disks: []qemu.Disk{{Label: "vda", Path: vm}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srcVM.Kill()
	// The destination QEMU opens its disk at start, so it is prepared
	// first; run then keeps it.
	if code, _, errOut := ddctl(t, "migrate", "prepare", "-spec", spec); code != 0 {
		t.Fatalf("prepare: %s", errOut)
	}
	dstVM, err := qemu.Start(ctx, qemu.Config{Binary: bin, Dir: sock, Name: "dst", Incoming: true, Disks: []qemu.Disk{{Label: "vda", Path: filepath.Join(dst, "vm.qcow2")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer dstVM.Kill()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nbd := l.Addr().String()
	l.Close()
	// A QMP socket serves one client at a time: leave both to ddctl.
	srcVM.QMP().Close()
	dstVM.QMP().Close()
	code, out, errOut := ddctl(t, "migrate", "run", "-json", "-spec", spec, "-source-qmp", srcVM.Socket(), "-dest-qmp", dstVM.Socket(),
		"-nbd", nbd, "-migrate-uri", "tcp:127.0.0.1:0")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	var r struct {
		Prepared struct{ Kept []string } `json:"prepared"`
		Report   struct {
			Disks []struct {
				Label string `json:"label"`
				Sync  string `json:"sync"`
				Bytes int64  `json:"bytes"`
			} `json:"disks"`
			Running bool `json:"destination-running"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("stdout: %v\n%s", err, out)
	}
	if !r.Report.Running || len(r.Report.Disks) != 1 || r.Report.Disks[0].Sync != "full" || len(r.Prepared.Kept) != 1 {
		t.Errorf("report %+v", r)
	}
	srcVM.Kill()
	dstVM.Kill()
	if out, err := exec.Command("qemu-img", "compare", "-U", vm, filepath.Join(dst, "vm.qcow2")).CombinedOutput(); err != nil {
		t.Errorf("qemu-img compare: %v\n%s", err, out)
	}
}
