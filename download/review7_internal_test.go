package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directdl/directdl/download/metalink"
	"github.com/directdl/directdl/internal/faultserver"
)

// r7Files serves byte slices by path with ranges and a fixed ETag per
// path; before, when set, runs first for every request.
type r7Files struct {
	files  map[string][]byte
	before func(r *http.Request)
	hits   sync.Map // path -> *atomic.Int32
}

func (s *r7Files) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := s.hits.LoadOrStore(r.URL.Path, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	if s.before != nil {
		s.before(r)
	}
	body, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", `"`+strings.Trim(r.URL.Path, "/")+`"`)
	w.Header().Set("Accept-Ranges", "bytes")
	// ServeContent answers Range (and If-Range against the ETag above).
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func (s *r7Files) count(path string) int32 {
	n, ok := s.hits.Load(path)
	if !ok {
		return 0
	}
	return n.(*atomic.Int32).Load()
}

func r7Serve(t *testing.T, host string, h http.Handler) string {
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

func r7Client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	base := []Option{
		WithPolicy(Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
		WithBackoff(5*time.Millisecond, 50*time.Millisecond),
		WithSocketTimeout(2 * time.Second),
		WithMinSplit(64 << 10),
	}
	c, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func r7Pattern(seed uint64, n int) []byte {
	b := make([]byte, n)
	faultserver.Pattern(seed).ReadAt(b, 0)
	return b
}

func r7Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestReview7MetalinkJoinsOtherDownload: two Gets for the same path with
// different Metalinks (different files) and no URL must not share one
// download: the in-flight key is URL and Request checksum only, both empty
// here, so the second caller is told it got its file and is handed the
// first one's result (the first file at its path).
func TestReview7MetalinkJoinsOtherDownload(t *testing.T) {
	const size = 256 << 10
	a, b := r7Pattern(41, size), r7Pattern(42, size)
	release := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	srvA := &r7Files{files: map[string][]byte{"/a": a}, before: func(*http.Request) {
		once.Do(func() { close(entered) })
		<-release
	}}
	ua := r7Serve(t, "127.0.0.1", srvA)
	ub := r7Serve(t, "127.0.0.2", &r7Files{files: map[string][]byte{"/b": b}})
	fa := metalink.File{Name: "a", Size: size, Hashes: []metalink.Hash{{Type: "sha-256", Value: r7Hex(a)}},
		URLs: []metalink.URL{{URL: ua + "/a", Priority: 1}}}
	fb := metalink.File{Name: "b", Size: size, Hashes: []metalink.Hash{{Type: "sha-256", Value: r7Hex(b)}},
		URLs: []metalink.URL{{URL: ub + "/b", Priority: 1}}}
	c := r7Client(t)
	dest := filepath.Join(t.TempDir(), "disk")

	doneA := make(chan error, 1)
	go func() {
		_, err := c.Get(context.Background(), Request{Metalink: &fa, Path: dest})
		doneA <- err
	}()
	<-entered
	type out struct {
		res *Result
		err error
	}
	doneB := make(chan out, 1)
	go func() {
		res, err := c.Get(context.Background(), Request{Metalink: &fb, Path: dest})
		doneB <- out{res, err}
	}()
	// Release A once B has either returned or joined A's call.
	var gotB *out
wait:
	for {
		select {
		case o := <-doneB:
			gotB = &o
			break wait
		default:
		}
		c.mu.Lock()
		cl := c.inflight[dest]
		joined := cl != nil && cl.waiters >= 2
		c.mu.Unlock()
		if joined {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-doneA; err != nil {
		t.Fatalf("Get A: %v", err)
	}
	if gotB == nil {
		o := <-doneB
		gotB = &o
	}
	switch {
	case errors.Is(gotB.err, ErrBusy):
	case gotB.err != nil:
		t.Fatalf("Get B: %v", gotB.err)
	case gotB.res.Digest != "sha256:"+r7Hex(b):
		got, _ := os.ReadFile(dest)
		t.Errorf("Get B succeeded with digest %s (file at the path: sha256:%s); B's file is sha256:%s: it was handed A's download",
			gotB.res.Digest, r7Hex(got), r7Hex(b))
	}
}

// r7WritePartial leaves a partial download of dest as an earlier run
// would: the part file (size bytes of part) and a control file.
func r7WritePartial(t *testing.T, dest string, part []byte, c *control) {
	t.Helper()
	if err := os.WriteFile(partPath(dest), part, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Version, c.URL, c.Size, c.BootID = controlVersion, "earlier run", int64(len(part)), bootID()
	c.Durable = c.Latest
	if err := writeControl(controlPath(dest), c, true); err != nil {
		t.Fatal(err)
	}
}

// TestReview7ResumeBlamesCompletingSource: a resumed Metalink download
// whose part file holds half a piece (bad bytes an earlier run got from
// some mirror) must not blame the good mirror that completes the piece.
// queueWritten leaves p.from empty for the half piece, so badPiece sees
// one culprit, the completing mirror, counts a bad piece against it and
// drops it.
func TestReview7ResumeBlamesCompletingSource(t *testing.T) {
	const size, piece = 1 << 20, 256 << 10
	content := r7Pattern(43, size)
	var hashes []string
	for off := 0; off < size; off += piece {
		hashes = append(hashes, r7Hex(content[off:off+piece]))
	}
	g1 := r7Serve(t, "127.0.0.1", &r7Files{files: map[string][]byte{"/f": content}})
	g2 := r7Serve(t, "127.0.0.2", &r7Files{files: map[string][]byte{"/f": content}})
	f := metalink.File{Name: "f", Size: size, Hashes: []metalink.Hash{{Type: "sha-256", Value: r7Hex(content)}},
		Pieces: &metalink.Pieces{Length: piece, Type: "sha-256", Hashes: hashes},
		URLs:   []metalink.URL{{URL: g1 + "/f", Priority: 1}, {URL: g2 + "/f", Priority: 1}}}
	dest := filepath.Join(t.TempDir(), "f")
	part := make([]byte, size)
	for i := range piece / 2 {
		part[i] = content[i] ^ 0xff // what a corrupt mirror sent last time
	}
	r7WritePartial(t, dest, part, &control{Identity: metalinkIdentity(&f), Algorithm: SHA256,
		Latest: progressState{Done: spans{{0, piece / 2}}}})

	res, err := r7Client(t).Get(context.Background(), Request{Metalink: &f, Path: dest})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != piece/2 {
		t.Fatalf("resumed from %d, want %d: the scenario did not happen", res.ResumedFrom, piece/2)
	}
	for _, s := range res.Sources {
		if s.BadPieces != 0 || s.Dropped != "" {
			t.Errorf("good mirror blamed for the earlier run's bytes: %+v", s)
		}
	}
}

// TestReview7CompleteResumeNeedsNoConnection: a partial download that
// already holds every byte (a run killed while verifying) is committed
// without a request, as before the sources change. fill now starts its
// workers anyway and the lead one must get a connection slot to the host:
// with the host busy it fails with ErrNoConnection.
func TestReview7CompleteResumeNeedsNoConnection(t *testing.T) {
	const size = 256 << 10
	content := r7Pattern(45, size)
	release := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	srv := &r7Files{files: map[string][]byte{"/f": content, "/busy": content}, before: func(r *http.Request) {
		if r.URL.Path == "/busy" {
			once.Do(func() { close(entered) })
			<-release
		}
	}}
	u := r7Serve(t, "127.0.0.1", srv)
	c := r7Client(t, WithHostConnections(1), WithConnectionRequestTimeout(300*time.Millisecond))
	dir := t.TempDir()
	dest := filepath.Join(dir, "f")
	r7WritePartial(t, dest, content, &control{ETag: `"f"`, Algorithm: SHA256,
		Latest: progressState{Done: spans{{0, size}}}})

	// Another download holds the host's only slot.
	bctx, cancel := context.WithCancel(context.Background())
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		c.Get(bctx, Request{URL: u + "/busy", Path: filepath.Join(dir, "busy")})
	}()
	defer func() { close(release); cancel(); <-busy }()
	<-entered

	res, err := c.Get(context.Background(), Request{URL: u + "/f", Path: dest})
	if err != nil {
		t.Fatalf("Get of a complete partial download: %v; want it committed with no request", err)
	}
	if got, _ := os.ReadFile(dest); r7Hex(got) != r7Hex(content) || res.ResumedFrom != size {
		t.Errorf("resumed from %d, file sha256:%s", res.ResumedFrom, r7Hex(got))
	}
	if n := srv.count("/f"); n != 0 {
		t.Errorf("%d requests for a file already complete", n)
	}
}
