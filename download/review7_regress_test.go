package download_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/metalink"
	"github.com/directdl/directdl/internal/faultserver"
)

// startHandler serves h on host (a loopback address) and returns its base
// URL.
func startHandler(t testing.TB, host string, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// failingAfter answers its first ok requests with inner and every later one
// with 503; with ok 0 it always fails. fails counts the 503s.
type failingAfter struct {
	inner http.Handler
	ok    int32
	seen  atomic.Int32
	fails atomic.Int32
}

func (f *failingAfter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.seen.Add(1) > f.ok {
		f.fails.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	f.inner.ServeHTTP(w, r)
}

// failingFirst answers its first request with 503 and the rest with inner.
type failingFirst struct {
	inner http.Handler
	seen  atomic.Int32
}

func (f *failingFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.seen.Add(1) == 1 {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	f.inner.ServeHTTP(w, r)
}

// cancelOnLog is a slog handler that calls cancel on the n-th record whose
// message contains msg.
type cancelOnLog struct {
	msg    string
	n      int32
	seen   *atomic.Int32
	cancel func()
}

func (h cancelOnLog) Enabled(context.Context, slog.Level) bool { return true }
func (h cancelOnLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) && h.seen.Add(1) == h.n {
		h.cancel()
	}
	return nil
}
func (h cancelOnLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h cancelOnLog) WithGroup(string) slog.Handler      { return h }

// TestReview7CancelWhileSourcesBackOff: a Metalink download cancelled
// while every source waits out a backoff must end as a cancellation and
// keep what it fetched for the next Get. The fill rounds instead run out
// (each worker returns nil from takeSource on ctx.Done) and the download
// ends with ErrBadResponse "transfer ended with bytes missing", which
// counts as useless: the partial download is deleted.
func TestReview7CancelWhileSourcesBackOff(t *testing.T) {
	const size = 1 << 20
	content := faultserver.Pattern(31)
	sum := patternSHA256(t, content, size)
	a := &failingAfter{inner: &mirrorServer{t: t, content: content, size: size, etag: `"a"`}, ok: 1}
	b := &failingAfter{inner: &mirrorServer{t: t, content: content, size: size, etag: `"b"`}}
	ua := startHandler(t, "127.0.0.1", a)
	ub := startHandler(t, "127.0.0.2", b)
	f := metalink.File{Name: "f", Size: size, Hashes: []metalink.Hash{{Type: "sha-256", Value: sum}},
		URLs: []metalink.URL{{URL: ua + "/f", Priority: 1}, {URL: ub + "/f", Priority: 2}}}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The second "source failed" record is B's: from then on both sources
	// are in a long backoff and the only connection waits in takeSource.
	var seen atomic.Int32
	log := slog.New(cancelOnLog{msg: "source failed", n: 2, seen: &seen, cancel: cancel})
	var mu sync.Mutex
	var final *download.Progress
	sink := download.WithProgress(func(p download.Progress) {
		if p.Final {
			mu.Lock()
			final = &p
			mu.Unlock()
		}
	}, time.Hour)
	c := newClient(t, download.WithBackoff(10*time.Second, 10*time.Second), download.WithConnections(1),
		download.WithLogger(log), sink)
	dir := t.TempDir()
	dest := filepath.Join(dir, "f")
	_, err := c.Get(ctx, download.Request{Metalink: &f, Path: dest})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v, want context.Canceled", err)
	}
	if b.fails.Load() == 0 || a.fails.Load() == 0 {
		t.Fatalf("the scenario did not happen: a failed %d times, b %d", a.fails.Load(), b.fails.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if final == nil || !errors.Is(final.Err, context.Canceled) {
		t.Errorf("final progress event %+v; want its Err to be the cancellation", final)
	}
	if !leftovers(t, dest) {
		t.Errorf("the 256 KiB fetched before the cancellation were deleted; want them kept for a resume")
	}
}

// TestReview7RedoWhileCleanSourceBacksOff: a bad piece that two sources
// wrote (one cut off halfway, the other finishing it) must be fetched
// again from a third source, which is briefly in a backoff. claimRedo
// refuses it to the two that wrote it while the third is "usable", workers
// find nothing else, and fill burns through maxRounds empty rounds at
// once: the download fails with ErrBadResponse and its data is deleted.
func TestReview7RedoWhileCleanSourceBacksOff(t *testing.T) {
	const size = 1 << 20
	content := faultserver.Pattern(33)
	sum := patternSHA256(t, content, size)
	// A (priority 1) sends the first half of the only piece corrupt, then
	// dies; C (priority 2) answers 503 once, then serves; B (priority 3)
	// serves.
	a := startMirror(t, "127.0.0.1", content, size, func(m *mirrorServer) { m.corruptPiece = size; m.dieOn = 1 })
	b := startMirror(t, "127.0.0.2", content, size, nil)
	cm := &failingFirst{inner: &mirrorServer{t: t, content: content, size: size, etag: `"c"`}}
	uc := startHandler(t, "127.0.0.3", cm)
	f := metalink.File{Name: "f", Size: size, Hashes: []metalink.Hash{{Type: "sha-256", Value: sum}},
		Pieces: &metalink.Pieces{Length: size, Type: "sha-256", Hashes: pieceHashes(t, content, size, size)},
		URLs: []metalink.URL{
			{URL: a.URL("/f"), Priority: 1}, {URL: uc + "/f", Priority: 2}, {URL: b.URL("/f"), Priority: 3},
		}}
	c := newClient(t, download.WithBackoff(5*time.Second, 5*time.Second), download.WithConnections(1))
	dir := t.TempDir()
	dest := filepath.Join(dir, "f")
	res, err := c.Get(context.Background(), download.Request{Metalink: &f, Path: dest})
	if cm.seen.Load() == 0 || len(b.requests()) == 0 {
		t.Fatalf("the scenario did not happen: C asked %d times, B %d", cm.seen.Load(), len(b.requests()))
	}
	if err != nil {
		t.Fatalf("Get: %v; want the piece fetched again from C once its backoff ends (or from B)", err)
	}
	if fileSHA256(t, dest) != "sha256:"+sum || res.PiecesRefetched != 1 {
		t.Errorf("file %s, %d pieces refetched", fileSHA256(t, dest), res.PiecesRefetched)
	}
}

// versioned serves one file that changes after its first request: ETag,
// Digest and bytes of v[0] once, then of v[1]. If-Range that does not match
// gets the whole file with 200, as RFC 9110 says.
type versioned struct {
	v    [2][]byte
	etag [2]string
	seen atomic.Int32
}

func (s *versioned) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := 0
	if s.seen.Add(1) > 1 {
		i = 1
	}
	body, etag := s.v[i], s.etag[i]
	d := sha256.Sum256(body)
	w.Header().Set("ETag", etag)
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Digest", "SHA-256="+base64.StdEncoding.EncodeToString(d[:]))
	// ServeContent answers Range, and a whole 200 when If-Range names
	// the other version's ETag.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// TestReview7DigestAfterRemoteChange: a plain URL (no checksum) whose file
// changes during the download starts again from zero and gets the new
// file. With a Digest header, the first version's Digest stays the
// checksum after the restart, so the new file fails it: ErrChecksumMismatch
// where the engine before the sources change downloaded the new file.
func TestReview7DigestAfterRemoteChange(t *testing.T) {
	const size = 1 << 20
	s := &versioned{etag: [2]string{`"v1"`, `"v2"`}}
	for i, seed := range []uint64{35, 36} {
		s.v[i] = make([]byte, size)
		faultserver.Pattern(seed).ReadAt(s.v[i], 0)
	}
	u := startHandler(t, "127.0.0.1", s)
	dir := t.TempDir()
	dest := filepath.Join(dir, "f")
	res, err := newClient(t).Get(context.Background(), download.Request{URL: u + "/f", Path: dest})
	if err != nil {
		t.Fatalf("Get: %v; want the changed file downloaded from zero", err)
	}
	got, _ := os.ReadFile(dest)
	want := sha256.Sum256(s.v[1])
	if !bytes.Equal(got, s.v[1]) || res.Restarts != 1 || res.Digest != "sha256:"+hex.EncodeToString(want[:]) {
		t.Errorf("restarts %d, digest %s; want the second version after one restart", res.Restarts, res.Digest)
	}
}

// TestReview7GetWithMetalink: GetWith must run its fetch function; with a
// Request.Metalink it silently downloads from the Metalink's mirrors
// instead (newJob's Metalink case comes before the fetch case).
func TestReview7GetWithMetalink(t *testing.T) {
	const size = 64 << 10
	content := faultserver.Pattern(37)
	m := startMirror(t, "127.0.0.1", content, size, nil)
	f := metalink.File{Name: "f", Size: size, Hashes: []metalink.Hash{{Type: "sha-256", Value: patternSHA256(t, content, size)}},
		URLs: []metalink.URL{{URL: m.URL("/f"), Priority: 1}}}
	var called atomic.Bool
	fetch := func(ctx context.Context, dst string) error {
		called.Store(true)
		return errors.New("fetch ran")
	}
	dir := t.TempDir()
	_, err := newClient(t).GetWith(context.Background(), download.Request{URL: "s3::https://bucket/f", Metalink: &f, Path: filepath.Join(dir, "f")}, fetch)
	if !called.Load() && err == nil {
		t.Errorf("GetWith succeeded without calling fetch (the mirror got %d requests); want fetch run or an ErrRequest", len(m.requests()))
	}
}
