package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/directdl/directdl/migrate"
)

func runCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// backingOf returns the backing file qemu-img reports for an image, "" for
// none.
func backingOf(t *testing.T, path string) string {
	t.Helper()
	var info struct {
		Backing string `json:"backing-filename"`
	}
	out := qemuImg(t, filepath.Dir(path), "info", "-U", "--output=json", path)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("qemu-img info %s: %v\n%s", path, err, out)
	}
	return info.Backing
}

func TestRunLinked(t *testing.T) {
	t.Parallel()
	tr := newTree(t)
	dstVM := tr.linkedDst(t)
	if compare(t, "qcow2", tr.vm, "qcow2", dstVM) == 0 {
		t.Fatal("source and destination are equal before the migration; the test would prove nothing")
	}
	p := vdaPair(t, tr.vm, dstVM)
	plan := &migrate.Plan{Mode: migrate.Incremental, Disks: []migrate.DiskPlan{
		diskPlan("vda", tr.vm, "qcow2", dstVM, "qcow2", diskSize, true),
	}}
	rep, err := Run(runCtx(t), p.migration(t, plan))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := status(t, p.dst.QMP()); got != "running" {
		t.Errorf("destination status = %q, want running", got)
	}
	if !rep.DestinationRunning {
		t.Error("Report.DestinationRunning = false")
	}
	if got := status(t, p.src.QMP()); got != "postmigrate" {
		t.Errorf("source status = %q, want postmigrate", got)
	}
	if len(rep.Disks) != 1 {
		t.Fatalf("report has %d disks, want 1", len(rep.Disks))
	}
	d := rep.Disks[0]
	if d.Label != "vda" || d.Sync != "top" || d.Bytes != d.Length {
		t.Errorf("disk report = %+v", d)
	}
	// Only the top layer moves: what topWrites wrote, rounded to
	// clusters, not the base's 4 MiB nor the 64 MiB disk.
	if d.Bytes < topBytes || d.Bytes >= 4*mib {
		t.Errorf("copied %d bytes, want at least %d (the top layer) and under 4 MiB (the base's data)", d.Bytes, topBytes)
	}
	if rep.RAMBytes <= 0 {
		t.Errorf("RAMBytes = %d, want > 0", rep.RAMBytes)
	}
	if rep.Duration < rep.Mirror+rep.Migration+rep.Completion {
		t.Errorf("Duration %v is less than its phases %v+%v+%v", rep.Duration, rep.Mirror, rep.Migration, rep.Completion)
	}
	if js := jobs(t, p.src.QMP()); len(js) != 0 {
		t.Errorf("source jobs left: %+v", js)
	}
	if n := exports(t, p.dst.QMP()); n != 0 {
		t.Errorf("destination exports left: %d", n)
	}
	stop(t, p.src)
	stop(t, p.dst)
	if compare(t, "qcow2", tr.vm, "qcow2", dstVM) != 0 {
		t.Error("qemu-img compare: destination differs from source")
	}
	if got := backingOf(t, dstVM); got != "base.qcow2" {
		t.Errorf("destination backing = %q, want base.qcow2", got)
	}
}

func TestRunFull(t *testing.T) {
	t.Parallel()
	tr := newTree(t)
	dstVM := tr.fullDst(t, "64M")
	p := vdaPair(t, tr.vm, dstVM)
	plan := &migrate.Plan{Mode: migrate.Complete, Disks: []migrate.DiskPlan{
		diskPlan("vda", tr.vm, "qcow2", dstVM, "qcow2", diskSize, false),
	}}
	rep, err := Run(runCtx(t), p.migration(t, plan))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := status(t, p.dst.QMP()); got != "running" {
		t.Errorf("destination status = %q, want running", got)
	}
	d := rep.Disks[0]
	if d.Sync != "full" || d.Bytes != d.Length || d.Bytes <= 0 {
		t.Errorf("disk report = %+v", d)
	}
	stop(t, p.src)
	stop(t, p.dst)
	if compare(t, "qcow2", tr.vm, "qcow2", dstVM) != 0 {
		t.Error("qemu-img compare: destination differs from source")
	}
	if got := backingOf(t, dstVM); got != "" {
		t.Errorf("destination backing = %q, want none", got)
	}
	// The base's data is there, read from the destination's own image.
	qemuIO(t, "qcow2", dstVM, "read -P 0x11 0 1M", "read -P 0x22 1M 512k", "read -P 0x33 10M 1M")
}

