package getter_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/getter"
)

func TestFile(t *testing.T) {
	src := t.TempDir()
	content := []byte("a disk image on a local mount\n")
	good := filepath.Join(src, "disk.img")
	writeFile(t, good, content)
	secret := filepath.Join(src, "secret")
	writeFile(t, secret, []byte("not for download\n"))
	link := filepath.Join(src, "link.img")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	archive := tarGz(t, "inner.img", content)
	tgz := filepath.Join(src, "bundle.tar.gz")
	writeFile(t, tgz, archive)

	g := newGetter(t, getter.WithSchemes(getter.SchemeFile))
	tests := []getCase{
		{name: "file URL", req: download.Request{URL: "file://" + good}, want: content},
		{name: "path with checksum", req: download.Request{URL: good + "?checksum=" + sumOf(content)}, want: content, verified: true},
		{name: "forced", req: download.Request{URL: "file::" + good, Checksum: sumOf(content)}, want: content, verified: true},
		{name: "size", req: download.Request{URL: good, Size: int64(len(content))}, want: content},
		{name: "checksum mismatch", req: download.Request{URL: good, Checksum: sumOf([]byte("other"))}, wantErr: download.ErrChecksumMismatch},
		{name: "URL checksum mismatch", req: download.Request{URL: "file://" + good + "?checksum=" + sumOf([]byte("other"))}, wantErr: download.ErrChecksumMismatch},
		{name: "checksums disagree", req: download.Request{URL: good + "?checksum=" + sumOf(content), Checksum: sumOf([]byte("other"))}, wantErr: getter.ErrSource, errText: "differs"},
		{name: "wrong size", req: download.Request{URL: good, Size: 3}, wantErr: download.ErrSizeMismatch},
		{name: "symlink source", req: download.Request{URL: link}, errText: "symlinks"},
		{name: "missing", req: download.Request{URL: filepath.Join(src, "nope")}, errText: "no such file"},
		{name: "archive stored as is", req: download.Request{URL: tgz, Checksum: sumOf(archive)}, want: archive, verified: true},
		{name: "archive parameter", req: download.Request{URL: "file://" + tgz + "?archive=tar.gz"}, wantErr: getter.ErrSource, errText: "archive="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := runGet(t, g, tt)
			if res == nil {
				return
			}
			if res.Size != int64(len(tt.want)) || res.Digest != sumOf(tt.want) || res.Verified != tt.verified {
				t.Errorf("result size %d digest %s verified %v, want %d %s %v", res.Size, res.Digest, res.Verified, len(tt.want), sumOf(tt.want), tt.verified)
			}
			if strings.Contains(res.URL, "checksum=") {
				t.Errorf("result URL %q keeps the checksum", res.URL)
			}
		})
	}
}

func TestFileDisabledByDefault(t *testing.T) {
	src := filepath.Join(t.TempDir(), "disk.img")
	writeFile(t, src, []byte("x"))
	g := newGetter(t)
	dir := t.TempDir()
	for _, u := range []string{src, "file://" + src, "file::" + src} {
		_, err := g.Get(context.Background(), download.Request{URL: u, Path: filepath.Join(dir, "out")})
		if !errors.Is(err, getter.ErrScheme) || !errors.Is(err, download.ErrRequest) {
			t.Errorf("%s: error %v, want ErrScheme", u, err)
		} else if !strings.Contains(err.Error(), `WithSchemes("file"`) {
			t.Errorf("%s: error %q does not say how to enable file", u, err)
		}
	}
	assertOnly(t, dir)
}

// One Getter serves many downloads at once.
func TestConcurrent(t *testing.T) {
	src := t.TempDir()
	g := newGetter(t, getter.WithSchemes(getter.SchemeFile))
	dir := t.TempDir()
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		content := []byte(strings.Repeat(string(rune('a'+i)), 1000+i))
		p := filepath.Join(src, fmt.Sprintf("f%d", i))
		writeFile(t, p, content)
		go func() {
			_, err := g.Get(context.Background(), download.Request{URL: p, Path: filepath.Join(dir, fmt.Sprintf("out%d", i)), Checksum: sumOf(content)})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("out%d", i))
	}
	assertOnly(t, dir, want...)
}
