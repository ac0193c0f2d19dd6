package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrConfig is wrapped by errors about a Config or Migration that cannot
// work as given.
var ErrConfig = errors.New("qemu: invalid configuration")

// Config describes a QEMU VM for Start: a machine with no guest OS (the
// firmware finds nothing to boot and waits, which is all migration needs)
// whose disks are virtio-blk devices named by their labels.
type Config struct {
	// Binary is the QEMU system emulator. Empty means
	// "qemu-system-x86_64", looked up in PATH.
	Binary string
	// Dir is an existing directory for the QMP socket, Dir/Name.qmp.
	// Required. A unix socket path is limited to 107 bytes, so keep it
	// short.
	Dir string
	// Name is the VM's name (-name) and the socket's base name. Empty
	// means "vm".
	Name string
	// Disks are attached in order as -blockdev file and format nodes,
	// "file-LABEL" and "disk-LABEL", each under a virtio-blk-pci device
	// whose id is the label.
	Disks []Disk
	// Incoming starts the VM as a migration destination: -incoming defer
	// (the executor issues migrate-incoming) and -S, so that the VM stays
	// paused after the migration until Run has removed the NBD exports
	// and resumes it, as libvirt does.
	Incoming bool
	// MemoryMiB is the guest's RAM. Zero means 64.
	MemoryMiB int
	// Accel is the -accel value. Empty means "tcg", which needs no KVM.
	Accel string
}

// Disk is one disk of a Config.
type Disk struct {
	// Label is the device id ("vda"): a letter, then letters, digits,
	// '-', '.' or '_'.
	Label string
	// Path is the image file.
	Path string
	// Format is "qcow2" or "raw". Empty means "qcow2".
	Format string
}

// Process is a running QEMU started by Start, with its QMP monitor.
// Its methods are safe for concurrent use.
type Process struct {
	cmd    *exec.Cmd
	socket string
	mon    *Monitor
	stderr *tailBuffer

	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // set before exited is closed

	stopOnce sync.Once
}

// startPoll is how often Start retries connecting to the QMP socket while
// QEMU is starting.
const startPoll = 10 * time.Millisecond

// Start starts QEMU as cfg describes and connects to its QMP socket. It
// returns once the monitor answers; ctx bounds the start only, not the
// process's life. On error nothing is left running. The caller must end
// the process with Stop or Kill; on Linux it is also killed if the calling
// program dies.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	args, socket, err := cfg.args()
	if err != nil {
		return nil, err
	}
	bin := cfg.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("qemu: remove stale socket: %w", err)
	}
	cmd := exec.Command(bin, args...)
	tail := &tailBuffer{max: 64 << 10}
	cmd.Stdout = tail
	cmd.Stderr = tail
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("qemu: start %s: %w (install qemu-system-x86 or set Config.Binary)", bin, err)
	}
	p := &Process{cmd: cmd, socket: socket, stderr: tail, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()

	name := cfg.Name
	if name == "" {
		name = "vm"
	}
	t := time.NewTicker(startPoll)
	defer t.Stop()
	for {
		if _, err := os.Stat(socket); err == nil {
			mon, err := Dial(ctx, socket, name)
			if err == nil {
				p.mon = mon
				return p, nil
			}
			if ctx.Err() != nil {
				_ = p.Kill()
				return nil, fmt.Errorf("qemu: start %s: %w", name, err)
			}
		}
		select {
		case <-ctx.Done():
			_ = p.Kill()
			return nil, fmt.Errorf("qemu: start %s: waiting for QMP socket %s: %w", name, socket, ctx.Err())
		case <-p.exited:
			return nil, fmt.Errorf("qemu: start %s: QEMU exited: %v: %s", name, p.waitErr, p.Stderr())
		case <-t.C:
		}
	}
}

// maxLabel is the longest label: "migrate-nbd-" and 19 bytes make QEMU's
// limit of 31 for a node name.
const maxLabel = 19

// labelOK reports whether s can be a QEMU id (qdev id or node name).
func labelOK(s string) bool {
	// QEMU node names are at most 31 bytes, and the longest this package
	// makes from a label is "migrate-nbd-LABEL".
	if s == "" || len(s) > maxLabel {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'):
		default:
			return false
		}
	}
	return true
}

