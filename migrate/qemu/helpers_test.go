package qemu

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/directdl/directdl/internal/qemuimg"
	"github.com/directdl/directdl/migrate"
)

// qemuSystem returns the path of qemu-system-x86_64. The executor's tests
// are about real QEMU, so CI (which installs qemu-system-x86) fails
// without it and other machines skip.
func qemuSystem(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("qemu-system-x86_64 not found; CI must install qemu-system-x86")
		}
		t.Skip("qemu-system-x86_64 not installed")
	}
	return p
}

// shortDir returns a temporary directory with a short path, because a
// unix socket path is limited to 107 bytes and t.TempDir's paths grow
// with the test's name.
func shortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "qmp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// startVM starts a QEMU that the test's clean-up kills, whatever happens.
func startVM(t testing.TB, name string, incoming bool, disks ...Disk) *Process {
	t.Helper()
	bin := qemuSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Start(ctx, Config{Binary: bin, Dir: shortDir(t), Name: name, Disks: disks, Incoming: incoming})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := p.Kill(); err != nil {
			t.Errorf("kill %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("%s QEMU output:\n%s", name, p.Stderr())
		}
	})
	return p
}

// stop ends a VM gracefully, so that its images are closed cleanly before
// qemu-img reads them.
func stop(t testing.TB, p *Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func qemuImg(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return qemuimg.Run(t, dir, args...)
}

// qemuIO runs qemu-io commands on an image opened with its format.
func qemuIO(t testing.TB, format, path string, cmds ...string) {
	t.Helper()
	args := []string{"-f", format}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command(qemuimg.Path(t, "qemu-io"), append(args, path)...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "failed") || strings.Contains(string(out), "Pattern verification") {
		t.Fatalf("qemu-io %s %v: %v\n%s", path, cmds, err, out)
	}
}

// compare runs qemu-img compare and returns its exit status: 0 when the
// guest-visible contents are equal, 1 when they differ.
func compare(t testing.TB, fa, a, fb, b string) int {
	t.Helper()
	cmd := exec.Command(qemuimg.Path(t, "qemu-img"), "compare", "-U", "-f", fa, "-F", fb, a, b)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return 1
	}
	t.Fatalf("qemu-img compare %s %s: %v\n%s", a, b, err, out)
	return -1
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

const (
	mib      = 1 << 20
	diskSize = 64 * mib
)

// topWrites are what the tests write into the VM's overlay: over the
// base's data, past it, and at the disk's end. topBytes is their sum.
var topWrites = []string{
	"write -P 0x22 1M 512k",
	"write -P 0x33 10M 1M",
	"write -P 0x44 63M 64k",
}

const topBytes = 512<<10 + 1*mib + 64<<10

// tree is a VM's disk on the source, made from a template base, and the
// destination directory.
type tree struct {
	src, dst string // directories
	base     string // src/base.qcow2
	vm       string // src/vm.qcow2, an overlay on base
}

// newTree builds the source side: a 64 MiB base with 4 MiB of data and an
// overlay on it with topWrites.
func newTree(t testing.TB) tree {
	t.Helper()
	root := t.TempDir()
	tr := tree{src: filepath.Join(root, "src"), dst: filepath.Join(root, "dst")}
	for _, d := range []string{tr.src, tr.dst} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tr.base = filepath.Join(tr.src, "base.qcow2")
	tr.vm = filepath.Join(tr.src, "vm.qcow2")
	qemuImg(t, tr.src, "create", "-q", "-f", "qcow2", tr.base, "64M")
	qemuIO(t, "qcow2", tr.base, "write -P 0x11 0 4M")
	qemuImg(t, tr.src, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2", tr.vm)
	qemuIO(t, "qcow2", tr.vm, topWrites...)
	return tr
}

// linkedDst prepares the destination for a linked copy: the same base
// under the same name, and an empty overlay on it.
func (tr tree) linkedDst(t testing.TB) string {
	t.Helper()
	copyFile(t, tr.base, filepath.Join(tr.dst, "base.qcow2"))
	p := filepath.Join(tr.dst, "vm.qcow2")
	qemuImg(t, tr.dst, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2", "-u", p, "64M")
	return p
}

// fullDst prepares the destination for a full copy: an empty qcow2 of the
// given size with no backing file.
func (tr tree) fullDst(t testing.TB, size string) string {
	t.Helper()
	p := filepath.Join(tr.dst, "vm.qcow2")
	qemuImg(t, tr.dst, "create", "-q", "-f", "qcow2", p, size)
	return p
}

func diskPlan(label, src, srcFormat, dst, dstFormat string, size int64, linked bool) migrate.DiskPlan {
	d := migrate.DiskPlan{
		Label: label, Source: src, Format: srcFormat,
		Destination: dst, DestinationFormat: dstFormat,
		VirtualSize: size, Strategy: migrate.Full, Sync: "full",
	}
	if linked {
		d.Strategy, d.Sync = migrate.Linked, "top"
	}
	return d
}

// pair is a source VM and a destination VM waiting for it.
type pair struct {
	src, dst *Process
}

// vdaPair starts a source VM running src and a destination VM waiting for
// a migration with dst, each as disk vda.
func vdaPair(t testing.TB, src, dst string) pair {
	t.Helper()
	return pair{
		src: startVM(t, "src", false, Disk{Label: "vda", Path: src}),
		dst: startVM(t, "dst", true, Disk{Label: "vda", Path: dst}),
	}
}

func (p pair) migration(t testing.TB, plan *migrate.Plan) Migration {
	return Migration{
		Plan:        plan,
		Source:      p.src.QMP(),
		Destination: p.dst.QMP(),
		NBDAddress:  "127.0.0.1:" + freePort(t),
		MigrateURI:  "tcp:127.0.0.1:0",
		Logger:      slog.New(slog.NewTextHandler(testLog{t}, nil)),
	}
}

// testLog writes a run's log records to the test's log.
type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func status(t testing.TB, m *Monitor) string {
	t.Helper()
	var st statusInfo
	if err := m.Execute(context.Background(), "query-status", nil, &st); err != nil {
		t.Fatalf("%s: query-status: %v", m.Name(), err)
	}
	return st.Status
}

func jobs(t testing.TB, m *Monitor) []jobInfo {
	t.Helper()
	var js []jobInfo
	if err := m.Execute(context.Background(), "query-jobs", nil, &js); err != nil {
		t.Fatalf("%s: query-jobs: %v", m.Name(), err)
	}
	return js
}

// nodeNames returns the source's block node names.
func nodeNames(t testing.TB, m *Monitor) []string {
	t.Helper()
	var nodes []struct {
		NodeName string `json:"node-name"`
	}
	if err := m.Execute(context.Background(), "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
		t.Fatalf("%s: query-named-block-nodes: %v", m.Name(), err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.NodeName)
	}
	return names
}

func exports(t testing.TB, m *Monitor) int {
	t.Helper()
	var ex []map[string]any
	if err := m.Execute(context.Background(), "query-block-exports", nil, &ex); err != nil {
		t.Fatalf("%s: query-block-exports: %v", m.Name(), err)
	}
	return len(ex)
}

// assertSourceIntact checks what a failed run must leave: the source VM
// running on its own disks, no jobs, no NBD client node, no export.
func assertSourceIntact(t testing.TB, p pair) {
	t.Helper()
	if got := status(t, p.src.QMP()); got != "running" {
		t.Errorf("source status = %q, want running", got)
	}
	if js := jobs(t, p.src.QMP()); len(js) != 0 {
		t.Errorf("source jobs left: %+v", js)
	}
	for _, n := range nodeNames(t, p.src.QMP()) {
		if strings.HasPrefix(n, "migrate-") {
			t.Errorf("source node %s left", n)
		}
	}
	// QEMU ends a destination whose incoming migration failed; one that
	// lives must hold no export.
	var ex []map[string]any
	if err := p.dst.QMP().Execute(context.Background(), "query-block-exports", nil, &ex); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if werr := p.dst.Wait(ctx); errors.Is(werr, context.DeadlineExceeded) {
			t.Errorf("destination: query-block-exports: %v, and QEMU is still running", err)
		}
	} else if len(ex) != 0 {
		t.Errorf("destination has %d exports left: %v", len(ex), ex)
	}
}
