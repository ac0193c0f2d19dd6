package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Severity says whether a preflight problem stops the migration.
type Severity string

const (
	// Error: migrating as planned would fail or corrupt a disk.
	Error Severity = "error"
	// Warning: the migration can go ahead, but something is unknown or
	// unusual and worth a look.
	Warning Severity = "warning"
)

// Problem is one thing preflight found.
type Problem struct {
	// Disk is the disk's label; "" for the VM or the hosts.
	Disk     string   `json:"disk,omitempty"`
	Check    string   `json:"check"` // "versions", "space", "paths", "sizes", "backing"
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// Fix says what to do about it.
	Fix string `json:"fix"`
}

// String is "SEVERITY: disk LABEL: MESSAGE; FIX", without the disk part
// for a problem of the whole plan.
func (p Problem) String() string {
	s := string(p.Severity) + ": "
	if p.Disk != "" {
		s += "disk " + p.Disk + ": "
	}
	return s + p.Message + "; " + p.Fix
}

// ErrPreflight is wrapped by the *PreflightError of a plan with problems
// of Error severity.
var ErrPreflight = errors.New("migrate: preflight failed")

// PreflightError lists the problems that stop a plan.
type PreflightError struct {
	VM       string
	Problems []Problem // Error severity only
}

// Error lists the problems of Error severity with their fixes.
func (e *PreflightError) Error() string {
	var b strings.Builder
	b.WriteString("migrate: preflight failed")
	if e.VM != "" {
		b.WriteString(" for VM " + e.VM)
	}
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if p.Disk != "" {
			b.WriteString("disk " + p.Disk + ": ")
		}
		b.WriteString(p.Message + " (fix: " + p.Fix + ")")
	}
	return b.String()
}

// Unwrap returns ErrPreflight.
func (e *PreflightError) Unwrap() error { return ErrPreflight }

