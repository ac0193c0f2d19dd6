package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/directdl/directdl/qcow2"
)

// fileCache remembers digests of pool files by their identity (device and
// inode, size, modification time), so that a digest stays attached to the
// content it was taken of: a file replaced or rewritten loses it.
type fileCache struct {
	mu      sync.Mutex
	digests map[string]digestRecord // by absolute path
	hashing sync.Mutex              // one computed digest at a time
}

type digestRecord struct {
	fi     fs.FileInfo
	digest string
	source string
}

func newFileCache() *fileCache { return &fileCache{digests: map[string]digestRecord{}} }

// record attaches digest to the file at path as it is now.
func (c *fileCache) record(path, digest, source string) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.digests[path] = digestRecord{fi: fi, digest: digest, source: source}
	c.mu.Unlock()
}

// lookup returns the digest recorded for the file at path if fi is still
// the file it was recorded for.
func (c *fileCache) lookup(path string, fi fs.FileInfo) (digest, source string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.digests[path]
	if !ok {
		return "", ""
	}
	if !os.SameFile(r.fi, fi) || r.fi.Size() != fi.Size() || !r.fi.ModTime().Equal(fi.ModTime()) {
		delete(c.digests, path)
		return "", ""
	}
	return r.digest, r.source
}

// compute hashes the file at path with SHA-256 and records the result,
// unless a digest is recorded meanwhile.
func (c *fileCache) compute(ctx context.Context, path string) (string, error) {
	c.hashing.Lock()
	defer c.hashing.Unlock()
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if d, _ := c.lookup(path, fi); d != "" {
		return d, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return "", fmt.Errorf("agent: hashing %s: %w", path, err)
	}
	d := "sha256:" + hex.EncodeToString(h.Sum(nil))
	c.mu.Lock()
	c.digests[path] = digestRecord{fi: fi, digest: d, source: "computed"}
	c.mu.Unlock()
	return d, nil
}

// ctxReader stops a long read when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(b)
}

func (a *Agent) inventory(w http.ResponseWriter, r *http.Request) {
	compute := false
	switch v := r.URL.Query().Get("digests"); v {
	case "", "recorded":
	case "compute":
		compute = true
	default:
		writeError(w, http.StatusBadRequest, &ErrorBody{Error: fmt.Sprintf("query parameter digests=%q; use recorded (the default) or compute", v)})
		return
	}
	inv, err := a.Inventory(r.Context(), compute)
	if err != nil {
		writeError(w, http.StatusInternalServerError, &ErrorBody{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, inv)
}

// Inventory lists the images in the pool: its regular files whose names
// do not start with '.' (partial downloads and the staging directory are
// hidden), not descending into directories. A file's digest is the one
// recorded when the agent downloaded it or migrate.Prepare fetched it,
// while the file is unchanged; with compute, files without one are hashed
// (SHA-256, once: the result is kept while the file is unchanged).
func (a *Agent) Inventory(ctx context.Context, compute bool) (*Inventory, error) {
	des, err := os.ReadDir(a.pool)
	if err != nil {
		return nil, fmt.Errorf("agent: reading the pool: %w", err)
	}
	inv := &Inventory{Pool: a.pool, FreeBytes: freeBytes(a.pool), QEMU: a.qemuVersion(ctx), Files: []File{}}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") || !de.Type().IsRegular() {
			continue
		}
		path := filepath.Join(a.pool, de.Name())
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		f := describe(path, fi)
		f.Digest, f.DigestSource = a.files.lookup(path, fi)
		if f.Digest == "" && compute {
			d, err := a.files.compute(ctx, path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			f.Digest, f.DigestSource = d, "computed"
		}
		inv.Files = append(inv.Files, f)
	}
	return inv, nil
}

// describe reads what the inventory reports of one file: a qcow2 header
// (one cluster at most, never the backing file), or a raw file's length.
func describe(path string, fi fs.FileInfo) File {
	f := File{Path: fi.Name(), Size: fi.Size(), Modified: fi.ModTime().UTC()}
	img, err := qcow2.InspectFile(path)
	switch {
	case errors.Is(err, qcow2.ErrNotQcow2):
		f.Format, f.VirtualSize = "raw", fi.Size()
	case err != nil:
		f.Format, f.Problem = "qcow2", err.Error()
	default:
		f.Format, f.VirtualSize = "qcow2", int64(img.Size)
		f.BackingFile, f.BackingFormat = img.BackingFile, img.BackingFormat
	}
	return f
}

// qemuVersion is Config.QEMU, or the first line of `qemu-img --version`,
// asked once.
func (a *Agent) qemuVersion(ctx context.Context) string {
	a.qemuOnce.Do(func() {
		path, err := exec.LookPath("qemu-img")
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, path, "--version").Output()
		if err != nil {
			return
		}
		line, _, _ := strings.Cut(string(out), "\n")
		a.qemu = strings.TrimSpace(line)
	})
	return a.qemu
}