// A guest write while the mirror jobs run must reach the destination, in
// both copy modes: synchronously with write-blocking, through the dirty
// bitmap and the final pass with background.
func TestRunGuestWrite(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"", "background"} {
		t.Run("mode="+mode, func(t *testing.T) {
			t.Parallel()
			tr := newTree(t)
			dstVM := tr.linkedDst(t)
			p := vdaPair(t, tr.vm, dstVM)
			plan := &migrate.Plan{Disks: []migrate.DiskPlan{
				diskPlan("vda", tr.vm, "qcow2", dstVM, "qcow2", diskSize, true),
			}}
			m := p.migration(t, plan)
			m.CopyMode = mode
			var hookErr error
			m.hooks = &hooks{mirrorReady: func() {
				// Through the device, as the guest writes: over the base's
				// data, and where neither layer had any.
				for _, c := range []string{"write -P 0x77 2M 256k", "write -P 0x78 30M 128k"} {
					var out string
					cmd := fmt.Sprintf("qemu-io -d /machine/peripheral/vda/virtio-backend %q", c)
					hookErr = errors.Join(hookErr, p.src.QMP().Execute(context.Background(), "human-monitor-command", map[string]any{"command-line": cmd}, &out))
					if out != "" {
						hookErr = errors.Join(hookErr, fmt.Errorf("qemu-io: %s", out))
					}
				}
			}}
			rep, err := Run(runCtx(t), m)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if hookErr != nil {
				t.Fatalf("guest write: %v", hookErr)
			}
			if rep.Disks[0].Bytes < topBytes+256<<10+128<<10 {
				t.Errorf("copied %d bytes, less than the top layer and the guest's writes", rep.Disks[0].Bytes)
			}
			stop(t, p.src)
			stop(t, p.dst)
			// The write happened on the source...
			qemuIO(t, "qcow2", tr.vm, "read -P 0x77 2M 256k", "read -P 0x78 30M 128k")
			// ...and reached the destination.
			qemuIO(t, "qcow2", dstVM, "read -P 0x77 2M 256k", "read -P 0x78 30M 128k")
			if compare(t, "qcow2", tr.vm, "qcow2", dstVM) != 0 {
				t.Error("qemu-img compare: destination differs from source")
			}
		})
	}
}

func TestRunTwoDisks(t *testing.T) {
	t.Parallel()
	tr := newTree(t)
	dstVM := tr.linkedDst(t)
	srcRaw := filepath.Join(tr.src, "data.raw")
	dstRaw := filepath.Join(tr.dst, "data.raw")
	qemuImg(t, tr.src, "create", "-q", "-f", "raw", srcRaw, "32M")
	qemuIO(t, "raw", srcRaw, "write -P 0x55 0 1M", "write -P 0x66 20M 2M")
	qemuImg(t, tr.dst, "create", "-q", "-f", "raw", dstRaw, "32M")
	if compare(t, "raw", srcRaw, "raw", dstRaw) == 0 {
		t.Fatal("raw disks equal before the migration")
	}
	p := pair{
		src: startVM(t, "src", false, Disk{Label: "vda", Path: tr.vm}, Disk{Label: "vdb", Path: srcRaw, Format: "raw"}),
		dst: startVM(t, "dst", true, Disk{Label: "vda", Path: dstVM}, Disk{Label: "vdb", Path: dstRaw, Format: "raw"}),
	}
	plan := &migrate.Plan{Disks: []migrate.DiskPlan{
		diskPlan("vda", tr.vm, "qcow2", dstVM, "qcow2", diskSize, true),
		diskPlan("vdb", srcRaw, "raw", dstRaw, "raw", 32*mib, false),
	}}
	rep, err := Run(runCtx(t), p.migration(t, plan))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Disks) != 2 || rep.Disks[0].Label != "vda" || rep.Disks[1].Label != "vdb" {
		t.Fatalf("report disks = %+v, want vda then vdb", rep.Disks)
	}
	if rep.Disks[0].Sync != "top" || rep.Disks[1].Sync != "full" {
		t.Errorf("syncs = %s, %s; want top, full", rep.Disks[0].Sync, rep.Disks[1].Sync)
	}
	if got := status(t, p.dst.QMP()); got != "running" {
		t.Errorf("destination status = %q, want running", got)
	}
	stop(t, p.src)
	stop(t, p.dst)
	if compare(t, "qcow2", tr.vm, "qcow2", dstVM) != 0 {
		t.Error("vda differs")
	}
	if compare(t, "raw", srcRaw, "raw", dstRaw) != 0 {
		t.Error("vdb differs")
	}
}