func (cfg Config) args() (args []string, socket string, err error) {
	if cfg.Dir == "" {
		return nil, "", fmt.Errorf("%w: Config.Dir is empty; give a directory for the QMP socket", ErrConfig)
	}
	name := cfg.Name
	if name == "" {
		name = "vm"
	}
	if !labelOK(name) {
		return nil, "", fmt.Errorf("%w: VM name %q: use a letter followed by letters, digits, '-', '.' or '_'", ErrConfig, name)
	}
	socket = filepath.Join(cfg.Dir, name+".qmp")
	if strings.Contains(socket, ",") {
		// -qmp takes the path inside a comma-separated option list.
		return nil, "", fmt.Errorf("%w: QMP socket path %s holds a comma, which QEMU's -qmp option would split; use another Config.Dir", ErrConfig, socket)
	}
	if len(socket) > 107 {
		return nil, "", fmt.Errorf("%w: QMP socket path %s is %d bytes, over the 107 a unix socket allows; use a shorter Config.Dir", ErrConfig, socket, len(socket))
	}
	mem := cfg.MemoryMiB
	if mem == 0 {
		mem = 64
	}
	if mem < 0 {
		return nil, "", fmt.Errorf("%w: MemoryMiB %d is negative", ErrConfig, mem)
	}
	accel := cfg.Accel
	if accel == "" {
		accel = "tcg"
	}
	args = []string{
		"-name", name,
		"-accel", accel,
		"-nodefaults", "-no-user-config",
		"-display", "none",
		"-m", strconv.Itoa(mem),
		"-qmp", "unix:" + socket + ",server=on,wait=off",
	}
	seen := map[string]bool{}
	for i, d := range cfg.Disks {
		if !labelOK(d.Label) {
			return nil, "", fmt.Errorf("%w: disk %d: label %q: use a letter followed by letters, digits, '-', '.' or '_' (at most %d)", ErrConfig, i, d.Label, maxLabel)
		}
		if seen[d.Label] {
			return nil, "", fmt.Errorf("%w: disk %s: label used twice", ErrConfig, d.Label)
		}
		seen[d.Label] = true
		if d.Path == "" {
			return nil, "", fmt.Errorf("%w: disk %s: Path is empty", ErrConfig, d.Label)
		}
		format := d.Format
		if format == "" {
			format = "qcow2"
		}
		if format != "qcow2" && format != "raw" {
			return nil, "", fmt.Errorf("%w: disk %s: format %q: use \"qcow2\" or \"raw\"", ErrConfig, d.Label, format)
		}
		// JSON rather than key=value syntax, where a comma in a path
		// would have to be doubled.
		file, _ := json.Marshal(map[string]string{"driver": "file", "filename": d.Path, "node-name": "file-" + d.Label})
		fmtNode, _ := json.Marshal(map[string]string{"driver": format, "file": "file-" + d.Label, "node-name": "disk-" + d.Label})
		args = append(args,
			"-blockdev", string(file),
			"-blockdev", string(fmtNode),
			"-device", "virtio-blk-pci,drive=disk-"+d.Label+",id="+d.Label)
	}
	if cfg.Incoming {
		args = append(args, "-incoming", "defer", "-S")
	}
	return args, socket, nil
}

// QMP returns the process's monitor. Stop and Kill close it.
func (p *Process) QMP() *Monitor { return p.mon }

// Socket returns the path of the QMP socket.
func (p *Process) Socket() string { return p.socket }

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stderr returns the last 64 KiB QEMU wrote to its stdout and stderr.
func (p *Process) Stderr() string { return p.stderr.String() }

// Exited returns a channel that is closed once QEMU has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits for QEMU to exit and returns its exit error, with its
// stderr, or ctx's error if ctx ends first.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.exited:
	case <-ctx.Done():
		return ctx.Err()
	}
	if p.waitErr != nil {
		return fmt.Errorf("qemu: exited: %w: %s", p.waitErr, p.Stderr())
	}
	return nil
}

// Stop asks QEMU to quit over QMP and waits for it to exit; if ctx ends
// first, or the monitor is gone, it kills QEMU. It returns the first
// error of the QMP quit, or nil once QEMU is gone.
func (p *Process) Stop(ctx context.Context) error {
	var err error
	select {
	case <-p.exited:
	default:
		if p.mon != nil {
			err = p.mon.Execute(ctx, "quit", nil, nil)
		}
		if err == nil {
			select {
			case <-p.exited:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
	}
	if kerr := p.Kill(); err == nil {
		err = kerr
	}
	return err
}

// Kill kills QEMU, waits for it to be reaped and closes the monitor.
// Calling it on an exited process only closes the monitor.
func (p *Process) Kill() error {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	var err error
	p.stopOnce.Do(func() {
		if p.mon != nil {
			err = p.mon.Close()
		}
		_ = os.Remove(p.socket)
	})
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
