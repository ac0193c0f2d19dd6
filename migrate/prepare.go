package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/directdl/directdl/internal/checksum"
	"github.com/directdl/directdl/qcow2"
)

// Prepared is what Prepare did on the destination.
type Prepared struct {
	// Created are the files Prepare created, in order: fetched bases, then
	// disks. A failed Prepare removed them again.
	Created []string `json:"created"`
	// Kept are the files that were already there exactly as the plan needs
	// them (an earlier Prepare of the same plan), and were left alone.
	Kept []string `json:"kept,omitempty"`
	// Fetched are the bases downloaded, a subset of Created.
	Fetched  []string      `json:"fetched,omitempty"`
	Duration time.Duration `json:"duration-ns"`
}

// ErrPrepare is wrapped by every *PrepareError.
var ErrPrepare = errors.New("migrate: prepare failed")

// PrepareError reports the step of Prepare that failed. By the time it is
// returned, everything Prepare had created was removed again.
type PrepareError struct {
	Disk string // the disk's label, "" for a fetched base
	Path string // the file the step was making
	Step string // "check", "fetch", "verify", "create"
	Err  error
}

// Error names the disk, the step, the path and the cause, and says that
// what Prepare created was removed.
func (e *PrepareError) Error() string {
	s := "migrate: prepare"
	if e.Disk != "" {
		s += " disk " + e.Disk
	}
	return fmt.Sprintf("%s: %s %s: %v; everything prepare created was removed", s, e.Step, e.Path, e.Err)
}

// Unwrap returns ErrPrepare and the cause.
func (e *PrepareError) Unwrap() []error { return []error{ErrPrepare, e.Err} }

