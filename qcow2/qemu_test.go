package qcow2

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// qemuImg returns the path of qemu-img. The tests that compare with it are
// the point of this package, so a missing qemu-img fails the test when CI
// is set (CI installs qemu-utils) and skips it elsewhere.
func qemuImg(t testing.TB) string {
	t.Helper()
	return needTool(t, "qemu-img")
}

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found; CI must install qemu-utils", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func runQemu(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(qemuImg(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// qemuArgs turns o into qemu-img create arguments.
func qemuArgs(o Options, file string) []string {
	var opts []string
	if o.ClusterSize != 0 {
		opts = append(opts, "cluster_size="+strconv.Itoa(o.ClusterSize))
	}
	if o.Compat != "" {
		opts = append(opts, "compat="+o.Compat)
	}
	if o.LazyRefcounts {
		opts = append(opts, "lazy_refcounts=on")
	}
	if o.RefcountBits != 0 {
		opts = append(opts, "refcount_bits="+strconv.Itoa(o.RefcountBits))
	}
	if o.ExtendedL2 {
		opts = append(opts, "extended_l2=on")
	}
	if o.CompressionType != "" {
		opts = append(opts, "compression_type="+o.CompressionType)
	}
	if o.Preallocation != "" {
		opts = append(opts, "preallocation="+o.Preallocation)
	}
	args := []string{"create", "-q", "-f", "qcow2"}
	if len(opts) > 0 {
		args = append(args, "-o", strings.Join(opts, ","))
	}
	if o.BackingFile != "" {
		args = append(args, "-b", o.BackingFile)
	}
	if o.BackingFormat != "" {
		args = append(args, "-F", o.BackingFormat)
	}
	if o.Unsafe {
		args = append(args, "-u")
	}
	args = append(args, file)
	if o.Size != 0 || o.BackingFile == "" {
		args = append(args, strconv.FormatInt(o.Size, 10))
	}
	return args
}

const (
	kiB = int64(1) << 10
	miB = kiB << 10
	giB = miB << 10
	tiB = giB << 10
	piB = tiB << 10
	eiB = piB << 10
)

// createMatrix is the set of option combinations compared byte for byte
// with qemu-img. It covers every option, the maximum size for several
// cluster sizes, images with several refcount blocks and with refcount
// tables that had to grow, version 2 images, and long backing names.
func createMatrix() []Options {
	long := func(n int) string {
		s := strings.Repeat("d/", n/2)
		return (s + "base.qcow2")[len(s)+len("base.qcow2")-n:]
	}
	return []Options{
		{Size: 0},
		{Size: 1000},
		{Size: miB},
		{Size: giB},
		{Size: giB - 100},
		{Size: 100 * giB},
		{Size: tiB},
		{Size: 4 * tiB},
		{Size: 5 * tiB},
		{Size: 16 * tiB},
		{Size: 256 * tiB},
		{Size: 2 * piB},
		{Size: giB, ClusterSize: 512},
		{Size: 10 * giB, ClusterSize: 512},
		{Size: 40 * giB, ClusterSize: 512},
		{Size: 128 * giB, ClusterSize: 512},
		{Size: 128 * giB, ClusterSize: 512, RefcountBits: 1},
		{Size: 20 * giB, ClusterSize: 512, RefcountBits: 64},
		{Size: giB, ClusterSize: 1024},
		{Size: 50 * giB, ClusterSize: 1024, RefcountBits: 32},
		{Size: giB, ClusterSize: 4096},
		{Size: 2 * tiB, ClusterSize: 4096},
		{Size: 4 * tiB, ClusterSize: 4096},
		{Size: 8 * tiB, ClusterSize: 4096},
		{Size: 8 * tiB, ClusterSize: 4096, RefcountBits: 64},
		{Size: giB, ClusterSize: 8192},
		{Size: giB, ClusterSize: 2 * int(miB)},
		{Size: 100 * giB, ClusterSize: 2 * int(miB)},
		{Size: 2 * eiB, ClusterSize: 2 * int(miB)},
		{Size: eiB, ClusterSize: 2 * int(miB), ExtendedL2: true},
		{Size: giB, RefcountBits: 1},
		{Size: giB, RefcountBits: 2},
		{Size: giB, RefcountBits: 4},
		{Size: giB, RefcountBits: 8},
		{Size: giB, RefcountBits: 32},
		{Size: giB, RefcountBits: 64},
		{Size: giB, Compat: "0.10"},
		{Size: 10 * giB, Compat: "0.10", ClusterSize: 512},
		{Size: giB, Compat: "v2"},
		{Size: giB, Compat: "v3", LazyRefcounts: true},
		{Size: giB, CompressionType: "zstd"},
		{Size: giB, CompressionType: "zlib"},
		{Size: giB, ExtendedL2: true},
		{Size: giB, ExtendedL2: true, ClusterSize: 16384},
		{Size: piB, ExtendedL2: true},
		{Size: giB, LazyRefcounts: true, ExtendedL2: true, CompressionType: "zstd", RefcountBits: 8},
		{Size: giB, BackingFile: "base.qcow2", BackingFormat: "qcow2", Unsafe: true},
		{Size: giB, BackingFile: "/var/lib/images/template-with-a-longer-name.qcow2", BackingFormat: "qcow2", Unsafe: true},
		{Size: giB, BackingFile: long(213), BackingFormat: "raw", Unsafe: true},
		{Size: giB, BackingFile: long(1023), BackingFormat: "qcow2", Unsafe: true},
		{Size: giB, BackingFile: long(1023), BackingFormat: "qcow2", Unsafe: true, Compat: "0.10"},
		{Size: giB, BackingFile: "base.qcow2", BackingFormat: "qcow2", Unsafe: true, Compat: "0.10"},
		{Size: giB, BackingFile: long(376), BackingFormat: "qcow2", Unsafe: true, ClusterSize: 512},
		{Size: giB, BackingFile: long(416), BackingFormat: "qcow2", Unsafe: true, ClusterSize: 512, Compat: "0.10"},
		{Size: giB, BackingFile: long(400), BackingFormat: "qcow2", Unsafe: true, ClusterSize: 4096},
		{Size: 5 * tiB, BackingFile: "base.qcow2", BackingFormat: "qcow2", Unsafe: true, ExtendedL2: true},
	}
}

