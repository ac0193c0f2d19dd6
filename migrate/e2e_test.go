package migrate_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/qemuimg"
	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/migrate/qemu"
	"github.com/directdl/directdl/template"
)

// needQEMU returns qemu-system-x86_64's path: CI installs it, so there a
// missing one fails the test; elsewhere it skips.
func needQEMU(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("qemu-system-x86_64 not found (Debian package qemu-system-x86): %v", err)
		}
		t.Skipf("qemu-system-x86_64 not found: %v", err)
	}
	return p
}

func qemuIO(t *testing.T, image string, cmds ...string) {
	t.Helper()
	args := []string{}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command(qemuimg.Path(t, "qemu-io"), append(args, image)...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-io %v: %v\n%s", cmds, err, out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// e2eVM is the scenario of apache/cloudstack#10246 on real images: a
// template with data, and a VM cloned from it whose overlay qemu-io wrote
// to, over the template's data and past it.
func e2eVM(t *testing.T, h hosts) (base, vm string) {
	t.Helper()
	base, vm = filepath.Join(h.src, "tmpl.qcow2"), filepath.Join(h.src, "vm.qcow2")
	qemuimg.Run(t, h.src, "create", "-q", "-f", "qcow2", base, "64M")
	qemuIO(t, base, "write -P 0x11 0 8M", "write -P 0x22 32M 4M")
	qemuimg.Run(t, h.src, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "tmpl.qcow2", vm)
	qemuIO(t, vm, "write -P 0x33 1M 2M", "write -P 0x44 40M 3M", "write -z 33M 1M")
	return base, vm
}

// migrateVM plans, prepares and runs the migration of the VM with two
// real QEMU processes, and checks what the issue asks of every case: the
// destination QEMU runs and qemu-img compare finds the disks identical.
func migrateVM(t *testing.T, h hosts, vm string, lookup migrate.TemplateLookup, fetcher migrate.Fetcher, want migrate.Strategy) (*migrate.Plan, *qemu.Report) {
	t.Helper()
	bin := needQEMU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := migrate.Spec{
		VM:          "i-2-10-VM",
		Disks:       []migrate.Disk{{Label: "vda", Path: vm, Template: tmplUUID}},
		Source:      migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"},
		Destination: migrate.Destination{Host: migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"}, Dir: h.dst, Local: true},
	}
	plan := mustPlan(t, spec, lookup)
	d := wantStrategy(t, plan, "vda", want)
	if err := plan.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.Prepare(ctx, plan, fetcher); err != nil {
		t.Fatal(err)
	}
	sock := t.TempDir() // short: a socket path has at most 107 bytes
	src, err := qemu.Start(ctx, qemu.Config{Binary: bin, Dir: sock, Name: "src", Disks: []qemu.Disk{{Label: "vda", Path: vm}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Kill() })
	dst, err := qemu.Start(ctx, qemu.Config{Binary: bin, Dir: sock, Name: "dst", Incoming: true, Disks: []qemu.Disk{{Label: "vda", Path: d.Destination}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Kill() })
	rep, err := qemu.Run(ctx, qemu.Migration{Plan: plan, Source: src.QMP(), Destination: dst.QMP(), NBDAddress: freeAddr(t), MigrateURI: "tcp:127.0.0.1:0"})
	if err != nil {
		t.Fatalf("migration: %v\nsource: %s\ndestination: %s", err, src.Stderr(), dst.Stderr())
	}
	t.Logf("%s migration: %d bytes copied for vda (sync %s), %d bytes of RAM, %s", plan.Mode, rep.Disks[0].Bytes, rep.Disks[0].Sync, rep.RAMBytes, rep.Duration)
	var status struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := dst.QMP().Execute(ctx, "query-status", nil, &status); err != nil {
		t.Fatal(err)
	}
	if !status.Running || status.Status != "running" || !rep.DestinationRunning {
		t.Errorf("destination QEMU: %+v, report says running=%v", status, rep.DestinationRunning)
	}
	src.Kill()
	dst.Kill()
	out, err := exec.Command(qemuimg.Path(t, "qemu-img"), "compare", "-U", vm, d.Destination).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img compare %s %s: %v\n%s", vm, d.Destination, err, out)
	}
	if !strings.Contains(string(out), "Images are identical") {
		t.Errorf("qemu-img compare: %s", out)
	}
	return plan, rep
}

// (1) The destination holds the template: a linked migration, which
// copies the top layer only and leaves the destination disk an overlay on
// the same backing name.
func TestMigrateLinkedWithQEMU(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	base, vm := e2eVM(t, h)
	copyFile(t, base, filepath.Join(h.dst, "tmpl.qcow2"))
	plan, rep := migrateVM(t, h, vm, nil, nil, migrate.Linked)
	if plan.Mode != migrate.Incremental || rep.Disks[0].Sync != "top" {
		t.Errorf("mode %s sync %s", plan.Mode, rep.Disks[0].Sync)
	}
	// The overlay holds 5 MiB of writes (and 1 MiB of zeroes); the
	// template's 12 MiB stay put.
	if b := rep.Disks[0].Bytes; b < 5<<20 || b > 8<<20 {
		t.Errorf("linked migration copied %d bytes, want the top layer's 5-8 MiB", b)
	}
	qemuInfoAgrees(t, plan.Disks[0].Destination, 64<<20, "tmpl.qcow2")
}

// (2) The template was deleted from the repository and the destination
// never had it (#10246): a full migration into an empty image with no
// backing file.
func TestMigrateTemplateDeletedWithQEMU(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHosts(t)
	base, vm := e2eVM(t, h)
	repo := template.NewMemory()
	tmpl, err := repo.Register(ctx, template.NewTemplate{UUID: tmplUUID, Name: "centos", URL: "http://127.0.0.1:1/t.qcow2", Checksum: "sha256:" + sha256File(t, base)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.DeleteEverywhere(ctx, tmpl.ID, template.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	plan, rep := migrateVM(t, h, vm, repo, nil, migrate.Full)
	if plan.Mode != migrate.Complete || rep.Disks[0].Sync != "full" || !strings.Contains(plan.Disks[0].Reason, "deleted") {
		t.Errorf("mode %s sync %s reason %s", plan.Mode, rep.Disks[0].Sync, plan.Disks[0].Reason)
	}
	// The template's data came along: at least its 12 MiB and the
	// overlay's 5 MiB.
	if b := rep.Disks[0].Bytes; b < 17<<20 {
		t.Errorf("full migration copied %d bytes, want at least 17 MiB", b)
	}
	qemuInfoAgrees(t, plan.Disks[0].Destination, 64<<20, "")
}

// (3) The template is in the repository but not on the destination: it is
// fetched over HTTP from a local server by download's Client, verified,
// and the migration is linked.
func TestMigrateFetchedTemplateWithQEMU(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHosts(t)
	base, vm := e2eVM(t, h)
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fi, err := os.Stat(base)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		served.Add(fi.Size())
		http.ServeFile(w, r, base)
	}))
	defer srv.Close()
	repo := template.NewMemory()
	if _, err := repo.Register(ctx, template.NewTemplate{UUID: tmplUUID, Name: "centos", URL: srv.URL + "/centos.qcow2", Checksum: "{SHA-256}" + sha256File(t, base), DirectDownload: true}, 1); err != nil {
		t.Fatal(err)
	}
	client, err := download.New(download.WithPolicy(download.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, OnlyAllowed: true}))
	if err != nil {
		t.Fatal(err)
	}
	plan, rep := migrateVM(t, h, vm, repo, client, migrate.Linked)
	if plan.Disks[0].Fetch != filepath.Join(h.dst, "tmpl.qcow2") || served.Load() == 0 {
		t.Errorf("fetch %q, %d bytes served", plan.Disks[0].Fetch, served.Load())
	}
	if sha256File(t, filepath.Join(h.dst, "tmpl.qcow2")) != sha256File(t, base) {
		t.Error("the fetched template differs from the source's base")
	}
	if b := rep.Disks[0].Bytes; b > 8<<20 {
		t.Errorf("linked migration copied %d bytes", b)
	}
	qemuInfoAgrees(t, plan.Disks[0].Destination, 64<<20, "tmpl.qcow2")
}
