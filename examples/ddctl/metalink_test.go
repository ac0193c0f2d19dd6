package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/directdl/directdl/download/metalink"
	"github.com/directdl/directdl/internal/faultserver"
)

// mirrorsMetalink serves the same content from three servers on
// 127.0.0.1-3 and returns a Metalink file describing it as name, with
// piece hashes, and the content's SHA-256.
func mirrorsMetalink(t *testing.T, name string, size int64) (metalink.File, string) {
	t.Helper()
	const seed, piece = 21, 256 << 10
	var urls []metalink.URL
	for i, h := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		s := faultserver.StartTest(t, faultserver.WithHosts(h), faultserver.WithResource(faultserver.PatternResource("/d", seed, size)))
		urls = append(urls, metalink.URL{URL: s.URL("/d"), Priority: i + 1})
	}
	p := faultserver.Pattern(seed)
	var hashes []string
	whole := sha256.New()
	buf := make([]byte, piece)
	for off := int64(0); off < size; off += piece {
		n := min(piece, size-off)
		p.ReadAt(buf[:n], off)
		whole.Write(buf[:n])
		s := sha256.Sum256(buf[:n])
		hashes = append(hashes, hex.EncodeToString(s[:]))
	}
	sum := hex.EncodeToString(whole.Sum(nil))
	return metalink.File{
		Name: name, Size: size, Hashes: []metalink.Hash{{Type: "sha-256", Value: sum}},
		Pieces: &metalink.Pieces{Length: piece, Type: "sha-256", Hashes: hashes}, URLs: urls,
	}, sum
}

func writeMetalink(t *testing.T, path string, files ...metalink.File) []byte {
	t.Helper()
	b, err := (&metalink.Metalink{Files: files}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if path != "" {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func TestDownloadMetalink(t *testing.T) {
	t.Parallel()
	f, sum := mirrorsMetalink(t, "templates/disk.qcow2", 3<<20+7)
	other, _ := mirrorsMetalink(t, "other.img", 1<<20)

	t.Run("local file into a directory", func(t *testing.T) {
		dir := t.TempDir()
		ml := filepath.Join(t.TempDir(), "t.meta4")
		writeMetalink(t, ml, f, other)
		code, stdout, stderr := dl(t, "-json", "-metalink", ml, "-metalink-file", f.Name, "-o", dir)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		m := decodeResult(t, stdout, resultKeys)
		dest := filepath.Join(dir, "templates", "disk.qcow2")
		if m["path"] != dest || m["digest"] != "sha256:"+sum || m["verified"] != true {
			t.Errorf("result %v", m)
		}
		if got := fileSHA256(t, dest); got != sum {
			t.Errorf("file %s", got)
		}
		if srcs, _ := m["sources"].([]any); len(srcs) != 3 {
			t.Errorf("sources %v, want the three mirrors", m["sources"])
		}
	})

	t.Run("URL into a directory", func(t *testing.T) {
		dir := t.TempDir()
		doc := writeMetalink(t, "", f)
		s := faultserver.StartTest(t, faultserver.WithResource(faultserver.Resource{Path: "/t.metalink", Content: strings.NewReader(string(doc)), Size: int64(len(doc))}))
		code, _, stderr := dl(t, "-o", dir, s.URL("/t.metalink"))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if got := fileSHA256(t, filepath.Join(dir, "templates", "disk.qcow2")); got != sum {
			t.Errorf("file %s", got)
		}
		if !strings.Contains(stderr, "from 3 sources") {
			t.Errorf("summary %q does not name the sources", stderr)
		}
	})

	t.Run("several files and none chosen", func(t *testing.T) {
		ml := filepath.Join(t.TempDir(), "t.meta4")
		writeMetalink(t, ml, f, other)
		code, _, stderr := dl(t, "-metalink", ml, "-o", t.TempDir())
		if code != 2 || !strings.Contains(stderr, `"other.img"`) || !strings.Contains(stderr, "-metalink-file") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("traversal", func(t *testing.T) {
		root := t.TempDir()
		dir := filepath.Join(root, "pool")
		os.Mkdir(dir, 0o755)
		ml := filepath.Join(root, "t.meta4")
		b := writeMetalink(t, "", f)
		b = []byte(strings.Replace(string(b), `name="templates/disk.qcow2"`, `name="../escape.img"`, 1))
		os.WriteFile(ml, b, 0o644)
		code, _, stderr := dl(t, "-metalink", ml, "-o", dir)
		if code != 2 || !strings.Contains(stderr, "climb out") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		mustNotExist(t, filepath.Join(root, "escape.img"))
	})

	t.Run("symlinked subdirectory", func(t *testing.T) {
		dir, elsewhere := t.TempDir(), t.TempDir()
		if err := os.Symlink(elsewhere, filepath.Join(dir, "templates")); err != nil {
			t.Fatal(err)
		}
		ml := filepath.Join(t.TempDir(), "t.meta4")
		writeMetalink(t, ml, f)
		code, _, stderr := dl(t, "-metalink", ml, "-o", dir)
		if code == 0 || !strings.Contains(stderr, "is not a directory") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
			t.Errorf("%d files written through the symbolic link", len(ents))
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"-metalink", "x.meta4", "-o", t.TempDir(), "http://127.0.0.1/f"},
			{"-metalink", "x.meta4", "-batch", "b", "-o", t.TempDir()},
			{"-metalink-file", "a", "-o", t.TempDir(), "http://127.0.0.1/f"},
			{"-mirror-connections", "0", "-metalink", "x.meta4", "-o", t.TempDir()},
		} {
			if code, _, stderr := dl(t, args...); code != 2 {
				t.Errorf("%q: exit %d (%s), want 2", args, code, stderr)
			}
		}
	})
}
