package nfstest_test

import (
	"context"
	"io"
	"os"
	"slices"
	"testing"

	"github.com/directdl/directdl/download/nfs"
	"github.com/directdl/directdl/download/nfs/nfstest"
)

func read(t *testing.T, url string) (nfs.Validators, string) {
	t.Helper()
	f, err := nfs.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return f.Validators(), string(b)
}

// TestServer checks what the download tests rely on: Replace makes
// another file of the same name, Restart serves the same file on another
// port, Kill stops serving and Close removes the files.
func TestServer(t *testing.T) {
	s, err := nfstest.Start(map[string][]byte{"a/b.img": []byte("first")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v1, got := read(t, s.URL("a/b.img"))
	if got != "first" {
		t.Fatalf("read %q", got)
	}
	if m := s.Mounts(); !slices.Equal(m, []string{nfstest.Export + "/a", nfstest.Export}) {
		t.Errorf("Mounts = %q, want the longest prefix refused, then the export", m)
	}

	if err := s.Replace("a/b.img", []byte("other")); err != nil {
		t.Fatal(err)
	}
	v2, got := read(t, s.URL("a/b.img"))
	if got != "other" || v2 == v1 {
		t.Errorf("after Replace: %q with validators %v (were %v)", got, v2, v1)
	}
	if ents, err := s.FS.ReadDir("a"); err != nil || len(ents) != 1 {
		t.Errorf("after Replace the directory holds %d files (%v), want 1", len(ents), err)
	}

	s.Kill()
	accepted := s.Accepted()
	r := s.Restart(t)
	if r.Addr == s.Addr {
		t.Errorf("restarted on the same address %s", r.Addr)
	}
	if v3, got := read(t, r.URL("a/b.img")); v3 != v2 || got != "other" {
		t.Errorf("after Restart: %q with validators %v, want %v", got, v3, v2)
	}
	if _, err := nfs.Open(context.Background(), s.URL("a/b.img")); err == nil || s.Accepted() != accepted {
		t.Errorf("a killed server: Open = %v, %d connections accepted after the kill", err, s.Accepted()-accepted)
	}

	r.Close()
	if _, err := os.Stat(s.FS.Root()); !os.IsNotExist(err) {
		t.Errorf("the files are still there after Close (%v)", err)
	}
}
