package qcow2

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/directdl/directdl/internal/qemuimg"
)

// qemuImg returns the path of qemu-img (see qemuimg.Path).
func qemuImg(t testing.TB) string {
	t.Helper()
	return qemuimg.Path(t, "qemu-img")
}

// needTool returns the path of a QEMU tool (see qemuimg.Path).
func needTool(t testing.TB, name string) string {
	t.Helper()
	return qemuimg.Path(t, name)
}

func runQemu(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return qemuimg.Run(t, dir, args...)
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
	c := qemuimg.Case{Options: strings.Join(opts, ","), Backing: o.BackingFile, Format: o.BackingFormat, Unsafe: o.Unsafe}
	if o.Size != 0 || o.BackingFile == "" {
		c.Size = strconv.FormatInt(o.Size, 10)
	}
	return append([]string{"create", "-q", "-f", "qcow2"}, c.Args(file)...)
}

const (
	kiB = int64(1) << 10
	miB = kiB << 10
	giB = miB << 10
	tiB = giB << 10
	piB = tiB << 10
	eiB = piB << 10
)

// createMatrix is qemuimg.Matrix as Options, parsed from qemu-img's
// syntax by ParseOptions and ParseSize.
func createMatrix() []Options {
	var m []Options
	for _, c := range qemuimg.Matrix() {
		o, err := ParseOptions(c.Options)
		if err != nil {
			panic(err)
		}
		if c.Size != "" {
			if o.Size, err = ParseSize(c.Size); err != nil {
				panic(err)
			}
		}
		o.BackingFile, o.BackingFormat, o.Unsafe = c.Backing, c.Format, c.Unsafe
		m = append(m, o)
	}
	return m
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
