// Package atomicfile writes files so that a reader, or a machine that
// crashes at any instant, sees either the old file (or none) or the whole new
// one: data goes to a temporary file beside the target, which is synced,
// renamed over the target, and then the directory is synced.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// TempPrefix starts the name of every temporary file this package creates
// (".NAME.tmp-RANDOM" beside the target, NAME cut to 32 bytes), so cleanup
// tools can find them.
const TempPrefix = "."

// Write creates or replaces path atomically. It creates a temporary file in
// the target's directory, calls fill to write the content, syncs the file,
// renames it over the target and syncs the directory.
//
// When path is a symbolic link, the file it points to is replaced (as a
// program writing through the link would), not the link. When a file is
// replaced, its permissions (and, when running as root, its owner and
// group) are kept; a new file gets perm less the umask. A directory at path
// is refused.
//
// If fill or any step before the rename fails, or fill panics, the
// temporary file is removed and the target is left as it was. If only the
// final directory sync fails, the new file is in place but may not survive
// a crash; the error says so.
func Write(path string, perm fs.FileMode, fill func(f *os.File) error) (err error) {
	target, err := resolve(path)
	if err != nil {
		return err
	}
	var old fs.FileInfo
	switch fi, err := os.Stat(target); {
	case err == nil && fi.IsDir():
		return fmt.Errorf("%s is a directory", path)
	case err == nil:
		old, perm = fi, fi.Mode().Perm()
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	f, tmp, err := createTemp(dir, base, perm)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if old != nil {
		if err := f.Chmod(perm); err != nil {
			return err
		}
		if st, ok := old.Sys().(*syscall.Stat_t); ok && os.Getuid() == 0 {
			if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
	}
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return err
	}
	committed = true
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("%s written, but not yet durable: %w", path, err)
	}
	return nil
}

// resolve follows symbolic links at path, including a dangling last link
// (whose target is then created).
func resolve(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

func createTemp(dir, base string, perm fs.FileMode) (*os.File, string, error) {
	if len(base) > 32 {
		base = base[:32]
	}
	for range 100 {
		var r [6]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, "", err
		}
		name := filepath.Join(dir, TempPrefix+base+".tmp-"+hex.EncodeToString(r[:]))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return f, name, nil
	}
	return nil, "", fmt.Errorf("creating a temporary file in %s: too many name collisions", dir)
}

// SyncDir fsyncs the directory dir so that a rename or a new entry in it
// survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