// stepError asserts err is a *StepError for step and disk wrapping want.
func stepError(t *testing.T, err error, step, disk string, want error) *StepError {
	t.Helper()
	t.Logf("error: %v", err)
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *StepError", err, err)
	}
	if se.Step != step || se.Disk != disk {
		t.Errorf("step, disk = %q, %q; want %q, %q (%v)", se.Step, se.Disk, step, disk, err)
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("error %v does not wrap %v", err, want)
	}
	if disk != "" && !strings.Contains(err.Error(), "disk "+disk) {
		t.Errorf("error %q does not name disk %s", err, disk)
	}
	return se
}

func TestRunRefusesMismatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		dstLabel string // the destination disk's device id
		dstSize  string
		want     string // in the error message
	}{
		{name: "label missing on destination", dstLabel: "vdb", dstSize: "64M", want: "destination VM has no disk"},
		{name: "destination size", dstLabel: "vda", dstSize: "32M", want: "destination disk's virtual size is 33554432"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := newTree(t)
			dstVM := tr.fullDst(t, tc.dstSize)
			p := pair{
				src: startVM(t, "src", false, Disk{Label: "vda", Path: tr.vm}),
				dst: startVM(t, "dst", true, Disk{Label: tc.dstLabel, Path: dstVM}),
			}
			plan := &migrate.Plan{Disks: []migrate.DiskPlan{
				diskPlan("vda", tr.vm, "qcow2", dstVM, "qcow2", diskSize, false),
			}}
			_, err := Run(runCtx(t), p.migration(t, plan))
			stepError(t, err, StepCheck, "vda", ErrDisk)
			if err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			assertSourceIntact(t, p)
			// Nothing was copied: the check comes first.
			stop(t, p.dst)
			if compare(t, "qcow2", tr.vm, "qcow2", dstVM) == 0 {
				t.Error("destination equals source although nothing should have been copied")
			}
		})
	}
}

func TestRunQMPError(t *testing.T) {
	t.Parallel()
	tr := newTree(t)
	dstVM := tr.linkedDst(t)
	p := vdaPair(t, tr.vm, dstVM)
	plan := &migrate.Plan{Disks: []migrate.DiskPlan{
		diskPlan("vda", tr.vm, "qcow2", dstVM, "qcow2", diskSize, true),
	}}
	m := p.migration(t, plan)
	// Someone else's NBD server already runs on the destination.
	other := map[string]any{"addr": socketAddress{Type: "inet", Host: "127.0.0.1", Port: freePort(t)}.legacy()}
	if err := p.dst.QMP().Execute(context.Background(), "nbd-server-start", other, nil); err != nil {
		t.Fatal(err)
	}
	_, err := Run(runCtx(t), m)
	stepError(t, err, StepExport, "", ErrQMP)
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Command != "nbd-server-start" {
		t.Fatalf("error %v: want a *QMPError for nbd-server-start", err)
	}
	if qe.Desc == "" {
		t.Error("QMPError.Desc is empty")
	}
	assertSourceIntact(t, p)
	// The other server is not Run's to stop.
	if err := p.dst.QMP().Execute(context.Background(), "nbd-server-stop", nil, nil); err != nil {
		t.Errorf("the pre-existing NBD server is gone: %v", err)
	}
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hook func(h *hooks, cancel func())
		step string
		disk string
	}{
		{"mid-mirror", func(h *hooks, cancel func()) { h.mirrorStarted = cancel }, StepMirror, ""},
		{"mid-migration", func(h *hooks, cancel func()) { h.migrateStarted = cancel }, StepMigrate, ""},
		// The source has stopped; ctx ends before the first job does.
		{"pre-switchover", func(h *hooks, cancel func()) { h.preSwitchover = cancel }, StepComplete, "vda"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := newTree(t)
			dstVM := tr.fullDst(t, "64M")
			p := vdaPair(t, tr.vm, dstVM)
			plan := &migrate.Plan{Disks: []migrate.DiskPlan{
				diskPlan("vda", tr.vm, "qcow2", dstVM, "qcow2", diskSize, false),
			}}
			ctx, cancel := context.WithCancel(runCtx(t))
			m := p.migration(t, plan)
			m.hooks = &hooks{}
			tc.hook(m.hooks, cancel)
			_, err := Run(ctx, m)
			stepError(t, err, tc.step, tc.disk, context.Canceled)
			assertSourceIntact(t, p)
		})
	}
}

