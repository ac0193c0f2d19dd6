package download_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

// loopback is the policy every test needs: the default refuses loopback.
var loopback = download.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

// newClient makes a client for the test servers: loopback allowed, short
// backoff and timeouts, plus opts.
func newClient(t testing.TB, opts ...download.Option) *download.Client {
	t.Helper()
	base := []download.Option{
		download.WithPolicy(loopback),
		download.WithBackoff(5*time.Millisecond, 50*time.Millisecond),
		download.WithSocketTimeout(2 * time.Second),
		download.WithMinSplit(64 << 10),
	}
	c, err := download.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// sha256Of returns the SHA-256 of the current content at path on s, as
// "sha256:hex".
func sha256Of(t testing.TB, s *faultserver.Server, path string) string {
	t.Helper()
	v, ok := s.Version(path)
	if !ok {
		t.Fatalf("no resource %s", path)
	}
	h := sha256.New()
	if err := faultserver.Hash(context.Background(), v.Content, v.Content.Size(), h); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// assertClean fails if anything but want is in dir: no part, control or
// temporary files left behind.
func assertClean(t testing.TB, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("directory holds %q, want %q", got, want)
	}
}

// assertAbsent fails if path exists.
func assertAbsent(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (err %v), want nothing there", filepath.Base(path), err)
	}
}

// leftovers reports whether a partial download of dest is beside it, and
// fails if anything else is in its directory.
func leftovers(t testing.TB, dest string) bool {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(dest))
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(dest)
	for _, e := range ents {
		if n := e.Name(); n != "."+base+download.PartSuffix && n != "."+base+download.ControlSuffix {
			t.Errorf("unexpected file %s beside the destination", n)
		}
	}
	return len(ents) > 0
}

// newTextLogger logs at debug level into b, guarded by mu.
func newTextLogger(b *strings.Builder, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{b, mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	b  *strings.Builder
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// cancelAfter returns an option and a context for a first download that is
// cancelled once at least n bytes of it are written, whatever the machine's
// speed: the progress sink cancels it.
func cancelAfter(t testing.TB, n int64) (download.Option, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return download.WithProgress(func(p download.Progress) {
		if p.Done >= n {
			cancel()
		}
	}, 5*time.Millisecond), ctx
}

// waitIdle waits until the server handles no request, so that bytes a
// cancelled run's handlers still push into closed connections are counted
// before the caller resets the server's statistics, not after.
func waitIdle(t testing.TB, s *faultserver.Server) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().ActiveRequests > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("server still handles %d requests after 30s", s.Stats().ActiveRequests)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
