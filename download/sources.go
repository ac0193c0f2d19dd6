package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/directdl/directdl/download/metalink"
	"github.com/directdl/directdl/download/nfs"
	"github.com/directdl/directdl/internal/netguard"
)

// maxLinkMirrors bounds the mirrors taken from Link headers, and
// maxMirrors those of a Metalink: one bit each in a piece's record of who
// wrote it.
const (
	maxLinkMirrors = 16
	maxMirrors     = 64
)

// ErrNoSource: every source of a download (the mirrors of a Metalink or
// of Link headers) failed or was dropped; the error lists why.
var ErrNoSource = errors.New("download: no usable source left")

// IsMetalinkURL reports whether a URL names a Metalink document by
// CloudStack's rule: its path ends in ".metalink" (or ".meta4", the RFC
// 5854 name), in any case. Get downloads the file such a document
// describes rather than the document.
func IsMetalinkURL(u *url.URL) bool {
	p := strings.ToLower(u.Path)
	return strings.HasSuffix(p, ".metalink") || strings.HasSuffix(p, ".meta4")
}

// setup finds the sources of the download: the requested URL; the mirrors
// of a Metalink (fetched first when the URL names one); or an NFS file.
func (t *transfer) setup(ctx context.Context) error {
	j := t.j
	switch {
	case j.nfs:
		return t.openNFSSource(ctx)
	case j.metalinkURL:
		f, err := t.fetchMetalink(ctx)
		if err != nil {
			return err
		}
		return t.useMetalink(f)
	case j.metalink != nil:
		return t.useMetalink(j.metalink)
	}
	m := &mirror{kind: kindHTTP, u: j.url, cur: j.url, safe: j.safeURL}
	t.mirrors, t.primary = []*mirror{m}, m
	return nil
}

// closeSources unmounts what setup mounted.
func (t *transfer) closeSources() {
	for _, m := range t.mirrors {
		if m.nfs != nil {
			m.nfs.Close()
		}
	}
}

// reopen opens an NFS file again after it changed, to learn its new
// identity; other sources need nothing.
func (t *transfer) reopen(ctx context.Context) error {
	if !t.j.nfs {
		return nil
	}
	t.closeSources()
	old := t.mirrors[0]
	if err := t.openNFSSource(ctx); err != nil {
		return err
	}
	t.mirrors[0].bytes, t.mirrors[0].failures = old.bytes, old.failures
	return nil
}

func (t *transfer) reports() []MirrorReport {
	out := make([]MirrorReport, len(t.mirrors))
	for i, m := range t.mirrors {
		out[i] = m.report()
	}
	return out
}

// openNFSSource mounts and opens the NFS file of the request, with every
// connection through the Client's policy, retrying what may pass.
func (t *transfer) openNFSSource(ctx context.Context) error {
	for attempt := 0; ; {
		err := t.openNFSOnce(ctx)
		if err == nil || nfsPermanent(err) {
			return err
		}
		if attempt, err = t.retry(ctx, err, attempt, false); err != nil {
			return err
		}
	}
}

// nfsPermanent reports NFS failures that another attempt cannot fix.
func nfsPermanent(err error) bool {
	for _, target := range []error{fs.ErrNotExist, fs.ErrPermission, nfs.ErrBadURL, nfs.ErrNotRegular,
		nfs.ErrNotExported, nfs.ErrProtocol, ErrDenied, ErrSizeMismatch} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func (t *transfer) openNFSOnce(ctx context.Context) error {
	cfg := t.c.cfg
	f, err := nfs.Open(ctx, t.j.rawURL, nfs.WithDialer(t.c.dialer),
		nfs.WithTimeouts(cfg.connectTimeout, cfg.socketTimeout), nfs.WithConnections(min(t.j.conns, 16)))
	if err != nil {
		return fmt.Errorf("download: %s: %w", t.j.safeURL, err)
	}
	if t.j.size > 0 && f.Size() != t.j.size {
		f.Close()
		return fmt.Errorf("%w: %s has %d bytes, the request expects %d", ErrSizeMismatch, t.j.safeURL, f.Size(), t.j.size)
	}
	m := &mirror{kind: kindNFS, u: t.j.url, cur: t.j.url, safe: t.j.safeURL, nfs: f}
	t.mirrors = []*mirror{m}
	t.known, t.knownSize, t.size = true, f.Size(), f.Size()
	t.identity = "nfs:" + f.Validators().String()
	return nil
}

// FetchMetalink gets the Metalink document at rawURL (http or https) and
// parses it, with the Client's policy, trust, timeouts and retries, for a
// program that wants to look at it before downloading: to list its files,
// or to name the destination after one (with File.SafeJoin). The document
// must give each file's size; Parse's limits apply. Get on a Metalink URL
// does this itself. Safe for concurrent use.
func (c *Client) FetchMetalink(ctx context.Context, rawURL string) (*metalink.Metalink, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: URL %s: %v", ErrRequest, netguard.RedactString(rawURL), netguard.RedactError(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: URL %s: want an http or https URL with a host", ErrRequest, netguard.Redact(u))
	}
	log := c.cfg.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &transfer{c: c, j: &job{rawURL: rawURL, url: u, safeURL: netguard.Redact(u)}, log: log}
	doc, err := t.fetchMetalinkDoc(ctx)
	return doc, netguard.RedactError(err)
}

