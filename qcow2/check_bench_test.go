package qcow2

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/directdl/directdl/internal/qemuimg"
)

// BenchmarkCheck checks a 10 GiB image whose 163,840 clusters of 64 KiB
// all hold data written by qemu-io, and runs qemu-img check on the same
// file for comparison (bench/check.sh compares whole processes). Building
// the image writes 10 GiB to a temporary directory and takes about a
// minute; set DIRECTDL_CHECK_IMAGE to an existing image to check that one
// instead. Skipped with -short.
func BenchmarkCheck(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 10 GiB image")
	}
	path := os.Getenv("DIRECTDL_CHECK_IMAGE")
	if path == "" {
		qemuIOPath := qemuimg.Path(b, "qemu-io")
		dir := b.TempDir()
		path = filepath.Join(dir, "check-10g.qcow2")
		runQemu(b, dir, "create", "-q", "-f", "qcow2", path, "10G")
		args := []string{"-f", "qcow2"}
		for i := 0; i < 10; i++ {
			args = append(args, "-c", fmt.Sprintf("write -P %d %dG 1G", i+1, i))
		}
		if out, err := exec.Command(qemuIOPath, append(args, path)...).CombinedOutput(); err != nil {
			b.Fatalf("qemu-io: %v\n%s", err, out)
		}
	}
	ctx := context.Background()
	res, err := CheckFile(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: %d/%d clusters allocated, image end offset %d", filepath.Base(path),
		res.AllocatedClusters, res.TotalClusters, res.ImageEndOffset)
	b.Run("Check", func(b *testing.B) {
		for b.Loop() {
			if _, err := CheckFile(ctx, path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("qemu-img", func(b *testing.B) {
		qemu := qemuImg(b)
		for b.Loop() {
			if out, err := exec.Command(qemu, "check", "-q", path).CombinedOutput(); err != nil {
				b.Fatalf("qemu-img check: %v\n%s", err, out)
			}
		}
	})
}

// BenchmarkCheckEmpty checks new images held in memory, dominated by
// reading their L1 tables (32 MiB for 2 PiB).
func BenchmarkCheckEmpty(b *testing.B) {
	for _, o := range []Options{
		{Size: 10 * giB},
		{Size: 2 * piB},
		{Size: 128 * giB, ClusterSize: 512},
	} {
		var w writerAtBuffer
		if _, err := CreateAt(&w, o); err != nil {
			b.Fatal(err)
		}
		b.Run(optName(o), func(b *testing.B) {
			r := bytes.NewReader(w.b)
			b.SetBytes(int64(len(w.b)))
			for b.Loop() {
				res, err := Check(context.Background(), r, int64(len(w.b)))
				if err != nil || !res.Clean() {
					b.Fatalf("Check: %v, %+v", err, res)
				}
			}
		})
	}
}