// Prepare creates on the destination what p calls for, and must run where
// the destination's storage is (the destination host). First it fetches
// every base in p.Fetches with fetcher (nil when there are none) and checks
// the fetched file's format and virtual size against the source's base,
// and a qcow2 base against qcow2.Vet (no backing file, no external data
// file, not dirty), as a downloaded template would be;
// then it creates every disk: for Linked, a qcow2 overlay with the source's
// backing name and format; for Full, an empty image with no backing; both
// of exactly the source's virtual size.
//
// It refuses a plan whose preflight found errors (p.Err). It is
// idempotent: a file already at its path exactly as the plan needs it (an
// empty disk of the planned size and backing, a base with the template's
// checksum) is kept, and anything else there stops Prepare before it
// changes anything. Files appear atomically and never replace another
// file; a base is fetched into a private directory beside its path and
// linked into place, so nothing a failed fetch leaves behind survives it.
// Prepare checks the plan itself (it may have been read from JSON): every
// path must resolve, symlinks followed, inside the destination directory,
// and a linked disk's backing name must name the base the plan checks.
// When a step fails, Prepare removes every file and directory it created,
// so the destination is as it was, and returns a *PrepareError.
func Prepare(ctx context.Context, p *Plan, fetcher Fetcher) (*Prepared, error) {
	start := time.Now()
	if err := p.Err(); err != nil {
		return nil, err
	}
	// Where each file really goes, symlinks resolved: a plan is JSON and
	// may have been made elsewhere, so Prepare checks it itself.
	real, err := checkPlan(p)
	if err != nil {
		return nil, err
	}
	if len(p.Fetches) > 0 && fetcher == nil {
		return nil, &PrepareError{Path: p.Fetches[0].Path, Step: "fetch", Err: errors.New("the plan fetches a template's base and no Fetcher was given")}
	}
	out := &Prepared{}
	// Check everything before changing anything.
	fetch := make([]bool, len(p.Fetches))
	for i, f := range p.Fetches {
		have, err := existingBase(ctx, f)
		if err != nil {
			return nil, &PrepareError{Path: f.Path, Step: "check", Err: err}
		}
		if have {
			out.Kept = append(out.Kept, f.Path)
		}
		fetch[i] = !have
	}
	// The bases linked disks rest on must be there as planned: the plan
	// may come from an inventory that is out of date by now.
	checked := map[string]bool{}
	for _, d := range p.Disks {
		if d.Strategy != Linked {
			continue
		}
		for _, l := range d.Chain[1:] {
			if d.Fetch == l.DestinationPath || checked[l.DestinationPath] {
				continue
			}
			if err := checkLayer(ctx, l); err != nil {
				return nil, &PrepareError{Disk: d.Label, Path: l.DestinationPath, Step: "check", Err: err}
			}
			checked[l.DestinationPath] = true
		}
	}
	create := make([]bool, len(p.Disks))
	for i, d := range p.Disks {
		have, err := existingDisk(ctx, d)
		if err != nil {
			return nil, &PrepareError{Disk: d.Label, Path: d.Destination, Step: "check", Err: err}
		}
		if have {
			out.Kept = append(out.Kept, d.Destination)
		}
		create[i] = !have
	}

	var made []string // files and directories created, for the rollback
	fail := func(e *PrepareError) (*Prepared, error) {
		for _, path := range slices.Backward(made) {
			os.Remove(path)
		}
		syncDir(real.dir)
		return nil, e
	}
	for i, f := range p.Fetches {
		if !fetch[i] {
			continue
		}
		dirs, err := mkdirs(real.dir, filepath.Dir(real.fetches[i]))
		made = append(made, dirs...)
		if err != nil {
			return fail(&PrepareError{Path: f.Path, Step: "fetch", Err: err})
		}
		kept, step, err := fetchBase(ctx, fetcher, f, real.fetches[i])
		if err != nil {
			return fail(&PrepareError{Path: f.Path, Step: step, Err: err})
		}
		if kept {
			out.Kept = append(out.Kept, f.Path)
			continue
		}
		made = append(made, real.fetches[i])
		out.Created = append(out.Created, f.Path)
		out.Fetched = append(out.Fetched, f.Path)
	}
	for i, d := range p.Disks {
		if !create[i] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fail(&PrepareError{Disk: d.Label, Path: d.Destination, Step: "create", Err: err})
		}
		dirs, err := mkdirs(real.dir, filepath.Dir(real.disks[i]))
		made = append(made, dirs...)
		if err == nil {
			err = createDisk(d, real.disks[i])
		}
		if err != nil {
			return fail(&PrepareError{Disk: d.Label, Path: d.Destination, Step: "create", Err: err})
		}
		made = append(made, real.disks[i])
		out.Created = append(out.Created, d.Destination)
	}
	out.Duration = time.Since(start)
	return out, nil
}

// realPaths are a plan's paths with their symlinks resolved.
type realPaths struct {
	dir            string
	disks, fetches []string
}