// fetchMetalink gets and parses the Metalink document at the request's
// URL and picks the file to download from it.
func (t *transfer) fetchMetalink(ctx context.Context) (*metalink.File, error) {
	doc, err := t.fetchMetalinkDoc(ctx)
	if err != nil {
		return nil, err
	}
	return pickFile(doc, t.j.metalinkFile, t.j.safeURL)
}

func (t *transfer) fetchMetalinkDoc(ctx context.Context) (*metalink.Metalink, error) {
	release, _, err := t.acquire(ctx, t.j.url, true)
	if err != nil {
		return nil, err
	}
	defer release()
	for attempt := 0; ; {
		doc, err := t.fetchMetalinkOnce(ctx)
		if err == nil {
			return doc, nil
		}
		if attempt, err = t.retry(ctx, err, attempt, false); err != nil {
			return nil, err
		}
	}
}

func (t *transfer) fetchMetalinkOnce(ctx context.Context) (*metalink.Metalink, error) {
	pm := &mirror{kind: kindHTTP, u: t.j.url, safe: t.j.safeURL}
	s, err := t.get(ctx, pm, t.j.url, -1, -1)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if s.resp.StatusCode != http.StatusOK {
		return nil, t.statusError(s.resp)
	}
	doc, err := metalink.Parse(idleReader{s, t.c.cfg.socketTimeout}, metalink.RequireSize())
	if err != nil {
		if errors.Is(err, metalink.ErrInvalid) {
			return nil, fmt.Errorf("%w: Metalink document at %s: %w", ErrBadResponse, s.url, err)
		}
		if errors.Is(context.Cause(s.ctx), errStall) {
			return nil, fmt.Errorf("%w: no data from %s for %v", ErrStalled, s.url, t.c.cfg.socketTimeout)
		}
		return nil, err
	}
	return doc, nil
}

// idleReader resets a stream's idle timer as its body is read.
type idleReader struct {
	s       *stream
	timeout time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	n, err := r.s.body.Read(p)
	if n > 0 {
		r.s.idle.Reset(r.timeout)
	}
	return n, err
}

// pickFile chooses the file of doc named name, or its only file.
func pickFile(doc *metalink.Metalink, name, where string) (*metalink.File, error) {
	f, err := doc.Pick(name)
	if err != nil {
		return nil, fmt.Errorf("%w: Metalink document at %s: %w (Request.MetalinkFile)", ErrRequest, where, err)
	}
	return f, nil
}

// useMetalink takes the size, hashes, piece hashes and HTTP mirrors of f.
func (t *transfer) useMetalink(f *metalink.File) error {
	where := t.j.safeURL
	if f.Size < 0 {
		return fmt.Errorf("%w: the Metalink for %s gives no size for %q", ErrRequest, where, f.Name)
	}
	if t.j.size > 0 && f.Size != t.j.size {
		return fmt.Errorf("%w: the Metalink gives %d bytes for %q, the request expects %d", ErrSizeMismatch, f.Size, f.Name, t.j.size)
	}
	if h, ok := f.StrongestHash(); ok {
		sum, err := checksumOf(h)
		if err != nil {
			return fmt.Errorf("%w: the Metalink's %s hash of %q: %w", ErrRequest, h.Type, f.Name, err)
		}
		switch {
		case !t.hasSum:
			t.sum, t.hasSum = sum, true
		default:
			for _, h := range f.Hashes {
				if s, err := checksumOf(h); err == nil && s.Algorithm() == t.sum.Algorithm() && s != t.sum {
					return fmt.Errorf("%w: the request's checksum %s differs from the Metalink's %s for %q", ErrRequest, t.sum, s, f.Name)
				}
			}
		}
	}
	if ps, why := newPieceSet(f.Pieces, f.Size); ps != nil {
		t.pieces = ps
	} else if why != "" {
		t.log.Warn("piece hashes not used", slog.String("reason", why))
	}
	for _, u := range f.URLsFor("http", "https") {
		if len(t.mirrors) == maxMirrors {
			t.log.Warn("Metalink lists more mirrors than are used; the best by priority are", slog.Int("used", maxMirrors))
			break
		}
		pu, err := url.Parse(u.URL)
		if err != nil {
			continue // Validate parsed it already
		}
		t.mirrors = append(t.mirrors, &mirror{idx: len(t.mirrors), kind: kindHTTP, u: pu, cur: pu, safe: netguard.Redact(pu), priority: u.Priority})
	}
	if len(t.mirrors) == 0 {
		return fmt.Errorf("%w: the Metalink lists no http or https mirror for %q", ErrRequest, f.Name)
	}
	t.known, t.knownSize, t.size = true, f.Size, f.Size
	t.identity = metalinkIdentity(f)
	return nil
}

