package download

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/directdl/directdl/internal/atomicfile"
	"github.com/directdl/directdl/internal/netguard"
)

const (
	// maxRestarts bounds how often a download starts again from zero
	// because the remote file changed under it.
	maxRestarts = 3
	// bufSize is each connection's read buffer.
	bufSize = 256 << 10
	// hashChunk is how much the hash cursor reads back at a time.
	hashChunk = 1 << 20
	// checkpointEvery is how much a connection writes before it asks for
	// a control file update, and checkpointGap the least time between two
	// updates: a kill loses about this much per connection, or what
	// arrives in checkpointGap when that is more.
	checkpointEvery = 256 << 10
	checkpointGap   = 20 * time.Millisecond
	// durableEvery is how often the part file is fsynced and a durable
	// checkpoint written.
	durableEvery = 5 * time.Second
	// writebackChunk is how much the hash cursor passes before it starts
	// the writeback of what it passed.
	writebackChunk = 16 << 20
	// maxRequest bounds one ranged request, so that a connection does not
	// run far ahead of the hash cursor.
	maxRequest = 16 << 20
)

var (
	// errRestart: the remote changed; start again from zero.
	errRestart = errors.New("remote file changed")
	// errNoRanges: ranged responses cannot be trusted; go on in one
	// stream, keeping what was written.
	errNoRanges = errors.New("server does not serve ranges reliably")
	// errStall is the cause of a request cancelled by the idle timer.
	errStall = errors.New("stall")
)

// transfer is the state of one download to one destination.
type transfer struct {
	c     *Client
	j     *job
	log   *slog.Logger
	start time.Time

	part              *os.File
	partPath, ctlPath string
	boot              string

	mu           sync.Mutex
	size         int64 // -1 while unknown
	etag         string
	lastModified string
	ranges       bool // serve ranges (false after a fallback)
	noRanges     bool // never ask for ranges again
	done         spans
	segs         []*segment // requests in flight
	pending      spans      // missing and not requested yet
	active       int
	maxActive    int
	durable      progressState
	redirects    []string
	resumedFrom  int64
	restarts     int
	// mirrors are the sources; primary is the requested HTTP URL among
	// them (nil for a Metalink or NFS download), whose validators are
	// etag and lastModified above and whose ranges go to primary.cur.
	mirrors []*mirror
	primary *mirror
	// known: the size and identity come from the source before any
	// request (a Metalink, an NFS file); identity then stands in for the
	// validators when resuming.
	known     bool
	knownSize int64
	identity  string
	// sum is the checksum to verify: the request's, or one a Metalink or
	// a Digest header gave.
	sum           Checksum
	hasSum        bool
	sumFromDigest bool // sum came from the first response's Digest
	pieces        *pieceSet

	ckptMu      sync.Mutex // one control file write at a time
	hash        hash.Hash
	hashed      atomic.Int64
	hashSnap    atomic.Pointer[progressState] // Hashed and HashState only
	transferred atomic.Int64

	wakeHash  chan struct{}
	wakeCkpt  chan struct{}
	wakePiece chan struct{}
	wakeRound chan struct{}
}

// segment is a range [pos, end) of the file that one connection fills,
// with one request (or more, after failures). pos moves as the owner
// writes; end moves down when another connection takes the rest.
type segment struct {
	pos, end int64
	// reqFrom and reqAt are where and when the request in flight started,
	// to estimate how long its owner still needs.
	reqFrom int64
	reqAt   time.Time
	// redo, when not nil, marks a bad piece fetched again: what is left
	// of it must not go to a source that served the piece bad.
	redo *redoPiece
}

func (c *Client) run(ctx context.Context, j *job) (*Result, error) {
	log := c.cfg.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &transfer{
		c: c, j: j, log: log.With(netguard.StringAttr("url", j.rawURL), slog.String("path", j.path)),
		start: time.Now(), partPath: partPath(j.path), ctlPath: controlPath(j.path),
		boot: bootID(), size: -1, knownSize: -1, sum: j.sum, hasSum: j.hasSum,
		wakeHash: make(chan struct{}, 1), wakeCkpt: make(chan struct{}, 1),
		wakePiece: make(chan struct{}, 1), wakeRound: make(chan struct{}, 1),
	}
	if err := t.setup(ctx); err != nil {
		err = netguard.RedactError(err)
		t.log.Warn("download failed", slog.String("error", err.Error()))
		if t.c.cfg.progress != nil {
			t.c.cfg.progress(Progress{URL: j.safeURL, Path: j.path, Total: -1, Final: true, Err: err})
		}
		return nil, err
	}
	defer t.closeSources()
	if err := t.open(); err != nil {
		return nil, err
	}
	defer t.part.Close()
	res, err := t.download(ctx)
	if err == nil {
		return res, nil
	}
	var se *sourcesError
	if t.doneBytes() == 0 || (useless(err) && !errors.As(err, &se)) {
		// When every source failed, one of them answering wrongly does
		// not make what the others sent useless.
		t.removeLeftovers()
	} else if t.size >= 0 {
		t.checkpoint(true)
	}
	err = netguard.RedactError(err)
	t.log.Warn("download failed", slog.String("error", err.Error()))
	if t.c.cfg.progress != nil {
		t.c.cfg.progress(Progress{URL: j.safeURL, Path: j.path, Done: t.doneBytes(), Total: t.size, Final: true, Err: err})
	}
	return nil, err
}

// open locks the part file and loads what an earlier download left.
func (t *transfer) open() error {
	f, err := openLocked(t.partPath)
	if err != nil {
		return err
	}
	t.part = f
	t.hash = t.algorithm().NewHash()
	if !t.c.cfg.resume {
		return t.reset()
	}
	ctl, err := readControl(t.ctlPath)
	if err == nil && ctl != nil {
		if fi, serr := f.Stat(); serr != nil || fi.Size() != ctl.Size {
			err = errors.New("part file does not have the recorded size")
		}
	}
	switch {
	case err != nil || ctl == nil:
	case t.known && (ctl.Identity == "" || ctl.Identity != t.identity || ctl.Size != t.knownSize):
		err = errors.New("the source is not the one the partial download came from")
	case !t.known && (ctl.ETag == "" || strings.HasPrefix(ctl.ETag, "W/")) && ctl.LastModified == "":
		// Nothing tells whether the remote file is still the one these
		// bytes came from.
		err = errors.New("the server gave no validator (strong ETag or Last-Modified)")
	}
	if err != nil || ctl == nil {
		if err != nil {
			t.log.Warn("starting afresh: cannot resume", slog.String("error", err.Error()))
		}
		return t.reset()
	}
	st := ctl.Latest
	if ctl.BootID == "" || ctl.BootID != t.boot {
		st = ctl.Durable // the page cache may have been lost since
	}
	if ctl.Algorithm != t.algorithm().Algorithm() {
		// Another checksum this time: the bytes are good, the hash state
		// is not; hash them again.
		st.Hashed, st.HashState = 0, nil
		ctl.Durable.Hashed, ctl.Durable.HashState = 0, nil
	}
	if err := unmarshalHash(t.hash, st.HashState); err != nil {
		return t.reset()
	}
	t.size, t.etag, t.lastModified = ctl.Size, ctl.ETag, ctl.LastModified
	t.done, t.durable = st.Done, ctl.Durable
	t.hashed.Store(st.Hashed)
	t.hashSnap.Store(&progressState{Hashed: st.Hashed, HashState: st.HashState})
	t.resumedFrom = st.Done.total()
	t.log.Info("resuming", slog.Int64("done", t.resumedFrom), slog.Int64("size", t.size))
	return nil
}

