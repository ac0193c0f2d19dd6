package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := Write(p, 0o640, func(f *os.File) error { _, err := f.WriteString("new"); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Errorf("content %q, want new", b)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm()&^0o640 != 0 {
		t.Errorf("mode %v, want at most 0640", fi.Mode().Perm())
	}

	boom := errors.New("boom")
	err := Write(p, 0o644, func(f *os.File) error {
		f.WriteString("half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Errorf("failed write changed the file to %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %v after a failed write, want only f", ents)
	}
}

func TestWriteMissingDir(t *testing.T) {
	t.Parallel()
	err := Write(filepath.Join(t.TempDir(), "no", "f"), 0o644, func(*os.File) error { return nil })
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v, want ErrNotExist", err)
	}
}

func TestWriteRelative(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := Write("rel", 0o644, func(f *os.File) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rel")); err != nil {
		t.Error(err)
	}
}

func TestWriteKeepsModeAndFollowsLinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.WriteFile(real, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("real", link); err != nil {
		t.Fatal(err)
	}
	if err := Write(link, 0o644, func(f *os.File) error { _, err := f.WriteString("new"); return err }); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced by a file")
	}
	if b, _ := os.ReadFile(real); string(b) != "new" {
		t.Errorf("target holds %q, want new", b)
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 kept", fi.Mode().Perm())
	}
	// A dangling link: its target is created.
	dangling := filepath.Join(dir, "dangling")
	os.Symlink("created", dangling)
	if err := Write(dangling, 0o644, func(*os.File) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "created")); err != nil {
		t.Errorf("dangling link target not created: %v", err)
	}
}

func TestWriteRefusesDirectoryAndSurvivesPanic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := Write(dir, 0o644, func(*os.File) error { return nil }); err == nil {
		t.Error("a directory target was accepted")
	}
	func() {
		defer func() { recover() }()
		Write(filepath.Join(dir, "p"), 0o644, func(*os.File) error { panic("boom") })
	}()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("panicking fill left %v behind", ents)
	}
	long := filepath.Join(dir, strings.Repeat("n", 250))
	if err := Write(long, 0o644, func(*os.File) error { return nil }); err != nil {
		t.Errorf("250-byte name: %v", err)
	}
}