// Err returns a *PreflightError when preflight found problems of Error
// severity, nil otherwise: warnings do not stop a plan.
func (p *Plan) Err() error {
	var errs []Problem
	for _, pr := range p.Problems {
		if pr.Severity == Error {
			errs = append(errs, pr)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &PreflightError{VM: p.VM, Problems: errs}
}

// preflight checks the plan against the hosts: QEMU and libvirt versions,
// free space, destination paths, sizes and backing names. It adds the
// problems to p.Problems; an error means a check could not run.
func preflight(ctx context.Context, spec *Spec, p *Plan) error {
	add := func(disk, check string, sev Severity, fix, format string, args ...any) {
		p.Problems = append(p.Problems, Problem{Disk: disk, Check: check, Severity: sev, Message: fmt.Sprintf(format, args...), Fix: fix})
	}
	checkVersions(spec, add)
	if err := checkSpace(spec, p, add); err != nil {
		return err
	}
	checkPaths(spec, p, add)
	for _, d := range p.Disks {
		if err := ctx.Err(); err != nil {
			return err
		}
		checkDisk(ctx, spec, p, d, add)
	}
	return nil
}

type addFunc func(disk, check string, sev Severity, fix, format string, args ...any)

// checkVersions follows the advice given for apache/cloudstack#10246:
// keep QEMU (and libvirt) the same on every host. QEMU migrates a VM to
// the same or a newer version, never to an older one.
func checkVersions(spec *Spec, add addFunc) {
	for _, c := range []struct{ name, src, dst string }{
		{"QEMU", spec.Source.QEMU, spec.Destination.QEMU},
		{"libvirt", spec.Source.Libvirt, spec.Destination.Libvirt},
	} {
		sv, sok := ParseVersion(c.src)
		dv, dok := ParseVersion(c.dst)
		switch {
		case !sok || !dok:
			which := "source's"
			if sok {
				which = "destination's"
			} else if !dok {
				which = "source's and the destination's"
			}
			add("", "versions", Warning, fmt.Sprintf("give both hosts' %s versions in the spec", c.name),
				"the %s %s version is unknown, so it cannot be compared", which, c.name)
		case compareVersions(dv, sv) < 0:
			add("", "versions", Error, fmt.Sprintf("upgrade %s on the destination to %s or later, or pick a destination with the same version", c.name, c.src),
				"the destination's %s %s is older than the source's %s; a VM cannot migrate to an older %s", c.name, versionString(dv), versionString(sv), c.name)
		case dv[0] != sv[0] || dv[1] != sv[1]:
			add("", "versions", Warning, fmt.Sprintf("run the same %s version on both hosts", c.name),
				"the destination's %s %s differs from the source's %s", c.name, versionString(dv), versionString(sv))
		}
	}
}

var versionRE = regexp.MustCompile(`(\d+)\.(\d+)(?:\.(\d+))?`)

// ParseVersion reads the first dotted version number in s: "7.2.0",
// "QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)",
// "libvirtd (libvirt) 9.0.0". ok is false when s has none.
func ParseVersion(s string) (v [3]int, ok bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return v, false
	}
	for i := 0; i < 3; i++ {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.Atoi(m[i+1])
		if err != nil || n > 1<<20 {
			return [3]int{}, false
		}
		v[i] = n
	}
	return v, true
}

func compareVersions(a, b [3]int) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func versionString(v [3]int) string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

func checkSpace(spec *Spec, p *Plan, add addFunc) error {
	free := spec.Destination.FreeBytes
	if free == 0 && spec.Destination.Local {
		var st syscall.Statfs_t
		if err := syscall.Statfs(p.Dir, &st); err == nil {
			free = int64(st.Bavail) * int64(st.Bsize)
		}
	}
	if free == 0 {
		add("", "space", Warning, "give the destination's free bytes in the spec (destination.free-bytes)",
			"the free space in %s on the destination is unknown; the plan needs about %d bytes there", p.Dir, p.NeedBytes)
		return nil
	}
	if p.NeedBytes > free {
		var parts []string
		for _, d := range p.Disks {
			parts = append(parts, fmt.Sprintf("%s %d", d.Label, needBytes(d)))
		}
		for _, f := range p.Fetches {
			parts = append(parts, fmt.Sprintf("base %s %d", filepath.Base(f.Path), f.Bytes))
		}
		add("", "space", Error, "free space on the destination, or pick a destination pool with more",
			"the %s migration needs about %d bytes in %s on the destination (%s) and %d are free", p.Mode, p.NeedBytes, p.Dir, strings.Join(parts, ", "), free)
	}
	return nil
}

// checkPaths: every destination disk and fetched base has a path of its
// own, and with a local destination, the directories exist and are
// writable.
func checkPaths(spec *Spec, p *Plan, add addFunc) {
	owner := map[string]string{}
	for _, d := range p.Disks {
		if other, ok := owner[d.Destination]; ok {
			add(d.Label, "paths", Error, "give one of them another destination path",
				"destination %s is also disk %s's", d.Destination, other)
			continue
		}
		owner[d.Destination] = d.Label
	}
	for _, f := range p.Fetches {
		if l, ok := owner[f.Path]; ok {
			add(l, "paths", Error, "give the disk another destination path",
				"destination %s is where template %s's base must go", f.Path, f.Template)
		}
	}
	for _, d := range p.Disks {
		for _, l := range d.Chain[1:] {
			if o, ok := owner[l.DestinationPath]; ok && p.Mode == Incremental {
				add(o, "paths", Error, "give the disk another destination path",
					"destination %s is where disk %s's backing file must be", l.DestinationPath, d.Label)
			}
		}
	}
	local := spec.Destination.Local
	for _, d := range p.Disks {
		if !inside(p.Dir, d.Destination, local) {
			add(d.Label, "paths", Error, fmt.Sprintf("give a destination path in %s", p.Dir),
				"destination %s is outside the destination directory %s", d.Destination, p.Dir)
		}
	}
	for _, f := range p.Fetches {
		if !inside(p.Dir, f.Path, local) {
			add("", "paths", Error, fmt.Sprintf("keep the template's base in %s: rebase the source onto a backing name that resolves there, or copy the disk whole (policy no-fetch)", p.Dir),
				"template %s's base would be fetched to %s, outside the destination directory %s", f.Template, f.Path, p.Dir)
		}
	}
	if !local {
		return
	}
	dirs := map[string]bool{}
	for _, d := range p.Disks {
		dirs[filepath.Dir(d.Destination)] = true
	}
	for _, f := range p.Fetches {
		dirs[filepath.Dir(f.Path)] = true
	}
	for dir := range dirs {
		fi, err := os.Stat(dir)
		switch {
		case err != nil:
			add("", "paths", Error, "create it, or correct the destination directory", "destination directory %s cannot be used: %v", dir, err)
		case !fi.IsDir():
			add("", "paths", Error, "correct the destination directory", "destination directory %s is not a directory", dir)
		case syscall.Access(dir, 2 /* W_OK */) != nil:
			add("", "paths", Error, "make it writable by the user that prepares the disks", "destination directory %s is not writable", dir)
		}
	}
}

// checkDisk checks one disk: its destination path is free (or already
// holds exactly the image Prepare would make), and its backing names
// resolve where the plan expects.
func checkDisk(ctx context.Context, spec *Spec, p *Plan, d DiskPlan, add addFunc) {
	if spec.Destination.Local {
		if _, err := existingDisk(ctx, d); err != nil {
			add(d.Label, "paths", Error, "remove it if it is left from an earlier attempt, or give the disk another destination path", "%v", err)
		}
	} else if inventoryHas(spec, d.Destination) {
		add(d.Label, "paths", Error, "remove it if it is left from an earlier attempt, or give the disk another destination path",
			"destination %s already exists on the destination host", d.Destination)
	}
	for _, l := range d.Chain[1:] {
		if l.DestinationPath == "" || d.Strategy != Linked {
			continue
		}
		if !inside(p.Dir, l.DestinationPath, spec.Destination.Local) {
			add(d.Label, "backing", Warning, fmt.Sprintf("keep bases in %s, or rebase the source onto an absolute name that is the same on both hosts", p.Dir),
				"backing name %q resolves to %s on the destination, outside the destination directory", l.Name, l.DestinationPath)
		}
		if !spec.Destination.Local && slices.Contains(strings.Split(l.Name, "/"), "..") {
			add(d.Label, "backing", Warning, "check on the destination that no directory on the way is a symbolic link, or rebase the source onto a name without \"..\"",
				"backing name %q goes up with \"..\": a symbolic link on the destination would make QEMU open another file than %s", l.Name, filepath.Clean(l.DestinationPath))
		}
	}
	if len(d.Chain) > 1 && d.Strategy == Full {
		last := d.Chain[len(d.Chain)-1]
		if isProtocol(last.Name) || strings.HasPrefix(last.Name, "json:") {
			add(d.Label, "backing", Warning, "nothing to do: the full copy does not need it",
				"backing name %q is a protocol or JSON name, which resolves differently on another host", last.Name)
		}
	}
	for i, l := range d.Chain {
		if i > 0 && l.VirtualSize > d.VirtualSize {
			add(d.Label, "sizes", Warning, "nothing to do if intended", "backing file %s (%d bytes) is larger than the disk (%d bytes); the guest sees only the disk's size", l.Path, l.VirtualSize, d.VirtualSize)
		}
	}
}

func inventoryHas(spec *Spec, path string) bool {
	for _, f := range spec.Destination.Files {
		if inventoryPath(spec.Destination.Dir, f) == path {
			return true
		}
	}
	return false
}

// within reports whether path is dir or below it, lexically.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// inside reports whether path is in dir on the destination. With local,
// it is decided on the real paths, symlinks resolved as the kernel will
// resolve them when the file is opened; otherwise lexically, which is all
// that can be known of another host.
func inside(dir, path string, local bool) bool {
	if !local {
		return within(filepath.Clean(dir), filepath.Clean(path))
	}
	rdir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	rpath, err := realPath(path)
	return err == nil && within(rdir, rpath)
}

// realPath resolves the symlinks of path as far as it exists, the kernel's
// way (a ".." after a symlink leaves the link's target), and appends the
// part that does not exist yet, which may hold no "..".
func realPath(path string) (string, error) {
	var rest []string
	p := path
	for {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{r}, rest...)...), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		i := strings.LastIndexByte(p, '/')
		if i <= 0 {
			return "", err
		}
		name := p[i+1:]
		if name == ".." {
			return "", fmt.Errorf("%s: a missing directory followed by \"..\"", path)
		}
		if name != "" && name != "." {
			rest = append([]string{name}, rest...)
		}
		p = p[:i]
	}
}