// checkPlan refuses a plan Prepare cannot carry out safely, whatever made
// it: paths outside the destination directory (symlinks resolved), a
// linked disk without a backing chain, unknown formats or strategies.
func checkPlan(p *Plan) (realPaths, error) {
	bad := func(disk, path, format string, args ...any) (realPaths, error) {
		return realPaths{}, &PrepareError{Disk: disk, Path: path, Step: "check", Err: fmt.Errorf("the plan is not usable: "+format, args...)}
	}
	var r realPaths
	if !filepath.IsAbs(p.Dir) {
		return bad("", p.Dir, "its destination directory is not an absolute path")
	}
	dir, err := filepath.EvalSymlinks(p.Dir)
	if err != nil {
		return bad("", p.Dir, "%v", err)
	}
	r.dir = dir
	resolve := func(path string) (string, bool) {
		if !filepath.IsAbs(path) {
			return "", false
		}
		rp, err := realPath(path)
		return rp, err == nil && within(dir, rp) && rp != dir
	}
	fetches := map[string]bool{}
	for _, f := range p.Fetches {
		rp, ok := resolve(f.Path)
		if !ok {
			return bad("", f.Path, "the base of template %s would go outside the destination directory %s", f.Template, p.Dir)
		}
		if f.URL == "" || f.Checksum == "" || (f.Format != "qcow2" && f.Format != "raw") || f.VirtualSize <= 0 {
			return bad("", f.Path, "the fetch of template %s lacks its URL, checksum, format or size", f.Template)
		}
		r.fetches = append(r.fetches, rp)
		fetches[f.Path] = true
	}
	seen := map[string]bool{}
	for _, d := range p.Disks {
		rp, ok := resolve(d.Destination)
		switch {
		case d.Label == "" || seen[d.Label]:
			return bad(d.Label, d.Destination, "disk labels must be given and unique")
		case !ok:
			return bad(d.Label, d.Destination, "the disk would go outside the destination directory %s", p.Dir)
		case d.DestinationFormat != "qcow2" && d.DestinationFormat != "raw":
			return bad(d.Label, d.Destination, "destination format %q", d.DestinationFormat)
		case d.VirtualSize <= 0:
			return bad(d.Label, d.Destination, "virtual size %d", d.VirtualSize)
		case d.Strategy == Full && d.Backing != "":
			return bad(d.Label, d.Destination, "a full disk with a backing file")
		case d.Strategy == Linked && (len(d.Chain) < 2 || d.Backing == "" || d.BackingFormat == "" || d.DestinationFormat != "qcow2"):
			return bad(d.Label, d.Destination, "a linked disk needs a qcow2 destination, a backing name and format, and its backing chain")
		case d.Strategy != Full && d.Strategy != Linked:
			return bad(d.Label, d.Destination, "strategy %q", d.Strategy)
		case d.Fetch != "" && !fetches[d.Fetch]:
			return bad(d.Label, d.Destination, "it fetches %s, which the plan's fetches do not list", d.Fetch)
		}
		if d.Strategy == Linked {
			for _, l := range d.Chain[1:] {
				if l.DestinationPath == "" || l.Unread {
					return bad(d.Label, d.Destination, "a backing layer has no destination path")
				}
			}
			// The disk's backing name is what QEMU opens; it must be
			// the layer whose format, size and digest the plan checks,
			// or a plan from JSON could link a disk to any file.
			switch {
			case isProtocol(d.Backing) || strings.HasPrefix(d.Backing, "json:"):
				return bad(d.Label, d.Destination, "backing name %q is a protocol or JSON name", d.Backing)
			case d.BackingFormat != "qcow2" && d.BackingFormat != "raw":
				return bad(d.Label, d.Destination, "backing format %q", d.BackingFormat)
			case filepath.Clean(backingTarget(d.Destination, d.Backing)) != filepath.Clean(d.Chain[1].DestinationPath):
				return bad(d.Label, d.Destination, "backing name %q resolves to %s, not to the base the plan checks (%s)",
					d.Backing, filepath.Clean(backingTarget(d.Destination, d.Backing)), d.Chain[1].DestinationPath)
			}
		}
		seen[d.Label] = true
		r.disks = append(r.disks, rp)
	}
	return r, nil
}

// fetchBase downloads a base into a private directory beside its path,
// checks it, and links it into place, so that whatever the Fetcher leaves
// behind on failure (a partial download kept for a resume) goes with the
// directory. kept reports a complete base that appeared at path meanwhile.
func fetchBase(ctx context.Context, fetcher Fetcher, f Fetch, path string) (kept bool, step string, err error) {
	tmpDir, err := os.MkdirTemp(filepath.Dir(path), ".migrate-fetch-*")
	if err != nil {
		return false, "fetch", err
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, filepath.Base(path))
	if err := fetcher.Fetch(ctx, f.URL, tmp, f.Checksum); err != nil {
		return false, "fetch", err
	}
	if err := checkBase(f, tmp); err != nil {
		return false, "verify", err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return false, "fetch", err
	}
	if err := os.Link(tmp, path); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return false, "fetch", err
		}
		if ok, err := existingBase(ctx, Fetch{Template: f.Template, Checksum: f.Checksum, Format: f.Format, VirtualSize: f.VirtualSize, Path: path}); !ok {
			if err == nil {
				err = fmt.Errorf("%s appeared while the base was fetched", path)
			}
			return false, "fetch", err
		}
		return true, "", nil
	}
	return false, "", syncDir(filepath.Dir(path))
}

