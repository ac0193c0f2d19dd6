package download_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

func TestGetParallel(t *testing.T) {
	t.Parallel()
	const size = 8<<20 + 12345
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/disk.img", 7, size)))
	want := sha256Of(t, s, "/disk.img")
	dir := t.TempDir()
	dest := filepath.Join(dir, "disk.img")
	c := newClient(t, download.WithConnections(4))
	res, err := c.Get(context.Background(), download.Request{URL: s.URL("/disk.img"), Path: dest, Checksum: want})
	if err != nil {
		t.Fatal(err)
	}
	if got := fileSHA256(t, dest); got != want {
		t.Errorf("file digest %s, want %s", got, want)
	}
	if res.Digest != want || !res.Verified || res.Size != size {
		t.Errorf("result digest %s verified %v size %d, want %s true %d", res.Digest, res.Verified, res.Size, want, size)
	}
	if res.Connections < 2 || !res.Ranges {
		t.Errorf("connections %d ranges %v, want several connections over ranges", res.Connections, res.Ranges)
	}
	if st := s.Stats(); st.BytesServed > size+4*(256<<10) {
		t.Errorf("server sent %d bytes for a %d-byte file", st.BytesServed, size)
	}
	assertClean(t, dir, "disk.img")
}

func TestGetChecksumMismatch(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t)
	dir := t.TempDir()
	dest := filepath.Join(dir, "f")
	c := newClient(t)
	wrong := "{SHA-256}" + "00000000000000000000000000000000000000000000000000000000000000aa"
	_, err := c.Get(context.Background(), download.Request{URL: s.URL(faultserver.DefaultResourcePath), Path: dest, Checksum: wrong})
	var ce *download.ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ChecksumError", err)
	}
	if ce.RetryElsewhere() {
		t.Error("RetryElsewhere() = true")
	}
	assertClean(t, dir)
}
