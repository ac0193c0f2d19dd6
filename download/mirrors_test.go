package download_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/metalink"
	"github.com/directdl/directdl/internal/faultserver"
)

// mirrorServer is a mirror on one loopback address: it serves content
// with ranges, logs every request, and misbehaves as asked.
type mirrorServer struct {
	t       testing.TB
	srv     *http.Server
	base    string
	content io.ReaderAt
	size    int64
	etag    string
	// corruptPiece, when positive, is a piece length: the first piece
	// that the mirror's first request starts with is served with every
	// byte flipped, in this and every later response.
	corruptPiece int64
	// dieOn, when positive, makes the mirror die during its request of
	// that number (from 1), halfway through the body: the connection is
	// cut and the mirror refuses connections from then on.
	dieOn int
	// header is added to every response.
	header http.Header

	mu      sync.Mutex
	log     []mirrorRequest
	bad     [2]int64 // the corrupted range, when set
	badSet  bool
	started int
	dead    bool
}

type mirrorRequest struct {
	from, to int64 // the range asked for (to inclusive); -1 for none
	sent     int64
	status   int
}

func startMirror(t testing.TB, host string, content io.ReaderAt, size int64, configure func(*mirrorServer)) *mirrorServer {
	t.Helper()
	m := &mirrorServer{t: t, content: content, size: size, etag: `"mirror-content"`}
	if configure != nil {
		configure(m)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	m.base = "http://" + ln.Addr().String()
	m.srv = &http.Server{Handler: m, ErrorLog: nil}
	go m.srv.Serve(ln)
	t.Cleanup(func() { m.srv.Close() })
	return m
}

func (m *mirrorServer) URL(path string) string { return m.base + path }

func (m *mirrorServer) requests() []mirrorRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]mirrorRequest(nil), m.log...)
}

func (m *mirrorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range m.header {
		w.Header()[k] = v
	}
	w.Header().Set("ETag", m.etag)
	w.Header().Set("Accept-Ranges", "bytes")
	from, to := int64(-1), int64(-1)
	if rg := r.Header.Get("Range"); rg != "" {
		a, b, _ := strings.Cut(strings.TrimPrefix(rg, "bytes="), "-")
		from, _ = strconv.ParseInt(a, 10, 64)
		to = m.size - 1
		if b != "" {
			to, _ = strconv.ParseInt(b, 10, 64)
		}
		to = min(to, m.size-1)
	}
	m.mu.Lock()
	m.started++
	n := m.started
	if m.corruptPiece > 0 && !m.badSet {
		start := max(from, 0) / m.corruptPiece * m.corruptPiece
		m.bad, m.badSet = [2]int64{start, min(start+m.corruptPiece, m.size)}, true
	}
	bad, badSet := m.bad, m.badSet
	m.mu.Unlock()
	status := http.StatusOK
	start, end := int64(0), m.size
	if from >= 0 {
		status, start, end = http.StatusPartialContent, from, to+1
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, m.size))
	}
	w.Header().Set("Content-Length", strconv.FormatInt(end-start, 10))
	w.WriteHeader(status)
	rec := mirrorRequest{from: from, to: to, status: status}
	defer func() {
		m.mu.Lock()
		m.log = append(m.log, rec)
		m.mu.Unlock()
	}()
	die := m.dieOn > 0 && n == m.dieOn
	stopAt := end
	if die {
		stopAt = start + (end-start)/2
	}
	buf := make([]byte, 32<<10)
	for off := start; off < stopAt; {
		k := min(int64(len(buf)), stopAt-off)
		m.content.ReadAt(buf[:k], off)
		if badSet {
			for i := range k {
				if p := off + i; p >= bad[0] && p < bad[1] {
					buf[i] ^= 0xff
				}
			}
		}
		if _, err := w.Write(buf[:k]); err != nil {
			return
		}
		rec.sent += k
		off += k
	}
	if die {
		w.(http.Flusher).Flush()
		m.mu.Lock()
		m.dead = true
		m.mu.Unlock()
		go m.srv.Close() // no connection from now on, this one cut
		panic(http.ErrAbortHandler)
	}
}