// createDisk makes the destination image of one disk, atomically and
// without replacing a file that appeared meanwhile: it is written to a
// temporary file beside the destination, synced, and hard-linked into
// place (link fails when the name exists, where rename would replace).
func createDisk(d DiskPlan, path string) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	switch d.DestinationFormat {
	case "qcow2":
		o := qcow2.Options{Size: d.VirtualSize}
		if d.Strategy == Linked {
			o.BackingFile, o.BackingFormat, o.Unsafe = d.Backing, d.BackingFormat, true
		}
		_, err = qcow2.CreateAt(tmp, o)
	case "raw":
		err = tmp.Truncate(d.VirtualSize)
	default:
		err = fmt.Errorf("unknown destination format %q", d.DestinationFormat)
	}
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s appeared while it was being prepared; something else is writing there", d.Destination)
		}
		return err
	}
	return syncDir(dir)
}

// existingDisk reports whether the destination of d already holds exactly
// the image Prepare makes for it: the planned format, virtual size and
// backing, and no data. Any other file there is an error that says what
// differs.
func existingDisk(ctx context.Context, d DiskPlan) (bool, error) {
	fi, err := os.Lstat(d.Destination)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	exists := func(format string, args ...any) (bool, error) {
		return false, fmt.Errorf("destination %s already exists and "+format+"; Prepare will not overwrite it", append([]any{d.Destination}, args...)...)
	}
	if !fi.Mode().IsRegular() {
		return exists("is not a regular file")
	}
	isQ, err := hasQcow2Magic(d.Destination)
	if err != nil {
		return false, err
	}
	switch d.DestinationFormat {
	case "raw":
		if isQ {
			return exists("is a qcow2 image, not raw")
		}
		if fi.Size() != d.VirtualSize {
			return exists("has %d bytes, not %d", fi.Size(), d.VirtualSize)
		}
		if allocated(fi) != 0 {
			return exists("holds data")
		}
		return true, nil
	case "qcow2":
		if !isQ {
			return exists("is not a qcow2 image")
		}
		img, err := qcow2.InspectFile(d.Destination)
		if err != nil {
			return exists("cannot be read as qcow2 (%v)", err)
		}
		if int64(img.Size) != d.VirtualSize {
			return exists("has virtual size %d, not %d", img.Size, d.VirtualSize)
		}
		if img.BackingFile != d.Backing || img.BackingFormat != d.BackingFormat {
			return exists("has backing %q (%q), not %q (%q)", img.BackingFile, img.BackingFormat, d.Backing, d.BackingFormat)
		}
		r, err := qcow2.CheckFile(ctx, d.Destination)
		if err != nil {
			return exists("cannot be checked (%v)", err)
		}
		if !r.Clean() || r.AllocatedClusters != 0 {
			return exists("holds data (%d clusters)", r.AllocatedClusters)
		}
		return true, nil
	}
	return false, fmt.Errorf("unknown destination format %q", d.DestinationFormat)
}

// existingBase reports whether a base to fetch is already at its path
// with the template's checksum (an earlier Prepare); another file there is
// an error.
func existingBase(ctx context.Context, f Fetch) (bool, error) {
	fi, err := os.Lstat(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("%s exists and is not a regular file", f.Path)
	}
	want, err := checksum.Parse(f.Checksum, false)
	if err != nil {
		return false, fmt.Errorf("template %s's checksum: %w", f.Template, err)
	}
	got, err := hashFile(ctx, f.Path, want.Alg)
	if err != nil {
		return false, err
	}
	if !got.Equal(want) {
		return false, fmt.Errorf("%s already exists with digest %s, not template %s's %s; Prepare will not overwrite it", f.Path, got, f.Template, want)
	}
	if err := checkBase(f, f.Path); err != nil {
		return false, err
	}
	return true, nil
}

