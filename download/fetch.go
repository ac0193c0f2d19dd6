package download

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/directdl/directdl/internal/atomicfile"
	"github.com/directdl/directdl/internal/netguard"
)

// FetchFunc writes the file a Request names to dst, a path in a new
// directory of its own beside the destination, where nothing exists yet.
// It must leave a regular file there (not a symbolic link or a directory)
// and return nil, or return an error; it should return soon after ctx is
// done. GetWith calls it once.
type FetchFunc func(ctx context.Context, dst string) error

// GetWith is Get for a source the engine does not read itself: fetch
// writes the file (the download/getter adapter runs go-getter in it), and
// the engine does the rest as for its own downloads. It takes the
// destination's lock (ErrBusy while another download writes it), reports
// progress from the growing file, then reads the file once to hash it,
// checks req.Size and the checksum, and moves it into place atomically
// (fsync, rename, fsync of the directory). When fetch fails, or the file
// is wrong, nothing is left behind: not the fetched file, not its
// directory, and req.Path is untouched.
//
// req.URL names the source in results, logs and errors (redacted as
// usual); it may have any scheme and is not read, and no checksum is taken
// from its query. There is no resume: what an interrupted fetch wrote is
// removed, and a partial download an earlier Get left for req.Path is
// discarded. Concurrent calls for the same URL and path share one fetch,
// as with Get. Safe for concurrent use.
func (c *Client) GetWith(ctx context.Context, req Request, fetch FetchFunc) (*Result, error) {
	start := time.Now()
	if fetch == nil {
		return nil, fmt.Errorf("%w: GetWith needs a fetch function", ErrRequest)
	}
	j, err := c.newJob(req, fetch)
	if err != nil {
		return nil, err
	}
	return c.get(ctx, j, start)
}

// runFetch is run for a job with a fetch function.
func (c *Client) runFetch(ctx context.Context, j *job) (res *Result, err error) {
	log := c.cfg.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.String("url", j.safeURL), slog.String("path", j.path))
	start := time.Now()
	part, err := openLocked(partPath(j.path))
	if err != nil {
		return nil, err
	}
	defer func() {
		// The lock file goes last, while still held, so that nobody
		// starts on a destination this call is still cleaning up.
		os.Remove(controlPath(j.path))
		os.Remove(part.Name())
		part.Close()
		if err != nil {
			err = netguard.RedactError(err)
			log.Warn("download failed", slog.String("error", err.Error()))
			if c.cfg.progress != nil {
				c.cfg.progress(Progress{URL: j.safeURL, Path: j.path, Total: -1, Final: true, Err: err})
			}
		}
	}()
	if err := part.Truncate(0); err != nil {
		return nil, fmt.Errorf("download: truncating %s: %w", part.Name(), err)
	}
	dir := filepath.Dir(j.path)
	tmpDir, err := os.MkdirTemp(dir, "."+filepath.Base(j.path)+".ddget-")
	if err != nil {
		return nil, fmt.Errorf("download: making a directory for the fetch in %s: %w", dir, err)
	}
	defer os.RemoveAll(tmpDir)
	dst := filepath.Join(tmpDir, filepath.Base(j.path))

	stop := c.watchFetch(j, dst)
	err = j.fetch(ctx, dst)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("download: %s: %w", j.safeURL, context.Cause(ctx))
		}
		return nil, fmt.Errorf("download: fetching %s: %w", j.safeURL, err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("download: %s: %w", j.safeURL, context.Cause(ctx))
	}
	f, err := openFetched(dst)
	if err != nil {
		return nil, fmt.Errorf("%w: fetching %s: %w", ErrBadResponse, j.safeURL, err)
	}
	defer f.Close()
	alg := Checksum{alg: SHA256}
	if j.hasSum {
		alg = j.sum
	}
	h := alg.NewHash()
	size, err := io.Copy(h, readerCtx{ctx, f})
	if err != nil {
		return nil, fmt.Errorf("download: reading back %s: %w", dst, err)
	}
	if j.size > 0 && size != j.size {
		return nil, fmt.Errorf("%w: %s gave %d bytes, the request expects %d", ErrSizeMismatch, j.safeURL, size, j.size)
	}
	digest := h.Sum(nil)
	if j.hasSum {
		if err := j.sum.Verify(digest); err != nil {
			var ce *ChecksumError
			if errors.As(err, &ce) {
				ce.URL = j.safeURL
			}
			return nil, err
		}
	}
	sum, err := NewChecksum(alg.Algorithm(), digest)
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("download: syncing %s: %w", dst, err)
	}
	if err := sameFile(part, partPath(j.path)); err != nil {
		return nil, err // the lock no longer guards the destination
	}
	if err := os.Rename(dst, j.path); err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("download: %s is in place but not yet durable: %w", j.path, err)
	}
	res = &Result{
		URL: j.safeURL, Path: j.path, Size: size, Digest: sum.String(), Sum: sum, Verified: j.hasSum,
		BytesTransferred: size, Connections: 1, Duration: time.Since(start),
	}
	log.Info("downloaded", slog.Int64("size", size), slog.String("digest", res.Digest), slog.Duration("duration", res.Duration))
	if c.cfg.progress != nil {
		c.cfg.progress(Progress{URL: j.safeURL, Path: j.path, Done: size, Total: size, Final: true})
	}
	return res, nil
}

// openFetched opens what a fetch left at path, which must be a regular
// file: a symbolic link could point anywhere (go-getter's file getter
// links instead of copying unless told), and is never followed.
func openFetched(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("the fetch returned without writing the file")
		}
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("the fetch left a %s, not a regular file", fileKind(fi.Mode()))
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	if fi2, err := f.Stat(); err != nil || !os.SameFile(fi, fi2) {
		f.Close()
		return nil, errors.New("the fetched file was replaced while being opened")
	}
	return f, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	case m.IsDir():
		return "directory"
	default:
		return "special file (" + m.Type().String() + ")"
	}
}

// watchFetch sends progress events from the size of the file being
// fetched, and returns the function that stops it.
func (c *Client) watchFetch(j *job, dst string) func() {
	sink := c.cfg.progress
	if sink == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(c.cfg.progressInterval)
		defer tick.Stop()
		meter := newRateMeter(0)
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				var cur int64
				if fi, err := os.Lstat(dst); err == nil && fi.Mode().IsRegular() {
					cur = fi.Size()
				}
				rate := meter.update(cur, now)
				total := int64(-1)
				if j.size > 0 {
					total = j.size
				}
				sink(Progress{URL: j.safeURL, Path: j.path, Done: cur, Total: total, Rate: max(rate, 0), Connections: 1})
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// readerCtx stops a long read-back when ctx is done.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, context.Cause(r.ctx)
	}
	return r.r.Read(p)
}