// pieceHashes returns the sha-256 piece hashes of content.
func pieceHashes(t testing.TB, content io.ReaderAt, size, length int64) []string {
	t.Helper()
	var out []string
	buf := make([]byte, length)
	for off := int64(0); off < size; off += length {
		n := min(length, size-off)
		content.ReadAt(buf[:n], off)
		s := sha256.Sum256(buf[:n])
		out = append(out, hex.EncodeToString(s[:]))
	}
	return out
}

func patternSHA256(t testing.TB, content io.ReaderAt, size int64) string {
	t.Helper()
	h := sha256.New()
	if err := faultserver.Hash(context.Background(), content, size, h); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestMetalinkThreeMirrors is the case: three mirrors, one of
// which serves one corrupt piece and one of which dies halfway. The file
// comes out right, only the bad piece is fetched again, and the reports
// name the culprits.
func TestMetalinkThreeMirrors(t *testing.T) {
	const size, piece = 24 << 20, 1 << 20
	content := faultserver.Pattern(7)
	good := startMirror(t, "127.0.0.1", content, size, nil)
	corrupt := startMirror(t, "127.0.0.2", content, size, func(m *mirrorServer) { m.corruptPiece = piece })
	dying := startMirror(t, "127.0.0.3", content, size, func(m *mirrorServer) { m.dieOn = 2 })
	sum := patternSHA256(t, content, size)
	f := metalink.File{
		Name: "disk.qcow2", Size: size,
		Hashes: []metalink.Hash{{Type: "sha-256", Value: sum}},
		Pieces: &metalink.Pieces{Length: piece, Type: "sha-256", Hashes: pieceHashes(t, content, size, piece)},
		URLs: []metalink.URL{
			{URL: good.URL("/disk.qcow2"), Priority: 1},
			{URL: corrupt.URL("/disk.qcow2"), Priority: 1},
			{URL: dying.URL("/disk.qcow2"), Priority: 1},
		},
	}
	dir := t.TempDir()
	dest := filepath.Join(dir, "disk.qcow2")
	c := newClient(t, download.WithConnections(6))
	res, err := c.Get(context.Background(), download.Request{Metalink: &f, Path: dest})
	if err != nil {
		t.Fatal(err)
	}
	if got := fileSHA256(t, dest); got != "sha256:"+sum || !res.Verified {
		t.Fatalf("file %s (verified %v), want sha256:%s", got, res.Verified, sum)
	}
	assertClean(t, dir, "disk.qcow2")
	if res.PiecesRefetched != 1 {
		t.Errorf("%d pieces fetched again, want 1", res.PiecesRefetched)
	}
	if len(res.Sources) != 3 {
		t.Fatalf("%d sources reported, want 3: %+v", len(res.Sources), res.Sources)
	}
	g, cr, dy := res.Sources[0], res.Sources[1], res.Sources[2]
	if cr.BadPieces != 1 || cr.Dropped != "" {
		t.Errorf("corrupt mirror reported as %+v; want one bad piece, and kept for the rest", cr)
	}
	if g.BadPieces != 0 || g.Dropped != "" || dy.BadPieces != 0 {
		t.Errorf("good mirrors blamed: %+v, %+v", g, dy)
	}
	if dy.Failures == 0 {
		t.Errorf("dying mirror reported no failure: %+v", dy)
	}
	dying.mu.Lock()
	died := dying.dead
	dying.mu.Unlock()
	if !died {
		t.Fatal("the dying mirror never got its second request; the scenario did not happen")
	}

	// Only the bad piece came twice: once, corrupt, from its mirror, then
	// once, whole and alone, from another.
	corrupt.mu.Lock()
	bad := corrupt.bad
	corrupt.mu.Unlock()
	var covering []mirrorRequest
	for _, m := range []*mirrorServer{good, corrupt, dying} {
		for _, r := range m.requests() {
			if r.from < bad[1] && r.to >= bad[0] && r.sent > 0 {
				covering = append(covering, r)
			}
		}
	}
	if len(covering) != 2 {
		t.Fatalf("bytes %d-%d were served %d times, want 2 (the corrupt copy and the repair): %+v", bad[0], bad[1]-1, len(covering), covering)
	}
	var repaired bool
	for _, r := range good.requests() {
		repaired = repaired || (r.from == bad[0] && r.to == bad[1]-1)
	}
	for _, r := range dying.requests() {
		repaired = repaired || (r.from == bad[0] && r.to == bad[1]-1)
	}
	if !repaired {
		t.Errorf("no other mirror was asked for exactly the bad piece %d-%d", bad[0], bad[1]-1)
	}
	// The bytes: the file once, plus the bad piece. Whatever the dying
	// mirror sent before it died was kept.
	var total int64
	for _, s := range res.Sources {
		total += s.Bytes
	}
	if total != res.BytesTransferred {
		t.Errorf("sources account for %d bytes, the result for %d", total, res.BytesTransferred)
	}
	if res.BytesTransferred != size+piece {
		t.Errorf("%d bytes transferred, want %d (the file and the bad piece once more)", res.BytesTransferred, size+piece)
	}
}

// metalinkDoc serves a Metalink document for f at /disk.metalink on a
// faultserver, and returns its URL.
func metalinkDoc(t testing.TB, name string, doc []byte) string {
	t.Helper()
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.Resource{
		Path: "/" + name, Content: strings.NewReader(string(doc)), Size: int64(len(doc)),
		ContentType: metalink.MediaType,
	}))
	return s.URL("/" + name)
}

