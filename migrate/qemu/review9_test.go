package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"github.com/digitalocean/go-qemu/qmp/qmptest"

	"github.com/directdl/directdl/migrate"
)

// spyMon passes commands on to another go-qemu monitor and lets a test
// act just before a command is sent and just after its reply arrives.
// Monitor.Execute has checked its context by the time before runs, so a
// cancel there lands while the command is under way.
type spyMon struct {
	inner         qmp.Monitor
	before, after func(cmd string)
}

func (s *spyMon) Connect() error    { return nil }
func (s *spyMon) Disconnect() error { return nil }

// Events returns none: the waits fall back to polling.
func (s *spyMon) Events(context.Context) (<-chan qmp.Event, error) { return nil, nil }

func (s *spyMon) Run(b []byte) ([]byte, error) {
	var c struct {
		Execute string `json:"execute"`
	}
	_ = json.Unmarshal(b, &c)
	if s.before != nil {
		s.before(c.Execute)
	}
	out, err := s.inner.Run(b)
	if s.after != nil {
		s.after(c.Execute)
	}
	return out, err
}

// spy wraps a started VM's monitor; the VM's own Monitor keeps owning the
// connection.
func spy(t *testing.T, p *Process, before, after func(string)) *Monitor {
	t.Helper()
	m, err := NewMonitor(&spyMon{inner: p.QMP().mon, before: before, after: after}, p.QMP().Name())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Config.Dir is documented as any existing directory, and the disks'
// paths go through -blockdev JSON so that commas survive; the QMP socket
// path, built from Dir, is put into "-qmp unix:PATH,server=on,wait=off"
// unescaped, so QEMU reads what follows a comma in Dir as options and
// refuses to start ("Invalid parameter").
func TestReview9StartDirWithComma(t *testing.T) {
	bin := qemuSystem(t)
	dir := filepath.Join(shortDir(t), "a,b")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Start(ctx, Config{Binary: bin, Dir: dir, Name: "vm"})
	if errors.Is(err, ErrConfig) && strings.Contains(err.Error(), "comma") {
		return // refused up front with a clear error: the fix chosen
	}
	if err != nil {
		t.Fatalf("Start with a comma in Config.Dir: %v", err)
	}
	defer p.Kill()
	if got := status(t, p.QMP()); got != "running" {
		t.Errorf("status = %q, want running", got)
	}
}

// Disk.Label is documented (and checked by labelOK) as at most 31
// characters, but Start names the nodes "file-LABEL" and "disk-LABEL" and
// QEMU limits a node name to 31 bytes, so a label of 27 to 31 characters
// passes the check and QEMU then exits with "Node name too long". Either
// Start accepts such a label or it refuses it up front with ErrConfig.
func TestReview9StartLabelWithinDocumentedLimit(t *testing.T) {
	bin := qemuSystem(t)
	label := "v" + strings.Repeat("d", 30) // 31 characters
	img := filepath.Join(t.TempDir(), "d.qcow2")
	qemuImg(t, filepath.Dir(img), "create", "-q", "-f", "qcow2", img, "1M")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Start(ctx, Config{Binary: bin, Dir: shortDir(t), Disks: []Disk{{Label: label, Path: img}}})
	if err == nil {
		_ = p.Kill()
		return
	}
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("Start with a %d-character label: %v; want success or an ErrConfig naming the limit", len(label), err)
	}
}

