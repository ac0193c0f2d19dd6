package download

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/directdl/directdl/internal/atomicfile"
)

// Leftovers of an interrupted download sit beside its destination under
// these names, so that the next Get for the same destination resumes it:
// ".NAME.ddpart" holds the data, ".NAME.ddctl" says which of it is there.
const (
	PartSuffix    = ".ddpart"
	ControlSuffix = ".ddctl"
)

func partPath(dest string) string {
	return filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+PartSuffix)
}

func controlPath(dest string) string {
	return filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+ControlSuffix)
}

// RemovePartial removes what an interrupted download to dest left beside
// it. It does nothing when there is nothing, and fails with ErrBusy while a
// download to dest is in progress.
func RemovePartial(dest string) error {
	if _, err := os.Stat(partPath(dest)); err == nil {
		f, err := openLocked(partPath(dest))
		if err != nil {
			return err
		}
		defer f.Close() // the lock is held until everything is gone
	}
	var errs []error
	for _, p := range []string{partPath(dest), controlPath(dest), controlPath(dest) + ".new"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

const controlVersion = 1

// progressState is what is known to be in the part file: the ranges written
// and the hash of the prefix [0, Hashed).
type progressState struct {
	Done      spans  `json:"done"`
	Hashed    int64  `json:"hashed"`
	HashState []byte `json:"hash_state"`
}

// control is the content of the control file. Latest describes the part
// file as this process left it in the page cache: right after a kill, but
// possibly ahead of the disk after a power loss. Durable describes the
// state that was fsynced before it was written; a resume on another boot
// (BootID differs) uses it instead.
type control struct {
	Version      int    `json:"version"`
	URL          string `json:"url"` // redacted, for people reading the file
	Size         int64  `json:"size"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Identity stands in for ETag and Last-Modified for a source that
	// is known before any request: a Metalink's size and hashes, an NFS
	// file's attributes.
	Identity  string        `json:"identity,omitempty"`
	Algorithm Algorithm     `json:"algorithm"`
	BootID    string        `json:"boot_id,omitempty"`
	Latest    progressState `json:"latest"`
	Durable   progressState `json:"durable"`
}

// writeControl replaces the control file. With durable, the new file and
// the directory are synced; without, a kill still leaves the old or the new
// file whole (rename), which is all a restart on the same boot needs.
func writeControl(path string, c *control, durable bool) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("download: writing control file %s: %w", path, err)
	}
	if durable {
		return atomicfile.SyncDir(filepath.Dir(path))
	}
	return nil
}

// readControl reads a control file; a missing one gives (nil, nil).
func readControl(path string) (*control, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseControl(b)
}

func parseControl(b []byte) (*control, error) {
	var c control
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("control file: %w", err)
	}
	if c.Version != controlVersion {
		return nil, fmt.Errorf("control file: version %d, want %d", c.Version, controlVersion)
	}
	if c.Size < 0 {
		return nil, fmt.Errorf("control file: negative size %d", c.Size)
	}
	if _, ok := lookup(string(c.Algorithm)); !ok {
		return nil, fmt.Errorf("control file: unknown algorithm %q", c.Algorithm)
	}
	for _, s := range []*progressState{&c.Latest, &c.Durable} {
		if !s.Done.valid(c.Size) {
			return nil, errors.New("control file: done ranges out of order or beyond the size")
		}
		if s.Hashed < 0 || s.Hashed > s.Done.prefix() {
			return nil, fmt.Errorf("control file: hashed %d bytes beyond the %d done", s.Hashed, s.Done.prefix())
		}
		h := Checksum{alg: c.Algorithm}.NewHash()
		if err := unmarshalHash(h, s.HashState); err != nil {
			return nil, fmt.Errorf("control file: hash state: %w", err)
		}
		if n, ok := stateLength(s.HashState); !ok || n != s.Hashed {
			return nil, fmt.Errorf("control file: the hash state has not consumed the %d bytes recorded as hashed", s.Hashed)
		}
	}
	return &c, nil
}

// bootID identifies the running kernel's boot, so a control file written
// before a reboot (perhaps a power loss) is recognised; "" when unknown.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
