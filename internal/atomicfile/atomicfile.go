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
)

// TempPrefix starts the name of every temporary file this package creates
// (".NAME.tmp-RANDOM" beside the target), so cleanup tools can find them.
const TempPrefix = "."

// Write creates path atomically. It creates a temporary file in path's
// directory with permissions perm (less the process umask), calls fill to
// write the content, syncs the file, renames it to path (replacing any file
// there) and syncs the directory. If fill or any step fails, the temporary
// file is removed and path is left as it was.
func Write(path string, perm fs.FileMode, fill func(f *os.File) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, tmp, err := createTemp(dir, base, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

func createTemp(dir, base string, perm fs.FileMode) (*os.File, string, error) {
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