func optName(o Options) string {
	var parts []string
	parts = append(parts, fmt.Sprintf("size=%d", o.Size))
	if o.ClusterSize != 0 {
		parts = append(parts, fmt.Sprintf("cs=%d", o.ClusterSize))
	}
	if o.Compat != "" {
		parts = append(parts, "compat="+o.Compat)
	}
	if o.LazyRefcounts {
		parts = append(parts, "lazy")
	}
	if o.RefcountBits != 0 {
		parts = append(parts, fmt.Sprintf("rb=%d", o.RefcountBits))
	}
	if o.ExtendedL2 {
		parts = append(parts, "extl2")
	}
	if o.CompressionType != "" {
		parts = append(parts, o.CompressionType)
	}
	if o.BackingFile != "" {
		parts = append(parts, fmt.Sprintf("backing%d-%s", len(o.BackingFile), o.BackingFormat))
	}
	return strings.Join(parts, ",")
}

func TestCreateMatchesQemuImg(t *testing.T) {
	qemuImg(t)
	matrix := createMatrix()
	if len(matrix) < 40 {
		t.Fatalf("matrix has %d combinations, want at least 40", len(matrix))
	}
	for _, o := range matrix {
		t.Run(optName(o), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			runQemu(t, dir, qemuArgs(o, "want.qcow2")...)
			want, err := os.ReadFile(filepath.Join(dir, "want.qcow2"))
			if err != nil {
				t.Fatal(err)
			}
			got := filepath.Join(dir, "got.qcow2")
			if err := Create(got, o); err != nil {
				t.Fatalf("Create: %v", err)
			}
			gotb, err := os.ReadFile(got)
			if err != nil {
				t.Fatal(err)
			}
			compareImages(t, gotb, want)

			var buf writerAtBuffer
			n, err := CreateAt(&buf, o)
			if err != nil {
				t.Fatalf("CreateAt: %v", err)
			}
			if n != int64(len(want)) || !bytes.Equal(buf.b, want) {
				t.Errorf("CreateAt: %d bytes, differs from qemu-img's %d bytes", n, len(want))
			}
		})
	}
}

func compareImages(t *testing.T, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("length %d, want %d", len(got), len(want))
	}
	n := min(len(got), len(want))
	diffs := 0
	for i := 0; i < n; i += 8 {
		j := min(i+8, n)
		if !bytes.Equal(got[i:j], want[i:j]) {
			if diffs < 10 {
				t.Errorf("at %#x: got % x, want % x", i, got[i:j], want[i:j])
			}
			diffs++
		}
	}
	if diffs > 10 {
		t.Errorf("... %d differing 8-byte words in all", diffs)
	}
}

// writerAtBuffer is an in-memory io.WriterAt.
type writerAtBuffer struct{ b []byte }

func (w *writerAtBuffer) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(w.b) {
		w.b = append(w.b, make([]byte, end-len(w.b))...)
	}
	copy(w.b[off:], p)
	return len(p), nil
}

func (w *writerAtBuffer) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(w.b).ReadAt(p, off)
}
