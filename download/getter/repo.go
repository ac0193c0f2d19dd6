package getter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	gogetter "github.com/hashicorp/go-getter"

	"github.com/directdl/directdl/download"
)

// fetchRepo clones a git or hg repository with go-getter's getter into the
// engine's private directory and copies the one file out of it. go-getter's
// own GetFile for git copies the file with a FileGetter that has no client,
// so a symbolic link committed in the repository would be followed to any
// file on the machine; here the copy happens inside an os.Root and a link
// is refused.
func (g *Getter) fetchRepo(s source, limit int64) download.FetchFunc {
	return func(ctx context.Context, dst string) error {
		work, err := os.MkdirTemp(filepath.Dir(dst), ".repo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		repo := filepath.Join(work, "repo")
		var vcs gogetter.Getter
		switch s.scheme {
		case SchemeGit:
			vcs = new(gogetter.GitGetter)
		case SchemeHg:
			vcs = new(gogetter.HgGetter)
		default:
			return fmt.Errorf("getter: no repository getter for %q", s.scheme)
		}
		vcs.SetClient(&gogetter.Client{
			Ctx: ctx, Mode: gogetter.ClientModeDir, DisableSymlinks: true, Umask: 0o022,
			Detectors: []gogetter.Detector{}, Decompressors: map[string]gogetter.Decompressor{},
		})
		u := *s.inner
		if err := vcs.Get(repo, &u); err != nil {
			return err
		}
		return copyFromRepo(ctx, repo, s.file, dst, limit)
	}
}

// copyFromRepo copies the regular file name inside dir to dst, a path that
// must not exist yet.
func copyFromRepo(ctx context.Context, dir, name, dst string, limit int64) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	// os.Root keeps the path inside dir but follows links within it, so
	// a committed link "x -> .git" would reach .git/config by "x/config":
	// refuse a link anywhere on the path.
	parts := strings.Split(filepath.ToSlash(name), "/")
	for i := 1; i < len(parts); i++ {
		dirPart := strings.Join(parts[:i], "/")
		if fi, err := root.Lstat(dirPart); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link in the repository; links are not followed", dirPart)
		}
	}
	fi, err := root.Lstat(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s is not in the repository", name)
		}
		return fmt.Errorf("%s in the repository: %w", name, err)
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link in the repository; links are not followed", name)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s in the repository is not a regular file", name)
	case limit > 0 && fi.Size() != limit:
		return fmt.Errorf("%w: %s in the repository has %d bytes, the request expects %d", download.ErrSizeMismatch, name, fi.Size(), limit)
	}
	in, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi2, err := in.Stat(); err != nil || !os.SameFile(fi, fi2) {
		return fmt.Errorf("%s changed in the repository while being opened", name)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	var src io.Reader = ctxReader{ctx, in}
	if limit > 0 {
		src = io.LimitReader(src, limit+1)
	}
	n, err := io.Copy(out, src)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && limit > 0 && n > limit {
		err = fmt.Errorf("%w: %s in the repository grew past %d bytes", download.ErrSizeMismatch, name, limit)
	}
	return err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, context.Cause(r.ctx)
	}
	return r.r.Read(p)
}
