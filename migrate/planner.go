package migrate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/directdl/directdl/internal/checksum"
	"github.com/directdl/directdl/internal/netguard"
	"github.com/directdl/directdl/qcow2"
)

// labelRE is what a disk label may be: it becomes a QEMU device id, part
// of QEMU node names (at most 31 bytes, with migrate/qemu's longest prefix
// "migrate-nbd-") and a virsh argument.
var labelRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,18}$`)

// NewPlan decides, for every disk of spec, what the destination needs and
// what is copied, and runs preflight on the result (Plan.Problems,
// Plan.Err). It reads the source images (and, with Destination.Local, the
// destination's files) but changes nothing. lookup may be nil when no disk
// names a template.
//
// The rules, per disk, from its backing chain as read from the images:
//
//   - no backing file: the disk is copied whole (Full); it needs no base.
//   - every backing layer present on the destination, where the disk's
//     backing name resolves there, with the same format, virtual size and
//     digest: Linked, only the top layer is copied.
//   - the base missing on the destination, its template active in lookup,
//     and the template's checksum equal to the source base's digest:
//     Linked after Prepare fetches the base.
//   - otherwise (the template was deleted, a base differs, policy): Full.
//
// A disk with a backing file that gets Full makes the whole VM Complete,
// since libvirt's flag is per VM: a Linked disk under
// VIR_MIGRATE_NON_SHARED_DISK would be copied whole anyway, and a Full disk
// under VIR_MIGRATE_NON_SHARED_INC would get only its top layer, on no base:
// a corrupt disk. The plan then makes every disk Full and says why.
//
// Errors are *SpecErrors (wrapping ErrSpec) for a spec that cannot be
// planned, or the lookup's or the context's errors.
func NewPlan(ctx context.Context, spec Spec, lookup TemplateLookup) (*Plan, error) {
	// The caller's Disks must not see the defaults validate fills in.
	spec.Disks = slices.Clone(spec.Disks)
	if err := spec.validate(); err != nil {
		return nil, err
	}
	ids, err := newIdentities(&spec)
	if err != nil {
		return nil, err
	}
	pl := &planner{spec: &spec, lookup: lookup, ids: ids, fetches: map[string]int{}, layers: map[string]layerInfo{}}
	p := &Plan{VM: spec.VM, Dir: filepath.Clean(spec.Destination.Dir)}
	for _, d := range spec.Disks {
		dp, err := pl.disk(ctx, d)
		if err != nil {
			return nil, err
		}
		p.Disks = append(p.Disks, dp)
	}
	p.Fetches = pl.fetchList
	pl.decideMode(p)
	for i := range p.Disks {
		p.CopyBytes += p.Disks[i].CopyBytes
		p.NeedBytes += needBytes(p.Disks[i])
	}
	for _, f := range p.Fetches {
		p.NeedBytes += f.Bytes
	}
	p.setLibvirt(spec.Destination.URI)
	if err := preflight(ctx, &spec, p); err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Spec) validate() error {
	if len(s.Disks) == 0 {
		return specErr("", "no disks to migrate")
	}
	dir := s.Destination.Dir
	if dir == "" || !filepath.IsAbs(dir) {
		return specErr("", "destination dir %q: give the destination's storage directory as an absolute path", dir)
	}
	if s.Destination.FreeBytes < 0 {
		return specErr("", "destination free-bytes %d: give the free bytes, or 0 when unknown", s.Destination.FreeBytes)
	}
	seen := map[string]bool{}
	for i := range s.Disks {
		d := &s.Disks[i]
		if !labelRE.MatchString(d.Label) {
			return specErr(d.Label, "label %q: give the disk's target name (vda, sdb, ...): a letter, then letters, digits, '.', '_' or '-', 19 at most", d.Label)
		}
		if seen[d.Label] {
			return specErr(d.Label, "label given to two disks; labels must be unique")
		}
		seen[d.Label] = true
		if !filepath.IsAbs(d.Path) {
			return specErr(d.Label, "path %q: give the source image as an absolute path", d.Path)
		}
		switch d.Format {
		case "":
			d.Format = "qcow2"
		case "qcow2", "raw":
		default:
			return specErr(d.Label, "format %q: only qcow2 and raw disks are supported", d.Format)
		}
		if d.Destination == "" {
			d.Destination = filepath.Join(dir, filepath.Base(d.Path))
		}
		if !filepath.IsAbs(d.Destination) {
			return specErr(d.Label, "destination %q: give an absolute path", d.Destination)
		}
		d.Destination = filepath.Clean(d.Destination)
	}
	return nil
}

type planner struct {
	spec      *Spec
	lookup    TemplateLookup
	ids       *identities
	fetches   map[string]int // destination path → index in fetchList
	fetchList []Fetch
	layers    map[string]layerInfo // backing layers read, by format and path
}

func (pl *planner) disk(ctx context.Context, d Disk) (DiskPlan, error) {
	chain, stop, err := readChain(d.Label, filepath.Clean(d.Path), d.Format, pl.layers)
	if err != nil {
		return DiskPlan{}, err
	}
	top := chain[0]
	dp := DiskPlan{
		Label:             d.Label,
		Source:            top.Path,
		Format:            top.Format,
		Destination:       d.Destination,
		DestinationFormat: top.Format,
		VirtualSize:       top.VirtualSize,
		Chain:             chain,
	}
	full := func(reason string, args ...any) (DiskPlan, error) {
		dp.Strategy, dp.Sync = Full, "full"
		dp.Backing, dp.BackingFormat, dp.Fetch = "", "", ""
		forgetDestination(chain)
		dp.CopyBytes = fullCopyBytes(chain)
		dp.Reason = fmt.Sprintf(reason, args...)
		return dp, nil
	}
	if len(chain) == 1 {
		return full("%s has no backing file: the whole disk is copied", top.Path)
	}
	if stop != "" {
		return full("%s; the disk is copied whole into an image with no backing file", stop)
	}
	if pl.spec.Policy.NoLinked {
		return full("the policy forbids linked clones; the disk is copied whole into an image with no backing file")
	}

	// Where each backing name resolves on the destination: against the
	// directory of the layer above it there, as QEMU resolves it.
	above := d.Destination
	for i := 1; i < len(chain); i++ {
		// Joined, not cleaned: QEMU hands the kernel "dir/../base", and a
		// symlink in dir makes that another file than a lexical clean.
		chain[i].DestinationPath = qcow2.ResolveBacking(above, chain[i].Name)
		above = chain[i].DestinationPath
	}
	dp.Backing, dp.BackingFormat = chain[1].Name, chain[1].Format

	var missing []int
	for i := 1; i < len(chain); i++ {
		l := &chain[i]
		v, err := pl.ids.destination(l.DestinationPath)
		if err != nil {
			return full("cannot read %s on the destination (%v); without a proven base the disk is copied whole", l.DestinationPath, err)
		}
		if !v.present {
			missing = append(missing, i)
			continue
		}
		if why, err := pl.sameContent(ctx, l, v); err != nil {
			return DiskPlan{}, err
		} else if why != "" {
			return full("%s; linking to it would show the guest other data, so the disk is copied whole into an image with no backing file", why)
		}
	}
	dp.CopyBytes = top.AllocatedBytes
	if len(missing) == 0 {
		dp.Strategy, dp.Sync = Linked, "top"
		dp.Reason = fmt.Sprintf("the destination holds the same %s at %s: only the top layer (%s) is copied", describeChain(chain[1:]), chain[1].DestinationPath, top.Path)
		return dp, nil
	}
	base := len(chain) - 1
	if len(missing) > 1 || missing[0] != base {
		l := chain[missing[0]]
		return full("the destination lacks %s (backing layer %s), which no template provides; the disk is copied whole into an image with no backing file", l.DestinationPath, l.Path)
	}
	return pl.fetchOrFull(ctx, d, dp, full)
}

// fetchOrFull decides for a disk whose base alone is missing on the
// destination: fetch its template there, or copy the disk whole.
func (pl *planner) fetchOrFull(ctx context.Context, d Disk, dp DiskPlan, full func(string, ...any) (DiskPlan, error)) (DiskPlan, error) {
	base := dp.Chain[len(dp.Chain)-1]
	if d.Template == "" {
		return full("the destination has no %s and the disk names no template to fetch it from; the disk is copied whole into an image with no backing file", base.DestinationPath)
	}
	if pl.spec.Policy.NoFetch {
		return full("the destination has no %s and the policy forbids fetching template %s; the disk is copied whole into an image with no backing file", base.DestinationPath, d.Template)
	}
	if pl.lookup == nil {
		return full("the destination has no %s and no template repository was given to find template %s; the disk is copied whole into an image with no backing file", base.DestinationPath, d.Template)
	}
	url, sum, found, err := pl.lookup.TemplateSource(ctx, d.Template)
	if err != nil {
		return DiskPlan{}, fmt.Errorf("migrate: disk %s: looking up template %s: %w", d.Label, d.Template, err)
	}
	if !found {
		return full("template %s was deleted (or is unknown) and the destination has no copy of its base %s: there is nothing to link to, so the disk gets an empty image of %d bytes with no backing file and is copied whole", d.Template, base.DestinationPath, dp.VirtualSize)
	}
	if url == "" || sum == "" {
		return full("template %s has no URL or no checksum to fetch and verify its base with; the disk is copied whole into an image with no backing file", d.Template)
	}
	want, err := checksum.Parse(sum, false)
	if err == nil && want.IsZero() {
		err = errors.New("it is empty")
	}
	if err != nil {
		return full("template %s has a checksum that cannot be read (%v); the disk is copied whole into an image with no backing file", d.Template, err)
	}
	got, ok, err := pl.ids.sourceDigest(ctx, base.Path, want.Alg)
	if err != nil {
		return DiskPlan{}, fmt.Errorf("migrate: disk %s: reading backing file %s: %w", d.Label, base.Path, err)
	}
	if !ok {
		return full("template %s could be fetched, but the policy forbids reading the source's base %s to prove it is the template, and no digest is recorded for it; the disk is copied whole", d.Template, base.Path)
	}
	if !got.Equal(want) {
		return full("template %s's checksum (%s) is not the digest of the source's base %s (%s): the template was replaced, so a fetched copy would not be this disk's base; the disk is copied whole into an image with no backing file", d.Template, want, base.Path, got)
	}
	dp.Chain[len(dp.Chain)-1].Digest = got.String()
	i, ok := pl.fetches[base.DestinationPath]
	if !ok {
		i = len(pl.fetchList)
		pl.fetches[base.DestinationPath] = i
		pl.fetchList = append(pl.fetchList, Fetch{
			Template: d.Template, URL: url, Checksum: sum, Path: base.DestinationPath,
			Format: base.Format, VirtualSize: base.VirtualSize, Bytes: base.AllocatedBytes,
		})
	} else if f := pl.fetchList[i]; f.Template != d.Template || f.Format != base.Format {
		return full("another disk fetches template %s to %s, where this disk's base must be; the disk is copied whole", f.Template, base.DestinationPath)
	}
	dp.Strategy, dp.Sync, dp.Fetch = Linked, "top", base.DestinationPath
	dp.Reason = fmt.Sprintf("the destination has no %s, but template %s is active and its checksum is the source base's digest: it is fetched from %s and verified, then only the top layer (%s) is copied", base.DestinationPath, d.Template, netguard.RedactString(url), dp.Source)
	return dp, nil
}

// sameContent compares a source backing layer with the destination file
// its name resolves to there. It returns why they differ, or "" when they
// are proven equal: same format, same virtual size and same digest.
func (pl *planner) sameContent(ctx context.Context, l *Layer, v ident) (string, error) {
	where := l.DestinationPath
	if v.format != "" && v.format != l.Format {
		return fmt.Sprintf("the destination's %s is %s, the source's %s is %s", where, v.format, l.Path, l.Format), nil
	}
	if v.virtualSize != 0 && v.virtualSize != l.VirtualSize {
		return fmt.Sprintf("the destination's %s has virtual size %d, the source's %s has %d", where, v.virtualSize, l.Path, l.VirtualSize), nil
	}
	alg := pl.ids.algFor(l.Path, v)
	dst, ok, err := pl.ids.destDigest(ctx, where, v, alg)
	if err != nil {
		return fmt.Sprintf("the destination's %s cannot be read (%v)", where, err), nil
	}
	if !ok {
		return fmt.Sprintf("the destination's %s has no recorded digest, so nothing proves it is the source's %s (equal names and sizes prove nothing)", where, l.Path), nil
	}
	src, ok, err := pl.ids.sourceDigest(ctx, l.Path, alg)
	if err != nil {
		return "", fmt.Errorf("migrate: reading backing file %s: %w", l.Path, err)
	}
	if !ok {
		return fmt.Sprintf("no %s digest of the source's %s is recorded and the policy forbids reading it, so nothing proves the destination's %s is the same", alg, l.Path, where), nil
	}
	if !src.Equal(dst) {
		return fmt.Sprintf("the destination's %s (%s) is not the source's %s (%s)", where, dst, l.Path, src), nil
	}
	l.Digest = src.String()
	return "", nil
}

// decideMode sets the VM's mode: Incremental when every disk with a
// backing file is Linked, Complete otherwise, when the Linked disks are
// made Full too.
func (pl *planner) decideMode(p *Plan) {
	var forcing []string
	linked := 0
	for _, d := range p.Disks {
		switch {
		case d.Strategy == Linked:
			linked++
		case len(d.Chain) > 1:
			forcing = append(forcing, d.Label)
		}
	}
	switch {
	case len(forcing) > 0:
		p.Mode = Complete
		p.ModeReason = fmt.Sprintf("disk %s must be copied whole and libvirt's storage flag is per VM, so every disk is copied whole (VIR_MIGRATE_NON_SHARED_DISK)", strings.Join(forcing, ", "))
		for i := range p.Disks {
			d := &p.Disks[i]
			if d.Strategy != Linked {
				continue
			}
			d.Strategy, d.Sync = Full, "full"
			d.Backing, d.BackingFormat, d.Fetch = "", "", ""
			forgetDestination(d.Chain)
			d.CopyBytes = fullCopyBytes(d.Chain)
			d.Reason = fmt.Sprintf("it could be linked (%s), but disk %s must be copied whole and the flag is per VM, so it is copied whole into an image with no backing file", d.Reason, strings.Join(forcing, ", "))
		}
		pl.fetchList = nil
		p.Fetches = nil
	case linked > 0:
		p.Mode = Incremental
		p.ModeReason = "every disk with a backing file is linked to a base the destination holds (or fetches), so only top layers are copied (VIR_MIGRATE_NON_SHARED_INC)"
	default:
		p.Mode = Complete
		p.ModeReason = "no disk has a backing file, so every disk is copied whole (VIR_MIGRATE_NON_SHARED_DISK)"
	}
}

// fullCopyBytes estimates what a full copy moves: the allocated bytes of
// every layer, at most the virtual size.
func fullCopyBytes(chain []Layer) int64 {
	var n int64
	for _, l := range chain {
		if l.Unread {
			return chain[0].VirtualSize
		}
		n += l.AllocatedBytes
	}
	return min(n, chain[0].VirtualSize)
}

// needBytes estimates the destination space a disk takes once copied: what
// is copied, plus a qcow2's metadata (an L2 table per 512 MiB of 64 KiB
// clusters, roughly 1/8192 of the virtual size, and the header clusters).
func needBytes(d DiskPlan) int64 {
	if d.DestinationFormat == "raw" {
		return d.CopyBytes
	}
	return d.CopyBytes + d.VirtualSize/8192 + 4<<16
}

func describeChain(layers []Layer) string {
	if len(layers) == 1 {
		return "base"
	}
	return fmt.Sprintf("backing chain of %d images", len(layers))
}

// forgetDestination clears where backing layers would be on the
// destination, for a disk copied whole, which needs none of them.
func forgetDestination(chain []Layer) {
	for i := range chain {
		chain[i].DestinationPath = ""
	}
}