// A destination that dies during the migration fails the run, and the
// source carries on.
func TestRunDestinationDies(t *testing.T) {
	t.Parallel()
	tr := newTree(t)
	dstVM := tr.fullDst(t, "64M")
	p := vdaPair(t, tr.vm, dstVM)
	plan := &migrate.Plan{Disks: []migrate.DiskPlan{
		diskPlan("vda", tr.vm, "qcow2", dstVM, "qcow2", diskSize, false),
	}}
	m := p.migration(t, plan)
	m.hooks = &hooks{migrateStarted: func() { _ = p.dst.Kill() }}
	_, err := Run(runCtx(t), m)
	if err == nil {
		t.Fatal("Run succeeded with a dead destination")
	}
	t.Logf("error: %v", err)
	var se *StepError
	// The state may have reached the destination before it died: the
	// run then fails while completing.
	if !errors.As(err, &se) || se.Step != StepMigrate && se.Step != StepComplete {
		t.Fatalf("error %v: want a StepError of step %s or %s", err, StepMigrate, StepComplete)
	}
	if got := status(t, p.src.QMP()); got != "running" {
		t.Errorf("source status = %q, want running", got)
	}
	if js := jobs(t, p.src.QMP()); len(js) != 0 {
		t.Errorf("source jobs left: %+v", js)
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	t.Parallel()
	good := diskPlan("vda", "a", "qcow2", "b", "qcow2", diskSize, true)
	mon := &Monitor{} // never reached: the inputs are checked first
	tests := []struct {
		name string
		m    Migration
		want string
	}{
		{"nil plan", Migration{Source: mon, Destination: mon}, "Plan is nil"},
		{"no disks", Migration{Plan: &migrate.Plan{}, Source: mon, Destination: mon}, "no disks"},
		{"no monitors", Migration{Plan: &migrate.Plan{Disks: []migrate.DiskPlan{good}}}, "both required"},
		{"bad NBD address", Migration{Plan: &migrate.Plan{Disks: []migrate.DiskPlan{good}}, Source: mon, Destination: mon, NBDAddress: "127.0.0.1", MigrateURI: "tcp:127.0.0.1:0"}, "NBD address"},
		{"NBD port 0", Migration{Plan: &migrate.Plan{Disks: []migrate.DiskPlan{good}}, Source: mon, Destination: mon, NBDAddress: "127.0.0.1:0", MigrateURI: "tcp:127.0.0.1:0"}, "port 0"},
		{"exec URI", Migration{Plan: &migrate.Plan{Disks: []migrate.DiskPlan{good}}, Source: mon, Destination: mon, NBDAddress: "127.0.0.1:1", MigrateURI: "exec:cat"}, "tcp:HOST:PORT or unix:PATH"},
		{"copy mode", Migration{Plan: &migrate.Plan{Disks: []migrate.DiskPlan{good}}, Source: mon, Destination: mon, NBDAddress: "127.0.0.1:1", MigrateURI: "unix:/x", CopyMode: "fast"}, "CopyMode"},
		{"sync", Migration{Plan: &migrate.Plan{Disks: []migrate.DiskPlan{{Label: "vda", Sync: "none"}}}, Source: mon, Destination: mon, NBDAddress: "127.0.0.1:1", MigrateURI: "unix:/x"}, "sync \"none\""},
		{"duplicate label", Migration{Plan: &migrate.Plan{Disks: []migrate.DiskPlan{good, good}}, Source: mon, Destination: mon, NBDAddress: "127.0.0.1:1", MigrateURI: "unix:/x"}, "used twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.m)
			var se *StepError
			if !errors.As(err, &se) || se.Step != StepCheck || !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v: want a StepError of step check wrapping ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}
