package download_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
)

// TestPartialAnswerWithoutRangeFails guards against a bug found in review: errNoRanges is caught by download() and
// sets noRanges, then the loop goes round again with no bound and no
// backoff. A server (or caching proxy) that answers 206 with a
// Content-Range that does not match, also to a request without Range,
// makes firstOnce return errNoRanges every time: Get never returns (until
// ctx ends) and hammers the server.
func TestPartialAnswerWithoutRangeFails(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	body := strings.Repeat("x", 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 1-%d/%d", len(body), len(body)+1))
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := newClient(t, download.WithRetries(2)).Get(ctx, download.Request{URL: srv.URL + "/x", Path: filepath.Join(t.TempDir(), "x")})
	t.Logf("after %v: %d requests, err %v", time.Since(start).Round(time.Millisecond), n.Load(), err)
	if ctx.Err() != nil {
		t.Errorf("Get ran until its deadline and sent %d requests with WithRetries(2): the errNoRanges fallback loops without bound", n.Load())
	}
}

// TestRequestSizeChunked guards against a bug found in review: Request.Size is not checked when the
// response has no Content-Length (chunked): a body of another length is
// committed.
func TestRequestSizeChunked(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("y", 300000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(body[:100000]))
		w.(http.Flusher).Flush() // chunked: no Content-Length
		w.Write([]byte(body[100000:]))
	}))
	defer srv.Close()
	res, err := newClient(t).Get(context.Background(), download.Request{URL: srv.URL + "/y", Path: filepath.Join(t.TempDir(), "y"), Size: 12345})
	if err == nil {
		t.Errorf("Request.Size 12345 but a %d-byte body was committed (result size %d)", len(body), res.Size)
	}
}

// TestNoResumeWithoutValidators guards against a bug found in review: a server that sends neither ETag nor
// Last-Modified gives nothing to tell whether the file changed between
// runs. firstOnce resets kept bytes for such a server only when it answers
// 200 ("weak"); a 206 of the same total size is trusted, so the resumed
// file mixes the old and new content: committed silently without a
// checksum, and reported as a *ChecksumError ("the source's content is
// wrong: do not retry it on another host") with one.
func TestNoResumeWithoutValidators(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	mk := func(b byte) []byte { return []byte(strings.Repeat(string([]byte{b}), size)) }
	var content atomic.Pointer[[]byte]
	v1, v2 := mk('1'), mk('2')
	content.Store(&v1)
	var block atomic.Bool
	block.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var from int64
		fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-", &from)
		if block.Load() && from >= 2<<20 {
			<-r.Context().Done()
			return
		}
		c := *content.Load()
		// No ETag, zero modtime: no Last-Modified.
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(c)))
	}))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "img")
	cl := newClient(t, download.WithConnections(4))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := cl.Get(ctx, download.Request{URL: srv.URL + "/img", Path: dest}); err == nil {
		t.Fatal("first run: want the deadline")
	}
	// The remote file is replaced by another of the same size.
	content.Store(&v2)
	block.Store(false)
	res, err := cl.Get(context.Background(), download.Request{URL: srv.URL + "/img", Path: dest})
	if err != nil {
		t.Fatal(err)
	}
	got := fileSHA256(t, dest)
	if got != sha(v2) {
		t.Errorf("resumed from %d bytes of the old file without validators; the committed file is neither version (old %v)", res.ResumedFrom, got == sha(v1))
	}
}

// Test416WithoutContentRange guards against a bug found in review: in firstOnce the 416 branch
// ignores parseContentRange's error, and its zero contentRange has total
// 0, so any 416 to the first request that lacks a valid Content-Range is
// taken as "the file is empty": a zero-byte file is committed as a
// success (without a checksum; with one, the error is a *ChecksumError
// saying the source's content is wrong). A proxy or server that answers
// 416 to the first range request for any reason (range too large, a
// buggy If-Range) turns a multi-GB image into an empty one.
func Test416WithoutContentRange(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("q", 100000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "e")
	res, err := newClient(t).Get(context.Background(), download.Request{URL: srv.URL + "/img", Path: dest})
	if err == nil && res.Size == 0 {
		t.Errorf("a bare 416 to the first range request committed an empty file as success (the file has %d bytes)", len(body))
	}
}