func TestMetalinkURL(t *testing.T) {
	const size = 6<<20 + 12345
	content := faultserver.Pattern(3)
	m1 := startMirror(t, "127.0.0.1", content, size, nil)
	m2 := startMirror(t, "127.0.0.2", content, size, nil)
	sum := patternSHA256(t, content, size)
	other := faultserver.Pattern(4)
	doc := &metalink.Metalink{Files: []metalink.File{
		{
			Name: "disk.qcow2", Size: size, Hashes: []metalink.Hash{{Type: "sha-256", Value: sum}},
			Pieces: &metalink.Pieces{Length: 256 << 10, Type: "sha-256", Hashes: pieceHashes(t, content, size, 256<<10)},
			URLs:   []metalink.URL{{URL: m1.URL("/d"), Priority: 2}, {URL: m2.URL("/d"), Priority: 1}},
		},
		{
			Name: "other.img", Size: 1 << 20, Hashes: []metalink.Hash{{Type: "sha-256", Value: patternSHA256(t, other, 1<<20)}},
			URLs: []metalink.URL{{URL: m1.URL("/o"), Priority: 1}},
		},
	}}
	b, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	u := metalinkDoc(t, "templates.metalink", b)
	c := newClient(t)
	dir := t.TempDir()

	_, err = c.Get(context.Background(), download.Request{URL: u, Path: filepath.Join(dir, "x")})
	if !errors.Is(err, download.ErrRequest) || !strings.Contains(err.Error(), `"disk.qcow2", "other.img"`) {
		t.Fatalf("two files and none named: %v; want ErrRequest listing the names", err)
	}
	_, err = c.Get(context.Background(), download.Request{URL: u, Path: filepath.Join(dir, "x"), MetalinkFile: "nope"})
	if !errors.Is(err, download.ErrRequest) {
		t.Fatalf("unknown file: %v", err)
	}
	dest := filepath.Join(dir, "disk.qcow2")
	res, err := c.Get(context.Background(), download.Request{URL: u, Path: dest, MetalinkFile: "disk.qcow2"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fileSHA256(t, dest); got != "sha256:"+sum || !res.Verified || res.Digest != got {
		t.Fatalf("file %s, result %+v", got, res)
	}
	if len(res.Sources) != 2 || res.Sources[0].Priority != 1 || res.Sources[1].Priority != 2 || res.Sources[0].Bytes+res.Sources[1].Bytes != size {
		t.Errorf("sources %+v", res.Sources)
	}
	assertClean(t, dir, "disk.qcow2")

	// The request's checksum must agree with the Metalink's.
	_, err = c.Get(context.Background(), download.Request{URL: u, Path: filepath.Join(dir, "y"), MetalinkFile: "disk.qcow2",
		Checksum: "sha256:" + strings.Repeat("0", 64)})
	if !errors.Is(err, download.ErrRequest) || !strings.Contains(err.Error(), "differs from the Metalink") {
		t.Errorf("disagreeing checksum: %v", err)
	}
	assertClean(t, dir, "disk.qcow2")
}

// TestMetalinkHostile: documents that are unsafe or wrong are refused
// before anything is written, and nothing lands outside the destination
// directory.
func TestMetalinkHostile(t *testing.T) {
	const size = 1 << 20
	content := faultserver.Pattern(5)
	m := startMirror(t, "127.0.0.1", content, size, nil)
	sum := patternSHA256(t, content, size)
	file := func(name, url string) string {
		return fmt.Sprintf(`<file name=%q><size>%d</size><hash type="sha-256">%s</hash><url>%s</url></file>`, name, size, sum, url)
	}
	doc := func(files ...string) string {
		return `<?xml version="1.0" encoding="UTF-8"?><metalink xmlns="urn:ietf:params:xml:ns:metalink">` + strings.Join(files, "") + `</metalink>`
	}
	tests := []struct {
		name, doc string
		want      error
	}{
		{"traversal", doc(file("../../escape.img", m.URL("/f"))), metalink.ErrUnsafePath},
		{"absolute", doc(file("/etc/passwd", m.URL("/f"))), metalink.ErrUnsafePath},
		{"entity", `<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>` + doc(file("f.img", m.URL("/f"))), metalink.ErrDoctype},
		{"file mirror", doc(file("f.img", "file:///etc/passwd")), metalink.ErrURL},
		{"credentials", doc(file("f.img", strings.Replace(m.URL("/f"), "http://", "http://u:p@", 1))), metalink.ErrURL},
		{"deep", doc(strings.Repeat("<x:a xmlns:x='urn:x'>", 100) + strings.Repeat("</x:a>", 100)), metalink.ErrTooDeep},
		{"no size", doc(`<file name="f.img"><url>` + m.URL("/f") + `</url></file>`), metalink.ErrInvalid},
		{"not xml", "GIF89a", metalink.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "pool")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			u := metalinkDoc(t, "t.metalink", []byte(tt.doc))
			_, err := newClient(t).Get(context.Background(), download.Request{URL: u, Path: filepath.Join(dir, "f.img")})
			if !errors.Is(err, tt.want) || !errors.Is(err, download.ErrBadResponse) {
				t.Errorf("error %v, want %v and ErrBadResponse", err, tt.want)
			}
			assertClean(t, dir)
			assertClean(t, root, "pool")
		})
	}
	if n := len(m.requests()); n != 0 {
		t.Errorf("the mirror got %d requests for refused documents", n)
	}
}