// openLocked opens (creating it if needed) and locks the part file at path,
// and makes sure the locked file is still the one at path: another process
// may have renamed it into place, or removed it, between the open and the
// lock.
func openLocked(path string) (*os.File, error) {
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("download: creating %s: %w", path, err)
		}
		ok, err := lockFile(f)
		if err != nil || !ok {
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("download: locking %s: %w", path, err)
			}
			return nil, fmt.Errorf("%w: %s is locked by another process", ErrBusy, path)
		}
		if sameFile(f, path) == nil {
			return f, nil
		}
		f.Close() // it moved under us; open what is there now
	}
	return nil, fmt.Errorf("%w: %s keeps being replaced", ErrBusy, path)
}

// sameFile reports an error unless f is the file at path.
func sameFile(f *os.File, path string) error {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		return fmt.Errorf("%w: %s was removed or replaced during the download", ErrBusy, path)
	}
	return nil
}

// algorithm is the checksum's algorithm, or SHA-256 when none is given.
func (t *transfer) algorithm() Checksum {
	if t.hasSum {
		return t.sum
	}
	return Checksum{alg: SHA256}
}

// reset forgets everything fetched: the remote is new, or unknown.
func (t *transfer) reset() error {
	t.mu.Lock()
	t.size, t.etag, t.lastModified = t.knownSize, "", ""
	t.done, t.durable, t.segs, t.pending = nil, progressState{}, nil, nil
	t.resumedFrom = 0
	t.mu.Unlock()
	t.hash.Reset()
	t.hashed.Store(0)
	t.hashSnap.Store(nil)
	os.Remove(t.ctlPath)
	if err := t.part.Truncate(0); err != nil {
		return fmt.Errorf("download: truncating %s: %w", t.partPath, err)
	}
	return nil
}

func (t *transfer) removeLeftovers() {
	os.Remove(t.ctlPath)
	os.Remove(t.partPath)
}

func (t *transfer) doneBytes() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done.total()
}

// download runs until the file is complete and committed, starting again
// when the remote changes and falling back to one stream when ranges fail.
func (t *transfer) download(ctx context.Context) (*Result, error) {
	for {
		var s *stream
		var err error
		if t.known {
			err = t.prepareFile(t.knownSize)
		} else {
			s, err = t.first(ctx)
		}
		if err == nil {
			err = t.fill(ctx, s)
		}
		switch {
		case err == nil:
			return t.commit()
		case errors.Is(err, errRestart):
			t.restarts++
			if t.restarts > maxRestarts {
				return nil, fmt.Errorf("%w: %s changed %d times during the download", ErrRemoteChanged, t.j.safeURL, t.restarts)
			}
			t.log.Warn("remote file changed; starting again from zero", slog.Int("restart", t.restarts))
			if t.sumFromDigest {
				// The Digest and the Link mirrors described the old
				// version; the new one's first response tells anew.
				t.sum, t.hasSum, t.sumFromDigest = t.j.sum, t.j.hasSum, false
				t.hash = t.algorithm().NewHash()
				t.mirrors = t.mirrors[:1]
			}
			if err := t.reopen(ctx); err != nil {
				return nil, err
			}
			if err := t.reset(); err != nil {
				return nil, err
			}
		case errors.Is(err, errNoRanges):
			t.mu.Lock()
			again := t.noRanges
			t.noRanges = true
			t.mu.Unlock()
			if again {
				// Even one stream without Range got a partial answer.
				return nil, fmt.Errorf("%w: %s answers a request without Range with a partial response", ErrBadResponse, t.j.safeURL)
			}
			t.log.Warn("server's ranges cannot be trusted; going on in one stream")
		default:
			return nil, err
		}
	}
}

// stream is one response (or NFS read) being read.
type stream struct {
	resp    *http.Response // nil for NFS
	body    io.ReadCloser
	ctx     context.Context // cancelled with errStall by the idle timer
	cancel  context.CancelCauseFunc
	idle    *time.Timer
	release func()
	url     string // redacted
	end     int64  // the body holds the file's bytes up to here (exclusive)
	m       *mirror
}

func (s *stream) close() {
	if s == nil {
		return
	}
	s.idle.Stop()
	s.body.Close()
	s.cancel(nil)
	if s.release != nil {
		s.release()
	}
}

// request sends a GET for [from, to] (to < 0: to the end; from < 0: no
// Range) to m with the idle timer running, and returns the response
// unchecked. A range request carries If-Range with m's validators.
func (t *transfer) request(ctx context.Context, m *mirror, u *url.URL, from, to int64, chain *netguard.Chain) (*stream, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	if chain != nil {
		rctx = netguard.WithChain(rctx, chain)
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel(nil)
		return nil, fmt.Errorf("%w: %v", ErrRequest, err)
	}
	req.Header.Set("User-Agent", t.c.cfg.userAgent)
	req.Header.Set("Accept-Encoding", "identity")
	if from >= 0 {
		if to >= 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
		} else {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
		}
		t.mu.Lock()
		etag, lm := t.etag, t.lastModified
		if m != t.primary {
			etag, lm = m.etag, m.lastModified
		}
		t.mu.Unlock()
		switch {
		case etag != "" && !strings.HasPrefix(etag, "W/"):
			req.Header.Set("If-Range", etag)
		case lm != "":
			req.Header.Set("If-Range", lm)
		}
	}
	timeout := t.c.cfg.socketTimeout
	safe := netguard.Redact(u)
	t.log.Debug("request", slog.String("url", safe), slog.String("range", req.Header.Get("Range")))
	// Connecting is bounded by the connect timeout and the wait for
	// headers by the transport's ResponseHeaderTimeout; the idle timer
	// starts with the body.
	resp, err := t.c.http.Do(req)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	idle := time.AfterFunc(timeout, func() { cancel(errStall) })
	return &stream{resp: resp, body: resp.Body, ctx: rctx, cancel: cancel, idle: idle, url: safe, m: m}, nil
}

