package qemu

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigArgs(t *testing.T) {
	args, socket, err := Config{
		Dir:      "/run/vm",
		Name:     "web-1",
		Disks:    []Disk{{Label: "vda", Path: "/img/a,b.qcow2"}, {Label: "vdb", Path: "/img/c.raw", Format: "raw"}},
		Incoming: true,
	}.args()
	if err != nil {
		t.Fatal(err)
	}
	if socket != "/run/vm/web-1.qmp" {
		t.Errorf("socket = %s", socket)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-accel tcg", "-nodefaults", "-display none", "-m 64",
		"-qmp unix:/run/vm/web-1.qmp,server=on,wait=off",
		`-blockdev {"driver":"file","filename":"/img/a,b.qcow2","node-name":"file-vda"}`,
		`-blockdev {"driver":"qcow2","file":"file-vda","node-name":"disk-vda"}`,
		"-device virtio-blk-pci,drive=disk-vda,id=vda",
		`-blockdev {"driver":"raw","file":"file-vdb","node-name":"disk-vdb"}`,
		"-incoming defer -S",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("arguments lack %q:\n%s", want, line)
		}
	}
	args, _, _ = Config{Dir: "/d"}.args()
	if slices.Contains(args, "-incoming") || slices.Contains(args, "-S") {
		t.Errorf("a source VM got -incoming or -S: %v", args)
	}

	bad := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Config.Dir is empty"},
		{Config{Dir: "/d", Name: "a b"}, "VM name"},
		{Config{Dir: "/" + strings.Repeat("d", 120)}, "107"},
		{Config{Dir: "/d", MemoryMiB: -1}, "negative"},
		{Config{Dir: "/d", Disks: []Disk{{Label: "1a", Path: "x"}}}, "label \"1a\""},
		{Config{Dir: "/d", Disks: []Disk{{Label: "vda,id=x", Path: "x"}}}, "label"},
		{Config{Dir: "/d", Disks: []Disk{{Label: "vda", Path: "x"}, {Label: "vda", Path: "y"}}}, "used twice"},
		{Config{Dir: "/d", Disks: []Disk{{Label: "vda"}}}, "Path is empty"},
		{Config{Dir: "/d", Disks: []Disk{{Label: "vda", Path: "x", Format: "vmdk"}}}, "format \"vmdk\""},
	}
	for _, tc := range bad {
		_, _, err := tc.cfg.args()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want ErrConfig saying %q", tc.cfg, err, tc.want)
		}
	}
}

func TestStartFails(t *testing.T) {
	bin := qemuSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := Start(ctx, Config{Binary: filepath.Join(t.TempDir(), "no-qemu"), Dir: shortDir(t)})
	if err == nil || !strings.Contains(err.Error(), "no-qemu") {
		t.Errorf("missing binary: error %v, want one naming it", err)
	}
	// QEMU refuses a missing image and exits: its message comes back.
	missing := filepath.Join(t.TempDir(), "missing.qcow2")
	_, err = Start(ctx, Config{Binary: bin, Dir: shortDir(t), Disks: []Disk{{Label: "vda", Path: missing}}})
	if err == nil || !strings.Contains(err.Error(), "QEMU exited") || !strings.Contains(err.Error(), "missing.qcow2") {
		t.Errorf("missing image: error %v, want QEMU's message naming the image", err)
	}
}

func TestProcessKill(t *testing.T) {
	t.Parallel()
	p := startVM(t, "vm", false)
	if p.Pid() <= 0 || p.Socket() == "" {
		t.Errorf("pid %d, socket %q", p.Pid(), p.Socket())
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	select {
	case <-p.Exited():
	default:
		t.Fatal("Kill returned before QEMU exited")
	}
	if err := p.Wait(context.Background()); err == nil {
		t.Error("Wait after Kill reports a clean exit")
	}
	if err := p.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}
}