// TestMetalinkPieceNeverRight: a piece hash no mirror matches fails the
// download with a PieceError after a bounded number of attempts, and
// leaves nothing.
func TestMetalinkPieceNeverRight(t *testing.T) {
	const size, piece = 4 << 20, 512 << 10
	content := faultserver.Pattern(9)
	m1 := startMirror(t, "127.0.0.1", content, size, nil)
	m2 := startMirror(t, "127.0.0.2", content, size, nil)
	hashes := pieceHashes(t, content, size, piece)
	hashes[3] = strings.Repeat("ab", 32)
	f := metalink.File{Name: "f", Size: size,
		Pieces: &metalink.Pieces{Length: piece, Type: "sha-256", Hashes: hashes},
		URLs:   []metalink.URL{{URL: m1.URL("/f")}, {URL: m2.URL("/f")}}}
	dir := t.TempDir()
	_, err := newClient(t).Get(context.Background(), download.Request{Metalink: &f, Path: filepath.Join(dir, "f")})
	var pe *download.PieceError
	if !errors.As(err, &pe) || !errors.Is(err, download.ErrChecksumMismatch) || pe.Index != 3 || pe.Attempts != 5 {
		t.Fatalf("error %v (%+v), want a PieceError for piece 3 after 5 attempts", err, pe)
	}
	assertClean(t, dir)
	var asked int
	for _, m := range []*mirrorServer{m1, m2} {
		for _, r := range m.requests() {
			if r.from < 4*piece && r.to >= 3*piece {
				asked++
			}
		}
	}
	// Five attempts, each asked of one mirror; a mirror dropped for its
	// second bad piece also gives back what it wrote of pieces under
	// way, which may add a request or two covering part of piece 3.
	if asked < 5 || asked > 7 {
		t.Errorf("piece 3 was asked for %d times, want 5 to 7", asked)
	}
}