// acquire takes a connection slot for u's host, waiting at most the
// connection request timeout. first says it is a download's first
// connection, which extra connections of other downloads make way for.
func (t *transfer) acquire(ctx context.Context, u *url.URL, first bool) (func(), *hostSlots, error) {
	hs, host := t.c.slots(u)
	wctx, cancel := context.WithTimeout(ctx, t.c.cfg.requestTimeout)
	defer cancel()
	if first {
		hs.firstWaiting.Add(1)
	}
	err := hs.sem.Acquire(wctx, 1)
	if first {
		hs.firstWaiting.Add(-1)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, context.Cause(ctx)
		}
		return nil, nil, fmt.Errorf("%w: all %d connections to %s stayed busy for %v; raise the per-host limit or the connection request timeout",
			ErrNoConnection, t.c.cfg.hostConnections, host, t.c.cfg.requestTimeout)
	}
	var once sync.Once
	return func() { once.Do(func() { hs.sem.Release(1) }) }, hs, nil
}

// first sends the first request of an attempt: from the first missing byte
// to the end. Its response tells the size, the validators and whether the
// server serves ranges, and its body fills the first gap. It returns nil
// when nothing is missing.
func (t *transfer) first(ctx context.Context) (*stream, error) {
	t.mu.Lock()
	from, to := int64(0), 4*t.c.cfg.minSplit-1
	if t.size >= 0 {
		g := t.done.gaps(t.size)
		if len(g) == 0 {
			t.mu.Unlock()
			return nil, nil
		}
		from, to = g[0].Start, min(g[0].End, g[0].Start+4*t.c.cfg.minSplit)-1
	}
	useRange := !t.noRanges
	resuming := len(t.done) > 0
	t.mu.Unlock()
	if !useRange {
		from = -1
	}
	release, _, err := t.acquire(ctx, t.j.url, true)
	if err != nil {
		return nil, err
	}
	attempt := 0
	for {
		s, err := t.firstOnce(ctx, from, to, resuming)
		if err == nil {
			if s == nil {
				release()
				return nil, nil
			}
			s.release = release
			return s, nil
		}
		attempt, err = t.retry(ctx, err, attempt, false)
		if err != nil {
			release()
			return nil, err
		}
	}
}

func (t *transfer) firstOnce(ctx context.Context, from, to int64, resuming bool) (*stream, error) {
	chain := &netguard.Chain{}
	s, err := t.request(ctx, t.primary, t.j.url, from, to, chain)
	if err != nil {
		return nil, err
	}
	resp := s.resp
	if err := t.checkCommon(s); err != nil {
		s.close()
		return nil, err
	}
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	t.mu.Lock()
	changed := (t.etag != "" && etag != t.etag) || (t.lastModified != "" && lm != t.lastModified)
	t.mu.Unlock()
	size := int64(-1)
	ranges := false
	switch resp.StatusCode {
	case http.StatusPartialContent:
		cr, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || cr.start != from || cr.total < 0 || cr.end != min(to, cr.total-1) ||
			(resp.ContentLength >= 0 && resp.ContentLength != cr.end-cr.start+1) {
			s.close()
			return nil, fmt.Errorf("%w: asked %s for bytes %d-%d and got Content-Range %q: %w",
				ErrBadResponse, s.url, from, to, resp.Header.Get("Content-Range"), errNoRanges)
		}
		size, ranges = cr.total, true
		s.end = cr.end + 1
		t.mu.Lock()
		changed = changed || (t.size >= 0 && t.size != size)
		t.mu.Unlock()
		if changed {
			s.close()
			return nil, errRestart
		}
	case http.StatusOK:
		size = resp.ContentLength
		s.end = size
		if size < 0 {
			s.end = 1<<63 - 1
		}
		if changed && from >= 0 && resp.Header.Get("Accept-Ranges") == "bytes" {
			// The If-Range failed: a fresh start gets ranges again.
			s.close()
			return nil, errRestart
		}
		weak := etag == "" && lm == "" || strings.HasPrefix(etag, "W/")
		if resuming && (changed || weak) {
			// The whole file comes anyway; keep nothing of the old one.
			if err := t.reset(); err != nil {
				s.close()
				return nil, err
			}
		}
		t.mu.Lock()
		if t.size >= 0 && size != t.size {
			t.mu.Unlock()
			s.close()
			return nil, errRestart
		}
		t.noRanges = true
		t.mu.Unlock()
	case http.StatusRequestedRangeNotSatisfiable:
		cr, err := parseContentRange(resp.Header.Get("Content-Range"))
		s.close()
		if err == nil && cr.start < 0 && from == 0 && cr.total == 0 && !resuming {
			size = 0 // "bytes */0": the file is empty
			break
		}
		if err != nil {
			// No usable length: learn it from a request without Range.
			return nil, fmt.Errorf("%w: %s answered 416 without a Content-Range: %w", ErrBadResponse, s.url, errNoRanges)
		}
		return nil, errRestart
	default:
		s.close()
		return nil, t.statusError(resp)
	}
	if t.j.size > 0 && size >= 0 && size != t.j.size {
		s.close()
		return nil, fmt.Errorf("%w: %s has %d bytes, the request expects %d", ErrSizeMismatch, s.url, size, t.j.size)
	}
	t.mu.Lock()
	t.etag, t.lastModified, t.ranges = etag, lm, ranges
	t.primary.cur = resp.Request.URL
	if t.redirects == nil {
		t.redirects = chain.URLs()
	}
	sizeWas := t.size
	t.size = size
	t.mu.Unlock()
	if size >= 0 && sizeWas < 0 {
		if err := t.prepareFile(size); err != nil {
			s.close()
			return nil, err
		}
	}
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		return nil, nil
	}
	if ranges {
		t.metalinkHTTP(resp)
	}
	return s, nil
}

// get is request followed by checkCommon.
func (t *transfer) get(ctx context.Context, m *mirror, u *url.URL, from, to int64) (*stream, error) {
	s, err := t.request(ctx, m, u, from, to, nil)
	if err != nil {
		return nil, err
	}
	if err := t.checkCommon(s); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// checkCommon refuses responses whose bytes are not the file's bytes.
func (t *transfer) checkCommon(s *stream) error {
	if ce := s.resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return fmt.Errorf("%w: %s answered with Content-Encoding %q although none was accepted", ErrBadResponse, s.url, ce)
	}
	return nil
}

func (t *transfer) statusError(resp *http.Response) error {
	e := &HTTPError{Status: resp.StatusCode, URL: netguard.Redact(resp.Request.URL)}
	if ra := retryAfter(resp); ra > 0 {
		return &retryAfterError{err: e, after: ra}
	}
	return e
}

// retryAfterError carries a Retry-After delay with a temporary error.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

func retryAfter(resp *http.Response) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return time.Until(at)
	}
	return 0
}

