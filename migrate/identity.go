package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/directdl/directdl/internal/checksum"
)

// defaultAlg is the algorithm of digests the planner computes when no
// recorded digest names another.
const defaultAlg = "sha256"

// ident is what is known of one file's identity on one host.
type ident struct {
	present     bool
	format      string // "" when unknown
	virtualSize int64  // 0 when unknown
	bytes       int64  // allocated bytes, 0 when unknown
	recorded    checksum.Sum
	local       bool // the file is readable here, so digests can be computed
}

// identities caches what the planner learns of files, so that a base
// shared by many disks is hashed once per plan.
type identities struct {
	noHash   bool
	source   map[string]checksum.Sum // recorded source digests by path
	dest     map[string]File         // destination inventory by path
	local    bool                    // destination readable here
	computed map[string]checksum.Sum // path + "\x00" + alg
	inspect  map[string]ident        // destination files inspected here
}

func newIdentities(spec *Spec) (*identities, error) {
	id := &identities{
		noHash:   spec.Policy.NoHash,
		source:   map[string]checksum.Sum{},
		dest:     map[string]File{},
		local:    spec.Destination.Local,
		computed: map[string]checksum.Sum{},
		inspect:  map[string]ident{},
	}
	for _, f := range spec.Source.Files {
		if !filepath.IsAbs(f.Path) {
			return nil, specErr("", "source file %q: give an absolute path", f.Path)
		}
		if f.Digest == "" {
			continue
		}
		s, err := checksum.Parse(f.Digest, false)
		if err != nil {
			return nil, &SpecError{Reason: "source file " + f.Path + ": bad digest", Err: err}
		}
		id.source[filepath.Clean(f.Path)] = s
	}
	for _, f := range spec.Destination.Files {
		p := inventoryPath(spec.Destination.Dir, f)
		if f.Digest != "" {
			if _, err := checksum.Parse(f.Digest, false); err != nil {
				return nil, &SpecError{Reason: "destination file " + f.Path + ": bad digest", Err: err}
			}
		}
		switch f.Format {
		case "", "qcow2", "raw":
		default:
			return nil, specErr("", "destination file %s: format %q; want qcow2 or raw", f.Path, f.Format)
		}
		id.dest[p] = f
	}
	return id, nil
}

// inventoryPath is the clean absolute path of a destination inventory
// file, whose Path may be relative to the destination directory.
func inventoryPath(dir string, f File) string {
	if filepath.IsAbs(f.Path) {
		return filepath.Clean(f.Path)
	}
	return filepath.Join(dir, f.Path)
}

// destination reports what is known of the file at path on the
// destination: from the inventory first, else, when the destination is
// local, from the file itself.
//
// An inventory names files by clean paths; a local file is opened by the
// path as given, so that the kernel resolves it as it will for QEMU.
func (id *identities) destination(path string) (ident, error) {
	if f, ok := id.dest[filepath.Clean(path)]; ok {
		s, _ := checksum.Parse(f.Digest, false)
		return ident{present: true, format: f.Format, virtualSize: f.VirtualSize, recorded: s, local: id.local}, nil
	}
	if !id.local {
		return ident{}, nil
	}
	if v, ok := id.inspect[path]; ok {
		return v, nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		id.inspect[path] = ident{}
		return ident{}, nil
	}
	if err != nil {
		return ident{}, err
	}
	if !fi.Mode().IsRegular() {
		return ident{}, fmt.Errorf("%s is not a regular file", path)
	}
	v := ident{present: true, local: true, bytes: allocated(fi)}
	isQ, err := hasQcow2Magic(path)
	if err != nil {
		return ident{}, err
	}
	if isQ {
		l, _, _, err := readLayer("", path, "qcow2", false)
		if err == nil {
			v.format, v.virtualSize = "qcow2", l.VirtualSize
		}
	} else {
		v.format, v.virtualSize = "raw", fi.Size()
	}
	id.inspect[path] = v
	return v, nil
}

// sourceDigest returns the digest in algorithm alg of the source file at
// path: recorded, or computed by reading the file unless hashing is
// forbidden (ok false).
func (id *identities) sourceDigest(ctx context.Context, path, alg string) (checksum.Sum, bool, error) {
	if s, ok := id.source[filepath.Clean(path)]; ok && s.Alg == alg {
		return s, true, nil
	}
	if id.noHash {
		return checksum.Sum{}, false, nil
	}
	s, err := id.hash(ctx, path, alg)
	return s, err == nil, err
}

// destDigest returns the digest in algorithm alg of the destination file
// at path: recorded in the inventory, or computed when the destination is
// local.
func (id *identities) destDigest(ctx context.Context, path string, v ident, alg string) (checksum.Sum, bool, error) {
	if v.recorded.Alg == alg {
		return v.recorded, true, nil
	}
	if !v.local {
		return checksum.Sum{}, false, nil
	}
	s, err := id.hash(ctx, path, alg)
	return s, err == nil, err
}

// algFor picks the algorithm to compare a source and a destination file
// in: the destination's recorded one, else the source's recorded one (so
// only the other side is read), else SHA-256.
func (id *identities) algFor(srcPath string, v ident) string {
	if v.recorded.Alg != "" {
		return v.recorded.Alg
	}
	if s, ok := id.source[filepath.Clean(srcPath)]; ok {
		return s.Alg
	}
	return defaultAlg
}

func (id *identities) hash(ctx context.Context, path, alg string) (checksum.Sum, error) {
	key := path + "\x00" + alg
	if s, ok := id.computed[key]; ok {
		return s, nil
	}
	s, err := hashFile(ctx, path, alg)
	if err != nil {
		return checksum.Sum{}, err
	}
	id.computed[key] = s
	return s, nil
}

// hashFile computes the digest of the file at path, checking ctx between
// reads so that a large base does not hold up a cancellation.
func hashFile(ctx context.Context, path, alg string) (checksum.Sum, error) {
	h := checksum.Sum{Alg: alg}.NewHash()
	if h == nil {
		return checksum.Sum{}, fmt.Errorf("unknown digest algorithm %q", alg)
	}
	f, err := os.Open(path)
	if err != nil {
		return checksum.Sum{}, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return checksum.Sum{}, err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return checksum.Sum{}, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	return checksum.New(alg, h.Sum(nil))
}