// TestMetalinkResume: an interrupted Metalink download resumes from what
// it left, checking the pieces it finds.
func TestMetalinkResume(t *testing.T) {
	const size, piece = 16 << 20, 1 << 20
	content := faultserver.Pattern(11)
	m1 := startMirror(t, "127.0.0.1", content, size, nil)
	m2 := startMirror(t, "127.0.0.2", content, size, nil)
	sum := patternSHA256(t, content, size)
	f := metalink.File{Name: "f", Size: size, Hashes: []metalink.Hash{{Type: "sha-256", Value: sum}},
		Pieces: &metalink.Pieces{Length: piece, Type: "sha-256", Hashes: pieceHashes(t, content, size, piece)},
		URLs:   []metalink.URL{{URL: m1.URL("/f")}, {URL: m2.URL("/f")}}}
	dir := t.TempDir()
	dest := filepath.Join(dir, "f")
	opt, ctx := cancelAfter(t, 6<<20)
	if _, err := newClient(t, opt).Get(ctx, download.Request{Metalink: &f, Path: dest}); !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v, want cancelled", err)
	}
	if !leftovers(t, dest) {
		t.Fatal("nothing left to resume")
	}
	res, err := newClient(t).Get(context.Background(), download.Request{Metalink: &f, Path: dest})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom == 0 || res.BytesTransferred >= size || fileSHA256(t, dest) != "sha256:"+sum {
		t.Errorf("resumed from %d, transferred %d, file %s", res.ResumedFrom, res.BytesTransferred, fileSHA256(t, dest))
	}
	// Another Metalink (other hashes) for the same destination does not
	// resume the old bytes.
	opt, ctx = cancelAfter(t, 6<<20)
	newClient(t, opt).Get(ctx, download.Request{Metalink: &f, Path: dest + "2"})
	g := f
	g.Hashes = nil
	g.Pieces = &metalink.Pieces{Length: piece / 2, Type: "sha-256", Hashes: pieceHashes(t, content, size, piece/2)}
	res, err = newClient(t).Get(context.Background(), download.Request{Metalink: &g, Path: dest + "2"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != 0 || fileSHA256(t, dest+"2") != "sha256:"+sum {
		t.Errorf("another Metalink resumed from %d", res.ResumedFrom)
	}
}

// TestLinkDuplicates: a plain HTTP URL whose response names mirrors in
// Link headers and the file's hash in Digest: the download verifies
// against the Digest and fetches from the mirrors too.
func TestLinkDuplicates(t *testing.T) {
	const size = 16 << 20
	content := faultserver.Pattern(13)
	sum := sha256.New()
	faultserver.Hash(context.Background(), content, size, sum)
	digest := sum.Sum(nil)
	d1 := startMirror(t, "127.0.0.2", content, size, nil)
	d2 := startMirror(t, "127.0.0.3", content, size, nil)
	origin := startMirror(t, "127.0.0.1", content, size, func(m *mirrorServer) {
		m.header = http.Header{
			"Link":   {fmt.Sprintf("<%s>; rel=duplicate; pri=1, <%s>; rel=duplicate; pri=2", d1.URL("/f"), d2.URL("/f"))},
			"Digest": {"SHA-256=" + base64.StdEncoding.EncodeToString(digest)},
		}
	})
	for _, tt := range []struct {
		name   string
		opts   []download.Option
		mirror bool
	}{
		{"on", nil, true},
		{"off", []download.Option{download.WithMetalinkHTTP(false)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "f")
			before1, before2 := len(d1.requests()), len(d2.requests())
			res, err := newClient(t, tt.opts...).Get(context.Background(), download.Request{URL: origin.URL("/f"), Path: dest})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verified != tt.mirror || res.Digest != "sha256:"+hex.EncodeToString(digest) {
				t.Errorf("verified %v, digest %s", res.Verified, res.Digest)
			}
			got1, got2 := len(d1.requests())-before1, len(d2.requests())-before2
			if tt.mirror && (len(res.Sources) != 3 || res.Sources[1].Bytes == 0 || res.Sources[2].Bytes == 0 || got1 == 0 || got2 == 0) {
				t.Errorf("mirrors unused: %+v", res.Sources)
			}
			if !tt.mirror && (len(res.Sources) != 1 || got1+got2 != 0) {
				t.Errorf("mirrors used although off: %+v", res.Sources)
			}
			assertClean(t, dir, "f")
		})
	}
}