// checkBase checks a fetched base against the source's: same format and
// virtual size, so that the overlays Prepare makes on it show the guest
// what the source shows.
func checkBase(f Fetch, path string) error {
	switch f.Format {
	case "qcow2":
		img, err := qcow2.InspectFile(path)
		if err != nil {
			return fmt.Errorf("the fetched base is not the qcow2 image the source's base is: %w", err)
		}
		if int64(img.Size) != f.VirtualSize {
			return fmt.Errorf("the fetched base has virtual size %d, the source's %d", img.Size, f.VirtualSize)
		}
		if img.BackingFile != "" {
			return fmt.Errorf("the fetched base names a backing file (%q); a template must not", img.BackingFile)
		}
		// What else makes a downloaded template unsafe for QEMU (an
		// external data file, the dirty bit, a broken header): the same
		// verdict a download is given.
		if err := vetBase(path, f.VirtualSize); err != nil {
			return err
		}
	case "raw":
		isQ, err := hasQcow2Magic(path)
		if err != nil {
			return err
		}
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if isQ || fi.Size() != f.VirtualSize {
			return fmt.Errorf("the fetched base is not the raw image of %d bytes the source's base is", f.VirtualSize)
		}
	}
	return nil
}

// vetBase gives the fetched qcow2 base at path qcow2.Vet's verdict, with
// no size limit beyond the source base's own.
func vetBase(path string, size int64) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	v, err := qcow2.Vet(fh, qcow2.Policy{MaxVirtualSize: max(size, 1)})
	if err != nil {
		return err
	}
	if !v.Safe {
		msgs := make([]string, len(v.Problems))
		for i, p := range v.Problems {
			msgs[i] = p.Code + ": " + p.Message
		}
		return fmt.Errorf("the fetched base is not safe to give QEMU: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// checkLayer checks that a backing layer a linked disk needs is on the
// destination with the source layer's format, virtual size and, when the
// plan recorded it, digest.
func checkLayer(ctx context.Context, l Layer) error {
	fi, err := os.Stat(l.DestinationPath)
	if err != nil {
		return fmt.Errorf("the base the plan links to is not there: %w; plan again", err)
	}
	isQ, err := hasQcow2Magic(l.DestinationPath)
	if err != nil {
		return err
	}
	size := fi.Size()
	if isQ {
		img, err := qcow2.InspectFile(l.DestinationPath)
		if err != nil {
			return err
		}
		size = int64(img.Size)
	}
	if format := map[bool]string{true: "qcow2", false: "raw"}[isQ]; format != l.Format || size != l.VirtualSize {
		return fmt.Errorf("the base is %s of %d bytes, the source's %s of %d: it is not the source's base; plan again", format, size, l.Format, l.VirtualSize)
	}
	if l.Digest == "" {
		return nil
	}
	want, err := checksum.Parse(l.Digest, false)
	if err != nil {
		return err
	}
	got, err := hashFile(ctx, l.DestinationPath, want.Alg)
	if err != nil {
		return err
	}
	if !got.Equal(want) {
		return fmt.Errorf("the base has digest %s, the source's %s: it is not the source's base; plan again", got, want)
	}
	return nil
}

// mkdirs creates dir and its missing parents below root, returning those
// it created, outermost first.
func mkdirs(root, dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if !within(root, d) || d == filepath.Dir(d) {
			return nil, fmt.Errorf("directory %s does not exist", d)
		}
		missing = append(missing, d)
	}
	var made []string
	for _, d := range slices.Backward(missing) {
		if err := os.Mkdir(d, 0o755); err != nil {
			return made, err
		}
		made = append(made, d)
	}
	return made, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// backingTarget is the file QEMU opens for backing name of the image at
// path: an absolute name as it is, a relative one from the image's
// directory.
func backingTarget(path, name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(filepath.Dir(path), name)
}
