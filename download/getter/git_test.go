package getter_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/getter"
)

// gitRepo makes a bare repository with the git program and returns its
// path. HEAD holds disk.img at the top, images/v2.img below, a symbolic
// link to a file outside the repository, and a .tar.gz; tag v1 holds an
// older disk.img.
func gitRepo(t *testing.T, files map[string][]byte, v1 []byte, outside string) string {
	t.Helper()
	gitBin := requireTool(t, "git", "git")
	// Keep the user's and the system's git configuration out.
	t.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("GIT_TERMINAL_PROMPT", "0")
	base := t.TempDir()
	work := filepath.Join(base, "work")
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command(gitBin, append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	run(work, "init", "-q")
	writeFile(t, filepath.Join(work, "disk.img"), v1)
	run(work, "add", "-A")
	run(work, "commit", "-q", "-m", "v1")
	run(work, "tag", "v1")
	for name, b := range files {
		writeFile(t, filepath.Join(work, name), b)
	}
	if err := os.Symlink(outside, filepath.Join(work, "link.img")); err != nil {
		t.Fatal(err)
	}
	// A link to a directory of the repository itself: os.Root would
	// follow it, and the same trick as "x -> .git" would reach .git/config.
	if err := os.Symlink("images", filepath.Join(work, "linkdir")); err != nil {
		t.Fatal(err)
	}
	run(work, "add", "-A")
	run(work, "commit", "-q", "-m", "v2")
	bare := filepath.Join(base, "repo.git")
	run(base, "clone", "-q", "--bare", work, bare)
	return bare
}

func TestGit(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret")
	secret := []byte("a file outside the repository\n")
	writeFile(t, outside, secret)
	disk := []byte("disk image, second version\n")
	nested := []byte("nested image\n")
	old := []byte("disk image, first version\n")
	archive := tarGz(t, "inner.img", disk)
	repo := gitRepo(t, map[string][]byte{
		"disk.img": disk, "images/v2.img": nested, "bundle.tar.gz": archive,
	}, old, outside)
	g := newGetter(t, getter.WithSchemes(getter.SchemeGit, getter.SchemeFile))
	base := "git::file://" + repo

	tests := []getCase{
		{name: "subdir form", req: download.Request{URL: base + "//images/v2.img", Checksum: sumOf(nested)}, want: nested},
		{name: "top-level form", req: download.Request{URL: base + "/disk.img"}, want: disk},
		{name: "ref", req: download.Request{URL: base + "//disk.img?ref=v1&checksum=" + sumOf(old)}, want: old},
		{name: "archive stored as is", req: download.Request{URL: base + "//bundle.tar.gz"}, want: archive},
		{name: "checksum mismatch", req: download.Request{URL: base + "//disk.img", Checksum: sumOf(old)}, wantErr: download.ErrChecksumMismatch},
		{name: "size mismatch", req: download.Request{URL: base + "//disk.img", Size: 3}, wantErr: download.ErrSizeMismatch},
		{name: "symbolic link", req: download.Request{URL: base + "//link.img"}, errText: "symbolic link"},
		{name: "symbolic link on the path", req: download.Request{URL: base + "//linkdir/v2.img"}, errText: "linkdir is a symbolic link"},
		{name: "missing file", req: download.Request{URL: base + "//nope.img"}, errText: "not in the repository"},
		{name: "directory", req: download.Request{URL: base + "//images"}, errText: "not a regular file"},
		{name: "missing ref", req: download.Request{URL: base + "//disk.img?ref=nope"}, errText: "nope"},
		{name: "archive parameter", req: download.Request{URL: base + "//bundle.tar.gz?archive=tar.gz"}, wantErr: getter.ErrSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runGet(t, g, tt)
		})
	}

	// Reading a local repository is reading local files.
	t.Run("local repository needs file", func(t *testing.T) {
		g := newGetter(t, getter.WithSchemes(getter.SchemeGit))
		dir := t.TempDir()
		_, err := g.Get(context.Background(), download.Request{URL: base + "//disk.img", Path: filepath.Join(dir, "out.img")})
		if !errors.Is(err, getter.ErrScheme) || !strings.Contains(err.Error(), `"file"`) {
			t.Errorf("error %v, want ErrScheme naming file", err)
		}
		assertOnly(t, dir)
	})
}