// TestDigestMismatch: a Digest header that does not match the bytes fails
// the download like a given checksum does.
func TestDigestMismatch(t *testing.T) {
	const size = 1 << 20
	content := faultserver.Pattern(15)
	origin := startMirror(t, "127.0.0.1", content, size, func(m *mirrorServer) {
		m.header = http.Header{"Repr-Digest": {"sha-256=:" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ":"}}
	})
	dir := t.TempDir()
	_, err := newClient(t).Get(context.Background(), download.Request{URL: origin.URL("/f"), Path: filepath.Join(dir, "f")})
	if !errors.Is(err, download.ErrChecksumMismatch) {
		t.Fatalf("error %v, want a checksum mismatch against the Digest", err)
	}
	assertClean(t, dir)
}

// TestMirrorFailover: a mirror that answers 404, one that answers with
// another size and one that stalls are dropped or left, and the good one
// finishes the file.
func TestMirrorFailover(t *testing.T) {
	const size = 8 << 20
	content := faultserver.Pattern(17)
	sum := patternSHA256(t, content, size)
	good := startMirror(t, "127.0.0.1", content, size, nil)
	short := startMirror(t, "127.0.0.2", content, size-1, nil)
	missing := faultserver.StartTest(t, faultserver.WithHosts("127.0.0.3"), faultserver.WithFaults(faultserver.Faults{Status: map[string]int{"/f": 404}}))
	f := metalink.File{Name: "f", Size: size, Hashes: []metalink.Hash{{Type: "sha-256", Value: sum}},
		URLs: []metalink.URL{{URL: missing.URL("/f"), Priority: 1}, {URL: short.URL("/f"), Priority: 1}, {URL: good.URL("/f"), Priority: 5}}}
	dir := t.TempDir()
	res, err := newClient(t, download.WithSocketTimeout(time.Second)).Get(context.Background(), download.Request{Metalink: &f, Path: filepath.Join(dir, "f")})
	if err != nil {
		t.Fatal(err)
	}
	if fileSHA256(t, filepath.Join(dir, "f")) != "sha256:"+sum {
		t.Fatal("wrong content")
	}
	if !strings.Contains(res.Sources[0].Dropped, "404") || !strings.Contains(res.Sources[1].Dropped, fmt.Sprint(size-1)) ||
		res.Sources[2].Dropped != "" || res.Sources[2].Bytes != size {
		t.Errorf("sources %+v", res.Sources)
	}

	// With every mirror bad, the error names each.
	f.URLs = f.URLs[:2]
	_, err = newClient(t).Get(context.Background(), download.Request{Metalink: &f, Path: filepath.Join(dir, "g")})
	if !errors.Is(err, download.ErrNoSource) || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Errorf("error %v, want ErrNoSource naming both mirrors", err)
	}
	assertClean(t, dir, "f")
}
