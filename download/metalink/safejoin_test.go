package metalink

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSafeJoin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := []struct{ name, want string }{
		{"f.iso", "f.iso"},
		{"a/b/c.qcow2", "a/b/c.qcow2"},
		{"..a", "..a"},
		{"a..", "a.."},
		{"...", "..."},
		{"a/.b", "a/.b"},
		{"ünï code.iso", "ünï code.iso"},
	}
	for _, c := range good {
		got, err := File{Name: c.name}.SafeJoin(dir)
		if err != nil {
			t.Errorf("SafeJoin(%q): %v", c.name, err)
			continue
		}
		if want := filepath.Join(dir, filepath.FromSlash(c.want)); got != want {
			t.Errorf("SafeJoin(%q) = %q, want %q", c.name, got, want)
		}
	}
	bad := []string{
		"", ".", "..", "../f", "./f", "a/../b", "a/../../b", "a/..", "/etc/passwd", "//server/share/f",
		`..\f`, `a\..\..\b`, `C:\Windows\f`, "C:f", "c:/f", "a//b", "a/", "a/./b", "a\x00b", "a\nb", "\u0085",
		strings.Repeat("a", 256), strings.Repeat("a/", 2100) + "b",
	}
	for _, name := range bad {
		got, err := File{Name: name}.SafeJoin(dir)
		if !errors.Is(err, ErrUnsafePath) || got != "" {
			t.Errorf("SafeJoin(%q) = %q, %v; want ErrUnsafePath", name, got, err)
		}
	}
	for _, d := range []string{dir + "/", dir + "/./", dir + "/x/.."} {
		got, err := File{Name: "a/b"}.SafeJoin(d)
		if err != nil || got != filepath.Join(dir, "a", "b") {
			t.Errorf("SafeJoin into %q = %q, %v", d, got, err)
		}
	}
	if got, err := (File{Name: "etc/passwd"}).SafeJoin("/"); err != nil || got != "/etc/passwd" {
		t.Errorf("SafeJoin into / = %q, %v", got, err)
	}
	if got, err := (File{Name: "f"}).SafeJoin(""); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("SafeJoin into \"\" = %q, %v; want an error", got, err)
	}
	// The joined path is inside dir on the real file system too: create
	// it and find it by walking dir (no symlinks are involved).
	p, err := File{Name: "sub/dir/x.img"}.SafeJoin(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	found := false
	_ = filepath.WalkDir(dir, func(q string, d os.DirEntry, err error) error {
		if q == p && !d.IsDir() {
			found = true
		}
		return err
	})
	if !found {
		t.Errorf("%s not found under %s", p, dir)
	}
}