// metalinkIdentity names the content a Metalink file describes by its
// size and hashes, or is empty when it has no hash (its partial downloads
// then cannot be resumed: nothing tells the content is the same).
func metalinkIdentity(f *metalink.File) string {
	if len(f.Hashes) == 0 && f.Pieces == nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", f.Size)
	for _, x := range f.Hashes {
		fmt.Fprintf(h, "%s=%s\n", x.Type, x.Value)
	}
	if p := f.Pieces; p != nil {
		fmt.Fprintf(h, "pieces %s %d\n", p.Type, p.Length)
		for _, x := range p.Hashes {
			fmt.Fprintf(h, "%s\n", x)
		}
	}
	return "metalink:" + hex.EncodeToString(h.Sum(nil))
}

// metalinkKey identifies everything of f a download uses: its identity
// and its mirrors.
func metalinkKey(f *metalink.File) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %s\n", f.Name, metalinkIdentity(f))
	for _, u := range f.URLs {
		fmt.Fprintf(h, "%d %s\n", u.Priority, u.URL)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checksumOf converts a Metalink hash.
func checksumOf(h metalink.Hash) (Checksum, error) {
	info, ok := lookup(h.Type)
	if !ok {
		return Checksum{}, ErrChecksumAlgorithm
	}
	b, err := hex.DecodeString(h.Value)
	if err != nil {
		return Checksum{}, ErrChecksumHex
	}
	return NewChecksum(info.alg, b)
}

// metalinkHTTP reads the RFC 6249 headers of the first response of a
// plain HTTP download, once: a Digest becomes the checksum when the
// request has none, and Link rel=duplicate mirrors join the download, one
// connection each, when the result is verified by a checksum (the mirrors'
// bytes have nothing else vouching for them).
func (t *transfer) metalinkHTTP(resp *http.Response) {
	if !t.c.cfg.metalinkHTTP || len(t.mirrors) > 1 {
		return
	}
	hashes, herr := metalink.ParseDigest(resp.Header)
	if herr != nil {
		t.log.Debug("Digest header partly unusable", slog.String("error", herr.Error()))
	}
	var best Checksum
	for _, h := range hashes {
		if s, err := checksumOf(h); err == nil && (best.IsZero() || strength(s.Algorithm()) > strength(best.Algorithm())) {
			best = s
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case best.IsZero():
	case !t.hasSum:
		t.sum, t.hasSum, t.sumFromDigest = best, true, true
		if t.algorithm().Algorithm() != infoOfHash(t.hash) {
			t.hash = best.NewHash()
			t.hashed.Store(0)
			t.hashSnap.Store(nil)
		}
		t.log.Info("using the server's Digest as the checksum", slog.String("checksum", best.String()))
	case best.Algorithm() == t.sum.Algorithm() && best != t.sum:
		t.log.Warn("the server's Digest differs from the expected checksum", slog.String("digest", best.String()),
			slog.String("expected", t.sum.String()))
	}
	if !t.hasSum {
		return
	}
	links, lerr := metalink.ParseLinkHeaders(resp.Header, resp.Request.URL)
	if lerr != nil {
		t.log.Debug("Link header partly unusable", slog.String("error", lerr.Error()))
	}
	for _, l := range links {
		if len(t.mirrors) > maxLinkMirrors {
			break
		}
		pu, err := url.Parse(l.URL)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.String() == t.j.url.String() || pu.String() == t.primary.cur.String() {
			continue
		}
		if pu.Scheme == "http" && t.primary.cur.Scheme == "https" {
			continue // a downgrade, as a redirect from HTTPS to HTTP would be
		}
		t.mirrors = append(t.mirrors, &mirror{idx: len(t.mirrors), kind: kindHTTP, u: pu, cur: pu, safe: netguard.Redact(pu), priority: l.Priority, link: true})
		t.log.Info("server names a mirror", slog.String("mirror", netguard.Redact(pu)))
	}
}

// strength orders the checksum algorithms from weakest to strongest.
func strength(a Algorithm) int {
	for i, x := range algorithms {
		if x.alg == a {
			return i
		}
	}
	return -1
}

// infoOfHash tells which algorithm the hash h computes, by its size and
// block size, which tell the six apart.
func infoOfHash(h interface {
	Size() int
	BlockSize() int
}) Algorithm {
	for _, a := range algorithms {
		n := a.new()
		if n.Size() == h.Size() && n.BlockSize() == h.BlockSize() {
			return a.alg
		}
	}
	return ""
}

// openMirror requests [from, to] from a mirror (not the requested URL) and
// checks the answer is that range of a file of the right size. A mirror
// that answers wrongly is dropped; its validators are learned from its
// first answer and must not change.
func (t *transfer) openMirror(ctx context.Context, m *mirror, u *url.URL, from, to int64) (*stream, error) {
	s, err := t.get(ctx, m, u, from, to)
	if err != nil {
		return nil, err
	}
	resp := s.resp
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK:
		s.close()
		return nil, fmt.Errorf("%w: %s answered a range request with the whole file", ErrBadResponse, s.url)
	case http.StatusRequestedRangeNotSatisfiable:
		s.close()
		return nil, fmt.Errorf("%w: %s does not have bytes %d-%d: its file is shorter", ErrBadResponse, s.url, from, to)
	default:
		s.close()
		return nil, t.statusError(resp)
	}
	cr, err := parseContentRange(resp.Header.Get("Content-Range"))
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil || cr.start != from || cr.end != to || (resp.ContentLength >= 0 && resp.ContentLength != to-from+1) {
		s.close()
		return nil, fmt.Errorf("%w: asked %s for bytes %d-%d and got Content-Range %q", ErrBadResponse, s.url, from, to, resp.Header.Get("Content-Range"))
	}
	if cr.total != t.size {
		s.close()
		return nil, fmt.Errorf("%w: %s has %d bytes, not %d", ErrBadResponse, s.url, cr.total, t.size)
	}
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if m.known && (etag != m.etag || lm != m.lastModified) {
		s.close()
		return nil, fmt.Errorf("%w: %s changed its file during the download (ETag %q, was %q)", ErrBadResponse, s.url, etag, m.etag)
	}
	m.etag, m.lastModified, m.known = etag, lm, true
	if hashes, _ := metalink.ParseDigest(resp.Header); t.hasSum {
		for _, h := range hashes {
			if c, err := checksumOf(h); err == nil && c.Algorithm() == t.sum.Algorithm() && c != t.sum {
				s.close()
				return nil, fmt.Errorf("%w: %s announces another file (Digest %s, expected %s)", ErrBadResponse, s.url, c, t.sum)
			}
		}
	}
	m.cur = resp.Request.URL
	s.end = to + 1
	return s, nil
}

// openNFS opens a stream of [from, end) of an NFS file.
func (t *transfer) openNFS(ctx context.Context, m *mirror, from, end int64) (*stream, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	idle := time.AfterFunc(t.c.cfg.socketTimeout, func() { cancel(errStall) })
	r := &nfsReader{ctx: rctx, f: m.nfs, off: from, end: end}
	return &stream{body: r, ctx: rctx, cancel: cancel, idle: idle, url: m.safe, end: end, m: m}, nil
}

// nfsReader reads a range of an NFS file in order.
type nfsReader struct {
	ctx      context.Context
	f        *nfs.File
	off, end int64
}

func (r *nfsReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.end-r.off)]
	n, err := r.f.ReadAtContext(r.ctx, p, r.off)
	r.off += int64(n)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, nfs.ErrChanged), errors.Is(err, nfs.ErrStale):
		return n, fmt.Errorf("%w: %w", errRestart, err)
	case err == io.EOF:
		// A bare EOF is the file's end (io.ReaderAt); a connection that
		// closed is an *nfs.Error wrapping EOF, retried below.
		return n, fmt.Errorf("%w: the file is shorter than when it was opened: %w", errRestart, io.ErrUnexpectedEOF)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The client's own idle timer fired before the engine's.
		return n, fmt.Errorf("%w: %w", ErrStalled, err)
	case errors.Is(err, nfs.ErrProtocol):
		return n, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return n, err
}

func (r *nfsReader) Close() error { return nil }