// prepareFile checks the free space and reserves it.
func (t *transfer) prepareFile(size int64) error {
	need := size - allocated(t.part)
	dir := filepath.Dir(t.j.path)
	if avail := freeSpace(dir); avail >= 0 && need > avail {
		return &SpaceError{Dir: dir, Need: need, Avail: avail}
	}
	if err := preallocate(t.part, size); err != nil {
		return fmt.Errorf("download: reserving %d bytes for %s: %w", size, t.partPath, err)
	}
	if fi, err := t.part.Stat(); err == nil && fi.Size() > size {
		if err := t.part.Truncate(size); err != nil {
			return err
		}
	}
	return t.checkpoint(true)
}

// retry decides whether err may pass on another attempt, and waits for it.
// It returns the new attempt count, or the error to give up with.
func (t *transfer) retry(ctx context.Context, err error, attempt int, progressed bool) (int, error) {
	if permanent(ctx, err) {
		return attempt, err
	}
	if progressed {
		attempt = 0
	}
	attempt++
	if attempt > t.c.cfg.retries {
		return attempt, err
	}
	d := t.backoff(attempt, err)
	t.log.Warn("retrying", slog.Int("attempt", attempt), slog.Duration("after", d),
		slog.String("error", netguard.RedactText(err.Error())))
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return attempt, nil
	case <-ctx.Done():
		return attempt, context.Cause(ctx)
	}
}

// backoff is the wait before attempt n (from 1) after err: exponential
// from the minimum backoff, jittered (the upper half at random), at most the
// maximum, and at least what a Retry-After asked for (up to the maximum).
func (t *transfer) backoff(n int, err error) time.Duration {
	d := t.c.cfg.minBackoff << min(n-1, 30)
	if d <= 0 || d > t.c.cfg.maxBackoff {
		d = t.c.cfg.maxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	var ra *retryAfterError
	if errors.As(err, &ra) {
		d = min(max(ra.after, d), t.c.cfg.maxBackoff)
	}
	return d
}

// refollowed is a refusal from a redirect target after which the
// requested URL is followed again: worth another attempt.
type refollowed struct{ err error }

func (e *refollowed) Error() string { return e.err.Error() }
func (e *refollowed) Unwrap() error { return e.err }

// localError is a failure of the local file system (ENOSPC, EIO), which
// another request will not fix.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// useless reports failures after which the fetched data cannot serve a
// later download: the content was wrong. A 403 or 404 is not one: a signed
// URL that expired, or a mirror that lost the file for a while, leaves
// bytes the validators will vouch for next time.
func useless(err error) bool {
	return errors.Is(err, ErrChecksumMismatch) || errors.Is(err, ErrSizeMismatch) ||
		errors.Is(err, ErrRemoteChanged) || errors.Is(err, ErrBadResponse)
}

// permanent reports errors that another attempt cannot fix. The caller's
// ctx being done is one; a context error of a single request (a connect
// timeout, say) is not.
func permanent(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	var rf *refollowed
	if errors.As(err, &rf) {
		return false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return !he.Temporary()
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.Is(err, errRestart), errors.Is(err, errNoRanges):
		return true // handled by the caller, not retried
	case errors.Is(err, netguard.ErrDenied), errors.Is(err, netguard.ErrTooManyRedirects),
		errors.Is(err, netguard.ErrDowngrade), errors.Is(err, netguard.ErrScheme):
		return true
	case errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci), errors.As(err, &cv):
		return true
	case errors.Is(err, ErrBadResponse), errors.Is(err, ErrSizeMismatch), errors.Is(err, ErrRequest),
		errors.Is(err, ErrChecksumMismatch), errors.Is(err, ErrNoConnection):
		return true
	}
	var se *SpaceError
	var le *localError
	// An NFS file that went away or is no longer readable by us: the
	// bytes fetched are kept, as after a 403 or 404.
	return errors.As(err, &se) || errors.As(err, &le) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)
}

// maxRounds bounds how often fill sends its connections out again for
// bytes still missing when they all stopped: pieces that failed their hash
// after the others were done, or sources back from a backoff.
const maxRounds = 64

var (
	// errSwitch: the connection leaves its source; its range goes back
	// to the others.
	errSwitch = errors.New("switching source")
	// errSourceDropped: the source was dropped while a request to it was
	// being read.
	errSourceDropped = errors.New("source dropped")
)

