package getter_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/getter"
)

// loopback lets the tests reach their own servers on 127.0.0.1 and ::1;
// the default policy refuses them.
var loopback = download.Policy{Allow: []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
}}

func newGetter(t *testing.T, opts ...getter.Option) *getter.Getter {
	t.Helper()
	c, err := download.New(download.WithPolicy(loopback))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	g, err := getter.New(c, append([]getter.Option{getter.WithPolicy(loopback)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// requireTool returns the path of a program the test needs. Without it the
// test is skipped, except under CI=true, where it fails: CI installs it.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (Debian package %s), and CI=true", name, pkg)
		}
		t.Skipf("%s is not installed (Debian package %s)", name, pkg)
	}
	return p
}

// assertOnly checks that dir holds exactly the names want: no temporary
// file, no partial download, no lock left beside the destination.
func assertOnly(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

// assertRegular checks that path is a regular file (not a link) with
// content want.
func assertRegular(t *testing.T, path string, want []byte) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() {
		t.Fatalf("%s is a %v, not a regular file", path, fi.Mode().Type())
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds %d bytes %.40q, want %d bytes %.40q", path, len(got), got, len(want), want)
	}
}

// tarGz returns a gzip-compressed tar archive with one file.
func tarGz(t *testing.T, name string, content []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// getCase is one Get of a table test: want is the content the destination
// must get, or nil when the Get must fail with wantErr (when set) and an
// error that mentions errText.
type getCase struct {
	name     string
	req      download.Request
	want     []byte
	verified bool
	wantErr  error
	errText  string
}

// runGet runs c into a fresh directory and checks the outcome: the file
// and nothing beside it, or the error and nothing at all. It returns the
// result, nil for an expected failure, and the error.
func runGet(t *testing.T, g *getter.Getter, c getCase) (*download.Result, error) {
	t.Helper()
	dir := t.TempDir()
	dest := filepath.Join(dir, "out.img")
	c.req.Path = dest
	res, err := g.Get(context.Background(), c.req)
	if c.want == nil {
		if err == nil {
			t.Fatalf("Get succeeded: %+v", res)
		}
		if c.wantErr != nil && !errors.Is(err, c.wantErr) {
			t.Errorf("error %v does not match %v", err, c.wantErr)
		}
		if !strings.Contains(err.Error(), c.errText) {
			t.Errorf("error %q does not mention %q", err, c.errText)
		}
		assertOnly(t, dir) // nothing at the destination, nothing beside it
		return nil, err
	}
	if err != nil {
		t.Fatal(err)
	}
	assertRegular(t, dest, c.want)
	assertOnly(t, dir, "out.img")
	if res.Digest != sumOf(c.want) {
		t.Errorf("digest %s, want %s", res.Digest, sumOf(c.want))
	}
	return res, nil
}
