package qcow2

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestRefusesImageInUse opens an image with qemu-io, which holds QEMU's
// image locks as a running VM does, and checks that neither Create nor
// Rebase touches it, as qemu-img refuses to.
func TestRefusesImageInUse(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("QEMU's image locks are checked on Linux only")
	}
	qemuIO := needTool(t, "qemu-io")
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "vm.qcow2")
	if err := Create(p, Options{Size: giB}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	cmd := exec.Command(qemuIO, "-f", "qcow2", "-c", "sleep 60000", p)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		locked, err := lockedByQEMU(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if locked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("qemu-io did not lock the image within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := Create(p, Options{Size: 2 * giB}); !errors.Is(err, ErrInUse) {
		t.Errorf("Create over an image in use: %v, want ErrInUse", err)
	}
	if err := Rebase(p, "base.qcow2", "qcow2"); !errors.Is(err, ErrInUse) {
		t.Errorf("Rebase of an image in use: %v, want ErrInUse", err)
	}
	if after, _ := os.ReadFile(p); string(after) != string(before) {
		t.Error("the image in use was changed")
	}
	// qemu-img agrees that it may not write it.
	if out, err := exec.Command(qemuImg(t), "rebase", "-u", "-b", "", p).CombinedOutput(); err == nil {
		t.Errorf("qemu-img rebased an image in use: %s", out)
	}

	cmd.Process.Kill()
	cmd.Wait()
	if err := Rebase(p, "base.qcow2", "qcow2"); err != nil {
		t.Errorf("Rebase after the process ended: %v", err)
	}
	if err := Create(p, Options{Size: 2 * giB}); err != nil {
		t.Errorf("Create after the process ended: %v", err)
	}
}