// fill fetches every missing range, the first from s (the first response,
// when the size was learned from it), the others over more connections, and
// waits until the pieces are checked and the hash cursor has caught up.
func (t *transfer) fill(ctx context.Context, s *stream) error {
	t.mu.Lock()
	size, ranges := t.size, (t.ranges && !t.noRanges) || t.known
	var first *segment
	t.segs, t.pending = t.segs[:0], nil
	switch {
	case s != nil && ranges:
		// The first response brings the first chunk of the first gap;
		// the rest waits to be claimed, front first.
		g := t.done.gaps(size)
		first = &segment{pos: g[0].Start, end: s.end}
		t.pending = g.clone()
		t.pending[0].Start = s.end
		if t.pending[0].Start >= t.pending[0].End {
			t.pending = t.pending[1:]
		}
	case s != nil:
		end := size
		if end < 0 {
			end = 1<<63 - 1
		}
		first = &segment{pos: 0, end: end}
	case size >= 0:
		t.pending = t.toFetch()
	}
	if first != nil {
		first.reqFrom, first.reqAt = first.pos, time.Now()
		t.segs = append(t.segs, first)
	}
	t.mu.Unlock()

	bg, stopBg := context.WithCancel(ctx)
	var bgWG sync.WaitGroup
	hashDone := make(chan error, 1)
	bgWG.Add(3)
	go func() { defer bgWG.Done(); hashDone <- t.cursor(bg) }()
	go func() { defer bgWG.Done(); t.checkpointer(bg) }()
	go func() { defer bgWG.Done(); t.reporter(bg) }()
	if t.pieces != nil {
		t.queueWritten()
		bgWG.Add(1)
		go func() { defer bgWG.Done(); t.checker(bg) }()
	}
	defer func() { stopBg(); bgWG.Wait() }()

	for round, idle := 0, 0; ; round++ {
		before := t.progressMark()
		g, gctx := errgroup.WithContext(ctx)
		n := t.j.conns
		if s != nil {
			// The first connection keeps its slot for as long as it
			// works, not only for its first response.
			release := s.release
			s.release = nil
			seg, st := first, s
			g.Go(func() error { return t.worker(gctx, st.m, release, seg, st, ranges, true) })
			n--
		}
		if ranges || s == nil {
			for i := range n {
				// Only the first round's lead must get a connection:
				// later rounds find the host busy with other downloads
				// at worst, and wait for the next.
				lead := s == nil && i == 0 && round == 0
				g.Go(func() error { return t.worker(gctx, nil, nil, nil, nil, ranges, lead) })
			}
		}
		s = nil
		if err := g.Wait(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if err := t.waitChecks(ctx); err != nil {
			return err
		}
		t.mu.Lock()
		if t.size < 0 {
			t.size = t.done.prefix() // one stream of unknown length ended
		}
		complete := len(t.done.gaps(t.size)) == 0
		var alive bool
		for _, m := range t.mirrors {
			alive = alive || m.out == nil
		}
		var perr error
		if t.pieces != nil {
			perr = t.pieces.err
		}
		t.pending = t.toFetch()
		t.mu.Unlock()
		switch {
		case perr != nil:
			return perr
		case complete:
		case !alive:
			t.mu.Lock()
			defer t.mu.Unlock()
			return t.noSourceError()
		case !ranges && t.noRanges && !t.known:
			return fmt.Errorf("%w: transfer ended with bytes missing", ErrBadResponse)
		}
		if !complete {
			if t.progressMark() == before {
				// Nothing moved: the sources able to take the work
				// are in a backoff. Wait for the first to end; only
				// rounds that move nothing count against the limit.
				if idle++; idle > maxRounds {
					return fmt.Errorf("download: %s: the sources stopped with bytes missing", t.j.safeURL)
				}
				if err := t.waitBackoff(ctx); err != nil {
					return err
				}
			} else {
				idle = 0
			}
			continue
		}
		break
	}
	poke(t.wakeHash)
	select {
	case err := <-hashDone:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// progressMark changes whenever a round moved something: bytes written,
// pieces checked or queued again.
func (t *transfer) progressMark() [3]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := [3]int64{t.transferred.Load()}
	if t.pieces != nil {
		m[1], m[2] = int64(t.pieces.good), int64(t.pieces.refetched)
	}
	return m
}

// waitBackoff waits until the first source in a backoff may be asked
// again (at most the longest backoff), or a little when none is.
func (t *transfer) waitBackoff(ctx context.Context) error {
	t.mu.Lock()
	var next time.Time
	for _, m := range t.mirrors {
		if m.out == nil && (next.IsZero() || m.retryAt.Before(next)) {
			next = m.retryAt
		}
	}
	t.mu.Unlock()
	d := min(max(time.Until(next), 10*time.Millisecond), t.c.cfg.maxBackoff)
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// toFetch is what no request covers yet: the gaps, less the bad pieces
// waiting to be fetched again (claimed separately). Called with t.mu held.
func (t *transfer) toFetch() spans {
	g := t.done.gaps(t.size)
	if t.pieces != nil {
		for _, r := range t.pieces.redo {
			g = g.remove(t.pieces.bounds(r.idx))
		}
	}
	return g
}

// waitChecks waits until every complete piece has been checked.
func (t *transfer) waitChecks(ctx context.Context) error {
	if t.pieces == nil {
		return nil
	}
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		t.mu.Lock()
		idle := t.pieces.idle()
		t.mu.Unlock()
		if idle {
			return nil
		}
		poke(t.wakePiece)
		select {
		case <-t.wakeRound:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// worker runs one connection. It takes a source (m, when it starts with
// one, as the first connection does with the first response s for seg),
// then ranges to fetch from it until none is left. It moves to another
// source when its own fails or a better one has room, and gives back its
// slot between ranges while another download waits for its first
// connection. Only the lead connection of a download must get a slot: the
// others give up quietly if none frees in time, since the download goes on
// without them.
func (t *transfer) worker(ctx context.Context, m *mirror, release func(), seg *segment, s *stream, ranges, lead bool) error {
	var hs *hostSlots
	leave := func() {
		if release != nil {
			release()
			release = nil
		}
		if m != nil {
			t.mu.Lock()
			m.active--
			t.mu.Unlock()
			m = nil
		}
	}
	defer leave()
	if m != nil {
		t.mu.Lock()
		m.active++
		t.mu.Unlock()
	}
	// Connections counts those that fetched, not slots taken by
	// connections that found nothing left to do.
	counted := false
	defer func() {
		if counted {
			t.mu.Lock()
			t.active--
			t.mu.Unlock()
		}
	}()
	for {
		if m == nil {
			var err error
			if m, release, hs, err = t.takeSource(ctx, lead); m == nil || err != nil {
				return err
			}
			lead = false
		}
		if seg == nil {
			t.mu.Lock()
			keep := t.stay(m, time.Now())
			t.mu.Unlock()
			if !keep {
				leave()
				continue
			}
			if seg = t.claim(m); seg == nil {
				return nil
			}
		}
		if !counted {
			counted = true
			t.mu.Lock()
			t.active++
			t.maxActive = max(t.maxActive, t.active)
			t.mu.Unlock()
		}
		err := t.fetch(ctx, seg, s, m, ranges)
		s = nil
		switch {
		case err == nil:
			seg = nil
		case errors.Is(err, errSwitch):
			t.giveBack(seg)
			seg = nil
			leave()
			continue
		default:
			return err
		}
		// Between ranges, make way for another download's first
		// connection.
		if hs != nil && hs.firstWaiting.Load() > 0 {
			return nil
		}
	}
}

// takeSource picks a source with room and takes a connection slot to its
// host, waiting while every usable source is in a backoff and work is
// left. It returns a nil source when there is nothing to do, every source
// is gone, or (but for the lead connection, which fails) no slot is free.
func (t *transfer) takeSource(ctx context.Context, lead bool) (*mirror, func(), *hostSlots, error) {
	for {
		t.mu.Lock()
		work := len(t.pending) > 0 || (t.pieces != nil && len(t.pieces.redo) > 0)
		if !work {
			t.mu.Unlock()
			return nil, nil, nil, nil // nothing to do: no connection needed
		}
		m, next := t.pick(time.Now())
		var u *url.URL
		if m != nil {
			u = m.hostKey()
		}
		t.mu.Unlock()
		if m == nil {
			if next.IsZero() {
				return nil, nil, nil, nil
			}
			tm := time.NewTimer(time.Until(next))
			select {
			case <-tm.C:
				continue
			case <-ctx.Done():
				tm.Stop()
				return nil, nil, nil, context.Cause(ctx)
			}
		}
		release, hs, err := t.acquire(ctx, u, lead)
		if err != nil {
			t.mu.Lock()
			m.active--
			t.mu.Unlock()
			if ctx.Err() != nil {
				return nil, nil, nil, context.Cause(ctx)
			}
			if lead {
				return nil, nil, nil, err
			}
			t.log.Debug("connection not opened", slog.String("error", err.Error()))
			return nil, nil, nil, nil
		}
		return m, release, hs, nil
	}
}

// giveBack returns the unfetched rest of seg to the ranges to claim. The
// rest of a bad piece fetched again goes back to the bad pieces, so that
// it still avoids the sources that served it bad: as an ordinary range,
// the next connection to claim it could be on one of them.
func (t *transfer) giveBack(seg *segment) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case seg.pos >= seg.end:
	case seg.redo != nil && t.pieces != nil:
		r := *seg.redo
		r.pos = seg.pos
		t.pieces.redo = append(t.pieces.redo, r)
	default:
		t.pending = t.pending.add(seg.pos, seg.end)
	}
	seg.end = seg.pos // not in flight any more; claim prunes it
}

// claim gives a connection on m the next range to fetch: a bad piece to
// fetch again; else the next chunk from the front of what no request
// covers yet, so that the file fills from its start and the hash cursor
// keeps up; or, when everything is requested, the back half of a request
// in flight whose owner is slow. It returns nil when nothing is worth
// taking.
func (t *transfer) claim(m *mirror) *segment {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.noRanges && !t.known {
		return nil
	}
	if t.pieces != nil && t.pieces.err != nil {
		return nil // the download fails: fetch nothing more
	}
	live := t.segs[:0]
	for _, s := range t.segs {
		if s.pos < s.end {
			live = append(live, s)
		}
	}
	clear(t.segs[len(live):])
	t.segs = live
	if seg := t.claimRedo(m); seg != nil {
		return seg
	}
	if len(t.pending) > 0 {
		p := t.pending[0]
		end := min(p.End, p.Start+t.chunk())
		if t.pieces != nil {
			// Ranges end on piece boundaries, so a piece comes from one
			// source, which its check then vouches for or blames.
			l := t.pieces.length
			end = min(p.End, (end+l-1)/l*l)
		}
		if p.End-end < t.c.cfg.minSplit {
			end = p.End // no sliver left behind
		}
		if end == p.End {
			t.pending = t.pending[1:]
		} else {
			t.pending[0].Start = end
		}
		seg := &segment{pos: p.Start, end: end}
		t.segs = append(t.segs, seg)
		return seg
	}
	// Split a request in flight whose owner needs more than a second for
	// the rest of it, so a slow connection does not hold the tail. The
	// owner then closes its connection early, and what the server had
	// already sent into it is lost, so this is the last resort. The owner
	// may be writing up to bufSize past pos.
	var best *segment
	var bestRest int64
	now := time.Now()
	for _, s := range t.segs {
		rest := s.end - s.pos - bufSize
		if rest < 4*t.c.cfg.minSplit || rest <= bestRest {
			continue
		}
		el := now.Sub(s.reqAt)
		if el < 100*time.Millisecond {
			continue // too early to tell its rate
		}
		rate := float64(s.pos-s.reqFrom) / el.Seconds()
		if rate > 0 && float64(rest)/rate < 1 {
			continue
		}
		best, bestRest = s, rest
	}
	if best == nil {
		return nil
	}
	align := int64(64 << 10)
	if t.pieces != nil {
		// A bad piece fetched again is never split: it is one piece.
		align = t.pieces.length
	}
	mid := (best.end - bestRest/2) / align * align
	if mid <= best.pos+bufSize {
		return nil
	}
	n := &segment{pos: mid, end: best.end}
	best.end = mid
	t.segs = append(t.segs, n)
	return n
}

// chunk is the size of the next range to request: a fraction of the file
// (so several requests are in flight and the digest follows closely), at
// most maxRequest, and smaller near the end so the connections finish
// together. Called with t.mu held.
func (t *transfer) chunk() int64 {
	conns := int64(t.j.conns)
	c := min(maxRequest, max(4*t.c.cfg.minSplit, t.size/(8*conns)))
	return min(c, max(t.c.cfg.minSplit, t.pending.total()/conns))
}

// fetch fills seg from m, with retries. s, if not nil, is an open
// response for seg. It returns errSwitch when the rest of seg should go to
// another source.
func (t *transfer) fetch(ctx context.Context, seg *segment, s *stream, m *mirror, ranges bool) error {
	defer func() { s.close() }()
	attempt := 0
	for {
		t.mu.Lock()
		finished := seg.pos >= seg.end
		t.mu.Unlock()
		if finished {
			return nil
		}
		if s == nil {
			var err error
			s, err = t.openRange(ctx, seg, m, ranges)
			if err != nil && m == t.primary && t.refollow(err) {
				err = &refollowed{err} // retried, from the requested URL
			}
			if err != nil {
				if attempt, err = t.onError(ctx, m, err, attempt, false); err != nil {
					return err
				}
				continue
			}
		}
		before := t.doneBytes()
		start := time.Now()
		n, err := t.copy(ctx, seg, s)
		s.close()
		s = nil
		if err == nil {
			t.mu.Lock()
			t.sampled(m, n, time.Since(start))
			t.mu.Unlock()
			continue
		}
		// Progress is new bytes: a stream that starts again from zero
		// and breaks at the same place makes none.
		if attempt, err = t.onError(ctx, m, err, attempt, t.doneBytes() > before); err != nil {
			return err
		}
	}
}

// onError decides where a failed request on m leads: another attempt on m
// after a backoff (nil), the rest of the range moving to another source
// (errSwitch), or the end of the download (the error).
func (t *transfer) onError(ctx context.Context, m *mirror, err error, attempt int, progressed bool) (int, error) {
	if ctx.Err() != nil {
		return attempt, context.Cause(ctx)
	}
	if errors.Is(err, errSourceDropped) {
		return attempt, errSwitch
	}
	var se *SpaceError
	var le *localError
	if errors.As(err, &se) || errors.As(err, &le) {
		return attempt, err
	}
	if (m == t.primary || m.kind == kindNFS) && (errors.Is(err, errRestart) || errors.Is(err, errNoRanges)) {
		return attempt, err // handled by download
	}
	t.mu.Lock()
	if t.othersUsable(m) {
		t.failed(m, err, permanent(ctx, err))
		t.mu.Unlock()
		return attempt, errSwitch
	}
	m.failures++
	t.mu.Unlock()
	// The last source: retry as a download from one source does.
	attempt, err = t.retry(ctx, err, attempt, progressed)
	if err != nil && len(t.mirrors) > 1 && ctx.Err() == nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.drop(m, err)
		return attempt, t.noSourceError()
	}
	return attempt, err
}

// refollow handles a refusal (401, 403, 404, 410) from the redirect target
// that ranges are fetched from: such targets are often signed URLs that
// expire while a large file downloads. It points later requests at the
// requested URL again, whose redirects lead to a fresh target, and reports
// whether it did.
func (t *transfer) refollow(err error) bool {
	var he *HTTPError
	if !errors.As(err, &he) {
		return false
	}
	switch he.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone:
	default:
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.primary.cur.String() == t.j.url.String() {
		return false
	}
	t.primary.cur = t.j.url
	t.log.Warn("redirect target refused a range; following the requested URL again", slog.Int("status", he.Status))
	return true
}

// openRange requests the rest of seg from m and checks the response is
// that range of the same file. Without ranges it requests the whole file
// and rewinds seg.
func (t *transfer) openRange(ctx context.Context, seg *segment, m *mirror, ranges bool) (*stream, error) {
	t.mu.Lock()
	u := m.cur
	from, to := seg.pos, seg.end-1
	seg.reqFrom, seg.reqAt = seg.pos, time.Now()
	t.mu.Unlock()
	switch {
	case m.kind == kindNFS:
		return t.openNFS(ctx, m, from, to+1)
	case m != t.primary:
		return t.openMirror(ctx, m, u, from, to)
	}
	if !ranges {
		s, err := t.get(ctx, m, u, -1, -1)
		if err != nil {
			return nil, err
		}
		if s.resp.StatusCode != http.StatusOK {
			s.close()
			return nil, t.statusError(s.resp)
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if (t.etag != "" && s.resp.Header.Get("ETag") != t.etag) ||
			(t.lastModified != "" && s.resp.Header.Get("Last-Modified") != t.lastModified) ||
			(t.size >= 0 && s.resp.ContentLength >= 0 && s.resp.ContentLength != t.size) {
			s.close()
			return nil, errRestart
		}
		seg.pos = 0
		s.end = t.size
		if s.end < 0 {
			s.end = 1<<63 - 1
		}
		return s, nil
	}
	s, err := t.get(ctx, m, u, from, to)
	if err != nil {
		return nil, err
	}
	resp := s.resp
	switch resp.StatusCode {
	case http.StatusPartialContent:
		cr, err := parseContentRange(resp.Header.Get("Content-Range"))
		t.mu.Lock()
		size := t.size
		t.mu.Unlock()
		if err != nil || cr.start != from || cr.end != to || cr.total != size ||
			(resp.ContentLength >= 0 && resp.ContentLength != to-from+1) {
			s.close()
			return nil, fmt.Errorf("%w: asked %s for bytes %d-%d and got Content-Range %q: %w",
				ErrBadResponse, s.url, from, to, resp.Header.Get("Content-Range"), errNoRanges)
		}
		t.mu.Lock()
		changed := (t.etag != "" && resp.Header.Get("ETag") != t.etag) ||
			(t.lastModified != "" && resp.Header.Get("Last-Modified") != t.lastModified)
		t.mu.Unlock()
		if changed {
			s.close()
			return nil, errRestart
		}
		s.end = to + 1
		t.mu.Lock()
		m.cur = resp.Request.URL // after a refollow, the fresh target
		t.mu.Unlock()
		return s, nil
	case http.StatusOK:
		// Never appended: a 200 is the whole file, from the first byte.
		t.mu.Lock()
		changed := (t.etag != "" && resp.Header.Get("ETag") != t.etag) ||
			(t.lastModified != "" && resp.Header.Get("Last-Modified") != t.lastModified)
		t.mu.Unlock()
		s.close()
		if changed {
			return nil, errRestart
		}
		return nil, fmt.Errorf("asked %s for bytes %d-%d and got the whole file: %w", s.url, from, to, errNoRanges)
	case http.StatusRequestedRangeNotSatisfiable:
		s.close()
		return nil, errRestart
	}
	s.close()
	return nil, t.statusError(resp)
}

// copy writes s's body into seg until seg is full (or its end was stolen)
// and returns the bytes written.
func (t *transfer) copy(ctx context.Context, seg *segment, s *stream) (int64, error) {
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	var written, sinceCkpt int64
	timeout := t.c.cfg.socketTimeout
	m := s.m
	for {
		t.mu.Lock()
		pos, limit := seg.pos, min(seg.end, s.end)-seg.pos
		out := m.out
		t.mu.Unlock()
		if out != nil {
			return written, fmt.Errorf("%s: %w", s.url, errSourceDropped)
		}
		if limit <= 0 {
			if pos == s.end && s.resp != nil {
				// Read the end of the body so the connection is reused.
				var b [1]byte
				s.body.Read(b[:])
			}
			return written, nil
		}
		n, rerr := s.body.Read((*buf)[:min(int64(len(*buf)), limit)])
		if n > 0 {
			s.idle.Reset(timeout)
			t.transferred.Add(int64(n))
			if _, err := t.part.WriteAt((*buf)[:n], pos); err != nil {
				return written, &localError{fmt.Errorf("download: writing %s: %w", t.partPath, err)}
			}
			t.mu.Lock()
			seg.pos += int64(n)
			t.done = t.done.add(pos, pos+int64(n))
			m.bytes += int64(n)
			t.wrote(m, pos, int64(n))
			t.mu.Unlock()
			written += int64(n)
			sinceCkpt += int64(n)
			poke(t.wakeHash)
			if sinceCkpt >= checkpointEvery {
				sinceCkpt = 0
				poke(t.wakeCkpt)
			}
		}
		if rerr == io.EOF {
			t.mu.Lock()
			if t.size < 0 {
				// One stream of unknown length: its end is the file's.
				t.size, seg.end = seg.pos, seg.pos
				if t.j.size > 0 && t.size != t.j.size {
					t.mu.Unlock()
					return written, fmt.Errorf("%w: %s sent %d bytes, the request expects %d", ErrSizeMismatch, s.url, seg.pos, t.j.size)
				}
			}
			short := seg.pos < min(seg.end, s.end)
			t.mu.Unlock()
			if short {
				return written, fmt.Errorf("%s: body ended early: %w", s.url, io.ErrUnexpectedEOF)
			}
			return written, nil
		}
		if rerr != nil {
			if errors.Is(context.Cause(s.ctx), errStall) {
				return written, fmt.Errorf("%w: no data from %s for %v", ErrStalled, s.url, timeout)
			}
			if ctx.Err() != nil {
				return written, context.Cause(ctx)
			}
			return written, fmt.Errorf("%s: %w", s.url, rerr)
		}
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// cursor hashes the contiguous prefix of the part file as it grows,
// reading back what the connections wrote (from the page cache), and
// returns when the whole file is hashed.
func (t *transfer) cursor(ctx context.Context) error {
	buf := make([]byte, hashChunk)
	off := t.hashed.Load()
	kicked := off // writeback started up to here
	for {
		t.mu.Lock()
		p, size := t.done.prefix(), t.size
		if t.pieces != nil {
			p = min(p, t.pieces.verified()) // never hash a piece before its check
		}
		t.mu.Unlock()
		for off < p {
			n := min(int64(len(buf)), p-off)
			if _, err := t.part.ReadAt(buf[:n], off); err != nil {
				return fmt.Errorf("download: reading back %s: %w", t.partPath, err)
			}
			t.hash.Write(buf[:n])
			off += n
			state, err := marshalHash(t.hash)
			if err != nil {
				return err
			}
			t.hashSnap.Store(&progressState{Hashed: off, HashState: state})
			t.hashed.Store(off)
			if off-kicked >= writebackChunk || off == size {
				startWriteback(t.part, kicked, off-kicked)
				kicked = off
			}
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
		}
		if size >= 0 && off >= size {
			return nil
		}
		select {
		case <-t.wakeHash:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// checkpointer writes the control file after each checkpointEvery bytes of
// a connection, and a durable one every durableEvery.
func (t *transfer) checkpointer(ctx context.Context) {
	tick := time.NewTicker(durableEvery)
	defer tick.Stop()
	for {
		select {
		case <-t.wakeCkpt:
			t.checkpoint(false)
			select {
			case <-time.After(checkpointGap):
			case <-ctx.Done():
				return
			}
		case <-tick.C:
			t.checkpoint(true)
		case <-ctx.Done():
			return
		}
	}
}

// checkpoint records the current state; durable first syncs the data it
// describes.
func (t *transfer) checkpoint(durable bool) error {
	t.ckptMu.Lock()
	defer t.ckptMu.Unlock()
	hs := t.hashSnap.Load()
	t.mu.Lock()
	if t.size < 0 {
		t.mu.Unlock()
		return nil
	}
	st := progressState{Done: t.done.clone()}
	if hs != nil {
		st.Hashed, st.HashState = hs.Hashed, hs.HashState
	}
	c := &control{
		Version: controlVersion, URL: t.j.safeURL, Size: t.size, ETag: t.etag, LastModified: t.lastModified, Identity: t.identity,
		Algorithm: t.algorithm().Algorithm(), BootID: t.boot, Latest: st, Durable: t.durable,
	}
	t.mu.Unlock()
	if durable {
		if err := t.part.Sync(); err != nil {
			return fmt.Errorf("download: syncing %s: %w", t.partPath, err)
		}
		c.Durable = st
		t.mu.Lock()
		t.durable = st
		t.mu.Unlock()
	}
	if err := writeControl(t.ctlPath, c, durable); err != nil {
		t.log.Warn("checkpoint failed", slog.String("error", err.Error()))
		return err
	}
	return nil
}

// reporter sends progress events.
func (t *transfer) reporter(ctx context.Context) {
	sink := t.c.cfg.progress
	if sink == nil {
		return
	}
	tick := time.NewTicker(t.c.cfg.progressInterval)
	defer tick.Stop()
	meter := newRateMeter(t.transferred.Load())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			rate := meter.update(t.transferred.Load(), now)
			t.mu.Lock()
			p := Progress{URL: t.j.safeURL, Path: t.j.path, Done: t.done.total(), Total: t.size, Rate: rate, Connections: t.active}
			t.mu.Unlock()
			if p.Total > 0 && rate > 0 {
				p.ETA = time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second))
			}
			sink(p)
		}
	}
}

// rateMeter smooths a transfer rate from a growing byte count.
type rateMeter struct {
	last int64
	at   time.Time
	rate float64
}

func newRateMeter(n int64) *rateMeter { return &rateMeter{last: n, at: time.Now()} }

// update takes the count at now and returns the smoothed bytes per second.
func (r *rateMeter) update(n int64, now time.Time) float64 {
	inst := float64(n-r.last) / now.Sub(r.at).Seconds()
	if r.rate == 0 {
		r.rate = inst
	} else {
		r.rate = 0.7*r.rate + 0.3*inst
	}
	r.last, r.at = n, now
	return r.rate
}

// commit verifies the finished part file and renames it into place.
func (t *transfer) commit() (*Result, error) {
	sum, err := NewChecksum(t.algorithm().Algorithm(), t.hash.Sum(nil))
	if err != nil {
		return nil, err
	}
	if t.hasSum {
		if err := t.sum.Verify(t.hash.Sum(nil)); err != nil {
			var ce *ChecksumError
			if errors.As(err, &ce) {
				ce.URL = t.j.safeURL
			}
			return nil, err
		}
	}
	if err := t.part.Truncate(t.size); err != nil {
		return nil, fmt.Errorf("download: %s: %w", t.partPath, err)
	}
	if err := t.part.Sync(); err != nil {
		return nil, fmt.Errorf("download: syncing %s: %w", t.partPath, err)
	}
	// Rename by path renames whatever is there: make sure it is still
	// the file this download locked, wrote and verified.
	if err := sameFile(t.part, t.partPath); err != nil {
		return nil, err
	}
	if err := os.Rename(t.partPath, t.j.path); err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	os.Remove(t.ctlPath)
	if err := atomicfile.SyncDir(filepath.Dir(t.j.path)); err != nil {
		return nil, fmt.Errorf("download: %s is in place but not yet durable: %w", t.j.path, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	res := &Result{
		URL: t.j.safeURL, Path: t.j.path, Size: t.size, Digest: sum.String(), Sum: sum,
		Verified: t.hasSum, BytesTransferred: t.transferred.Load(), ResumedFrom: t.resumedFrom,
		Connections: t.maxActive, Redirects: t.redirects, Ranges: (t.ranges && !t.noRanges) || t.known,
		Restarts: t.restarts, Duration: time.Since(t.start), Sources: t.reports(),
	}
	if t.pieces != nil {
		res.PiecesRefetched = t.pieces.refetched
	}
	t.log.Info("downloaded", slog.Int64("size", res.Size), slog.String("digest", res.Digest),
		slog.Int64("transferred", res.BytesTransferred), slog.Duration("duration", res.Duration))
	if t.c.cfg.progress != nil {
		t.c.cfg.progress(Progress{URL: t.j.safeURL, Path: t.j.path, Done: t.size, Total: t.size, Final: true})
	}
	return res, nil
}

// contentRange is a parsed Content-Range: bytes start-end/total (total -1
// for "*"; start and end -1 for "*/total").
type contentRange struct{ start, end, total int64 }

func parseContentRange(v string) (contentRange, error) {
	bad := fmt.Errorf("malformed Content-Range %q", v)
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return contentRange{}, bad
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return contentRange{}, bad
	}
	cr := contentRange{start: -1, end: -1, total: -1}
	if tot != "*" {
		n, err := parseDigits(tot)
		if err != nil {
			return contentRange{}, bad
		}
		cr.total = n
	}
	if rng == "*" {
		if cr.total < 0 {
			return contentRange{}, bad
		}
		return cr, nil
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return contentRange{}, bad
	}
	s, err1 := parseDigits(a)
	e, err2 := parseDigits(b)
	if err1 != nil || err2 != nil || e < s || (cr.total >= 0 && e >= cr.total) {
		return contentRange{}, bad
	}
	cr.start, cr.end = s, e
	return cr, nil
}

// parseDigits parses a non-negative decimal number of digits only (RFC
// 9110's 1*DIGIT: no sign, no space).
func parseDigits(v string) (int64, error) {
	if v == "" {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseInt(v, 10, 64)
}
