package nfstest

import (
	"os"
	"path"
	"path/filepath"

	"github.com/go-git/go-billy/v5"
)

// dirFS is a billy.Filesystem over a directory of the OS. go-billy's own
// (osfs) would add a dependency to the module; a test server needs only
// this much. Paths are "/"-separated and cleaned as if rooted, so ".."
// cannot climb out of the directory (symbolic links are followed as the
// OS follows them: the tests that make them choose their targets).
type dirFS struct{ root string }

var _ billy.Filesystem = dirFS{}

func (d dirFS) abs(name string) string {
	return filepath.Join(d.root, filepath.FromSlash(path.Clean("/"+filepath.ToSlash(name))))
}

func (d dirFS) Create(name string) (billy.File, error) {
	return d.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

func (d dirFS) Open(name string) (billy.File, error) { return d.OpenFile(name, os.O_RDONLY, 0) }

func (d dirFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	if flag&os.O_CREATE != 0 {
		if err := d.MkdirAll(path.Dir(name), 0o755); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(d.abs(name), flag, perm)
	if err != nil {
		return nil, err
	}
	return dirFile{File: f, name: name}, nil
}

func (d dirFS) Stat(name string) (os.FileInfo, error)  { return os.Stat(d.abs(name)) }
func (d dirFS) Lstat(name string) (os.FileInfo, error) { return os.Lstat(d.abs(name)) }

func (d dirFS) Rename(from, to string) error {
	if err := d.MkdirAll(path.Dir(to), 0o755); err != nil {
		return err
	}
	return os.Rename(d.abs(from), d.abs(to))
}

func (d dirFS) Remove(name string) error             { return os.Remove(d.abs(name)) }
func (d dirFS) Join(elem ...string) string           { return path.Join(elem...) }
func (d dirFS) Readlink(name string) (string, error) { return os.Readlink(d.abs(name)) }
func (d dirFS) Root() string                         { return d.root }

func (d dirFS) TempFile(dir, prefix string) (billy.File, error) {
	if err := d.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(d.abs(dir), prefix)
	if err != nil {
		return nil, err
	}
	return dirFile{File: f, name: path.Join(dir, filepath.Base(f.Name()))}, nil
}

func (d dirFS) ReadDir(name string) ([]os.FileInfo, error) {
	ents, err := os.ReadDir(d.abs(name))
	if err != nil {
		return nil, err
	}
	out := make([]os.FileInfo, 0, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue // removed since the listing
		}
		out = append(out, fi)
	}
	return out, nil
}

func (d dirFS) MkdirAll(name string, perm os.FileMode) error { return os.MkdirAll(d.abs(name), perm) }

// Symlink makes link point at target as given: a relative target is
// relative to link's directory, as on the OS.
func (d dirFS) Symlink(target, link string) error {
	if err := d.MkdirAll(path.Dir(link), 0o755); err != nil {
		return err
	}
	return os.Symlink(target, d.abs(link))
}

func (d dirFS) Chroot(name string) (billy.Filesystem, error) { return dirFS{root: d.abs(name)}, nil }

// dirFile is an open file, named by its path in the dirFS.
type dirFile struct {
	*os.File
	name string
}

func (f dirFile) Name() string  { return f.name }
func (f dirFile) Lock() error   { return nil }
func (f dirFile) Unlock() error { return nil }