// Run's check step accepts any label labelOK accepts (up to 31
// characters) and promises that nothing has changed when it fails, but
// the mirror step names the NBD client node "migrate-nbd-LABEL", which
// QEMU refuses past 31 bytes: a 20-character label fails only in the
// mirror step, after the destination's NBD server and exports were set
// up. Either the run works or it is refused in the check step.
func TestReview9RunLongLabelRefusedLate(t *testing.T) {
	t.Parallel()
	label := "v" + strings.Repeat("d", 19) // 20 characters: "migrate-nbd-"+label does not fit
	tr := newTree(t)
	dstVM := tr.linkedDst(t)
	// Start refuses such a label up front now.
	if _, err := Start(context.Background(), Config{Binary: qemuSystem(t), Dir: shortDir(t), Disks: []Disk{{Label: label, Path: tr.vm}}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("Start with label %q: %v, want ErrConfig", label, err)
	}
	// And Run refuses a plan naming one in the check step, before it
	// changes anything on either VM.
	p := vdaPair(t, tr.vm, dstVM)
	plan := &migrate.Plan{Disks: []migrate.DiskPlan{
		diskPlan(label, tr.vm, "qcow2", dstVM, "qcow2", diskSize, true),
	}}
	_, err := Run(runCtx(t), p.migration(t, plan))
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepCheck || !errors.Is(err, ErrConfig) {
		t.Fatalf("Run with label %q (%d characters): %v; want a check-step ErrConfig", label, len(label), err)
	}
}

// resume sets dstResumed before it sends cont, so when cont is never sent
// (the context ends between query-status and cont) or QEMU refuses it,
// the clean-up believes the VM runs on the destination and does not
// resume the source: the source stays "postmigrate", the destination
// "paused", and the VM runs nowhere, against the documented promise that
// the source is resumed when the VM runs nowhere else.
func TestReview9ResumeCancelLeavesVMRunningNowhere(t *testing.T) {
	t.Parallel()
	tr := newTree(t)
	dstVM := tr.linkedDst(t)
	p := vdaPair(t, tr.vm, dstVM)
	plan := &migrate.Plan{Disks: []migrate.DiskPlan{
		diskPlan("vda", tr.vm, "qcow2", dstVM, "qcow2", diskSize, true),
	}}
	ctx, cancel := context.WithCancel(runCtx(t))
	defer cancel()
	var mu sync.Mutex
	stopped := false // the run stopped the NBD server: resume comes next
	m := p.migration(t, plan)
	m.Destination = spy(t, p.dst, nil, func(cmd string) {
		mu.Lock()
		defer mu.Unlock()
		switch cmd {
		case "nbd-server-stop":
			stopped = true
		case "query-status":
			if stopped {
				cancel()
			}
		}
	})
	_, err := Run(ctx, m)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v; want the cancelled context's error", err)
	}
	src, dst := status(t, p.src.QMP()), status(t, p.dst.QMP())
	t.Logf("after the failed run: source %q, destination %q", src, dst)
	if src != "running" && dst != "running" {
		t.Errorf("the VM runs nowhere: source %q, destination %q; the clean-up must resume the source when cont never reached the destination", src, dst)
	}
	if src == "running" && dst == "running" {
		t.Errorf("the VM runs on both sides")
	}
}

// Execute checks its context only before it sends a command, on the
// claim that QEMU answers every command at once; blockdev-add of an NBD
// client node does not: QEMU 7.2 connects and negotiates synchronously,
// with no timeout, so while the NBD peer does not answer (a hung or
// stopped destination, a black-holed network) Run ignores its cancelled
// context, and its clean-up, queued behind the same monitor, hangs too.
// The destination here is a fake monitor whose NBD "server" accepts and
// never speaks. Run must return once its context has ended; the bound is
// only there to end the test when it does not, and exceeds the clean-up's
// own 30 s budget.
func TestReview9RunIgnoresContextDuringNBDConnect(t *testing.T) {
	t.Parallel()
	tr := newTree(t)
	src := startVM(t, "src", false, Disk{Label: "vda", Path: tr.vm})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		connsMu sync.Mutex
		conns   []net.Conn
	)
	closeConns := func() {
		connsMu.Lock()
		defer connsMu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns = append(conns, c)
			connsMu.Unlock()
		}
	}()
	t.Cleanup(func() { l.Close(); closeConns() })

	fake := qmptest.NewMonitor(func(cmd qmp.Command) (any, error) {
		switch cmd.Execute {
		case "query-status":
			return map[string]any{"return": map[string]any{"status": "inmigrate", "running": false}}, nil
		case "query-block":
			return map[string]any{"return": []any{map[string]any{
				"device": "", "qdev": "/machine/peripheral/vda/virtio-backend",
				"inserted": map[string]any{"node-name": "disk-vda", "drv": "qcow2", "image": map[string]any{"virtual-size": diskSize}},
			}}}, nil
		}
		return map[string]any{"return": map[string]any{}}, nil
	})
	dst, err := NewMonitor(fake, "dst")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	plan := &migrate.Plan{Disks: []migrate.DiskPlan{
		diskPlan("vda", tr.vm, "qcow2", "unused", "qcow2", diskSize, false),
	}}
	m := Migration{
		Plan: plan,
		Source: spy(t, src, func(cmd string) {
			if cmd == "blockdev-add" {
				cancel()
			}
		}, nil),
		Destination: dst,
		NBDAddress:  l.Addr().String(),
		MigrateURI:  "tcp:127.0.0.1:0",
	}
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, m)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v; want the cancelled context's error", err)
		}
	case <-time.After(cleanupTimeout + 15*time.Second):
		t.Errorf("Run still blocked %v after its context was cancelled: blockdev-add waits on an NBD peer that never answers", cleanupTimeout+15*time.Second)
		closeConns()
		l.Close()
		<-done
	}
}
