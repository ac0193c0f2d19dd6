package download_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/directdl/directdl/download"
)

// writeFetch returns a FetchFunc that writes content to dst.
func writeFetch(content []byte) download.FetchFunc {
	return func(ctx context.Context, dst string) error {
		return os.WriteFile(dst, content, 0o644)
	}
}

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestGetWith(t *testing.T) {
	content := []byte("template bytes from another scheme\n")
	other := []byte("something else entirely\n")
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, content, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		req     download.Request
		fetch   download.FetchFunc
		wantErr error
		errText string
	}{
		{name: "verified", req: download.Request{Checksum: sumOf(content)}, fetch: writeFetch(content)},
		{name: "no checksum", fetch: writeFetch(content)},
		{name: "size", req: download.Request{Size: int64(len(content))}, fetch: writeFetch(content)},
		{name: "mismatch", req: download.Request{Checksum: sumOf(content)}, fetch: writeFetch(other), wantErr: download.ErrChecksumMismatch},
		{name: "wrong size", req: download.Request{Size: 3}, fetch: writeFetch(content), wantErr: download.ErrSizeMismatch},
		{name: "fetch fails", fetch: func(ctx context.Context, dst string) error {
			os.WriteFile(dst, content[:5], 0o644) // half written, then failure
			return errors.New("bucket said no")
		}, errText: "bucket said no"},
		{name: "nothing written", fetch: func(context.Context, string) error { return nil }, wantErr: download.ErrBadResponse},
		{name: "symlink", fetch: func(ctx context.Context, dst string) error {
			return os.Symlink(outside, dst)
		}, wantErr: download.ErrBadResponse, errText: "symbolic link"},
		{name: "directory", fetch: func(ctx context.Context, dst string) error {
			return os.Mkdir(dst, 0o755)
		}, wantErr: download.ErrBadResponse, errText: "directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "disk.qcow2")
			req := tt.req
			req.URL, req.Path = "s3::https://user:secret@bucket.example/disk.qcow2", dest
			var mu sync.Mutex
			var final []download.Progress
			c := newClient(t, download.WithProgress(func(p download.Progress) {
				if p.Final {
					mu.Lock()
					final = append(final, p)
					mu.Unlock()
				}
			}, 0))
			res, err := c.GetWith(context.Background(), req, tt.fetch)
			mu.Lock()
			if len(final) != 1 {
				t.Errorf("%d final progress events, want 1", len(final))
			}
			mu.Unlock()
			if tt.wantErr == nil && tt.errText == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := fileSHA256(t, dest); got != sumOf(content) || res.Digest != got {
					t.Errorf("file %s, result %s, want %s", got, res.Digest, sumOf(content))
				}
				if res.Size != int64(len(content)) || res.Verified != (req.Checksum != "") {
					t.Errorf("result %+v", res)
				}
				if strings.Contains(res.URL, "secret") || !strings.HasSuffix(res.URL, "@bucket.example/disk.qcow2") {
					t.Errorf("result URL %q is not redacted", res.URL)
				}
				assertClean(t, dir, "disk.qcow2")
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if tt.errText != "" && !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not say %q", err, tt.errText)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
			assertClean(t, dir)
			if b, err := os.ReadFile(outside); err != nil || string(b) != string(content) {
				t.Errorf("the symlink target was touched: %q, %v", b, err)
			}
		})
	}
}

func TestGetWithKeepsOldFileAndRefusesBusy(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "disk.qcow2")
	if err := os.WriteFile(dest, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	started, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var firstErr error
	go func() {
		defer wg.Done()
		_, firstErr = c.GetWith(context.Background(), download.Request{URL: "git::file:///a", Path: dest, Checksum: sumOf([]byte("x"))},
			func(ctx context.Context, dst string) error {
				close(started)
				<-release
				return os.WriteFile(dst, []byte("y"), 0o644)
			})
	}()
	<-started
	_, err := c.GetWith(context.Background(), download.Request{URL: "git::file:///b", Path: dest}, writeFetch([]byte("z")))
	if !errors.Is(err, download.ErrBusy) {
		t.Errorf("second fetch to the same path: %v, want ErrBusy", err)
	}
	close(release)
	wg.Wait()
	if !errors.Is(firstErr, download.ErrChecksumMismatch) {
		t.Fatalf("first fetch: %v, want a checksum mismatch", firstErr)
	}
	if b, _ := os.ReadFile(dest); string(b) != "old" {
		t.Errorf("destination now holds %q; a failed fetch must leave it as it was", b)
	}
	assertClean(t, dir, "disk.qcow2")
}

func TestGetWithCancel(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "f")
	ctx, cancel := context.WithCancel(context.Background())
	_, err := newClient(t).GetWith(ctx, download.Request{URL: "x::y", Path: dest}, func(fctx context.Context, dst string) error {
		os.WriteFile(dst, []byte("partial"), 0o644)
		cancel()
		<-fctx.Done()
		return fctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	assertClean(t, dir)
}
