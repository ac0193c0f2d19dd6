package getter

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/directdl/directdl/download"
)

// guard is the go-getter ProgressListener. TrackProgress is the one hook
// that sees an object's body as it streams (the S3 getter calls it), so it
// is where the hard size limit and the stall watchdog live: go-getter's
// own limits either truncate silently or are bypassed once a listener is
// set.
type guard struct {
	limit  int64 // bytes the body may have; 0 for no limit
	idle   time.Duration
	cancel context.CancelCauseFunc

	mu  sync.Mutex
	err error // first failure; sticks
}

func newGuard(limit int64, idle time.Duration, cancel context.CancelCauseFunc) *guard {
	return &guard{limit: limit, idle: idle, cancel: cancel}
}

// fail records err unless a failure came first, stops the fetch, and
// returns the failure that stands.
func (g *guard) fail(err error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		g.err = err
		g.cancel(err)
	}
	return g.err
}

func (g *guard) failure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// TrackProgress implements go-getter's ProgressTracker.
func (g *guard) TrackProgress(src string, current, total int64, stream io.ReadCloser) io.ReadCloser {
	r := &guardedReader{g: g, src: src, rc: stream, n: current}
	if g.limit > 0 && total > g.limit {
		g.fail(fmt.Errorf("%w: %s announces %d bytes, the request expects %d", download.ErrSizeMismatch, src, total, g.limit))
		return r
	}
	r.timer = time.AfterFunc(g.idle, r.stall)
	return r
}

type guardedReader struct {
	g     *guard
	src   string
	rc    io.ReadCloser
	n     int64
	timer *time.Timer // nil when the reader failed at once

	closeOnce sync.Once
	closeErr  error
}

// stall runs when no byte came for the idle timeout. Closing the body
// unblocks a Read waiting on the network.
func (r *guardedReader) stall() {
	r.g.fail(fmt.Errorf("%w: %s sent no byte for %v", download.ErrStalled, r.src, r.g.idle))
	r.close()
}

func (r *guardedReader) Read(p []byte) (int, error) {
	if err := r.g.failure(); err != nil {
		return 0, err
	}
	n, err := r.rc.Read(p)
	if n > 0 {
		r.timer.Reset(r.g.idle)
	}
	r.n += int64(n)
	if r.g.limit > 0 && r.n > r.g.limit {
		return n, r.g.fail(fmt.Errorf("%w: %s sent more than the %d bytes the request expects", download.ErrSizeMismatch, r.src, r.g.limit))
	}
	if ferr := r.g.failure(); ferr != nil {
		// The watchdog fired during this Read; whatever the closed body
		// said, the stall is the reason.
		return n, ferr
	}
	return n, err
}

func (r *guardedReader) close() error {
	r.closeOnce.Do(func() { r.closeErr = r.rc.Close() })
	return r.closeErr
}

func (r *guardedReader) Close() error {
	if r.timer != nil {
		r.timer.Stop()
	}
	return r.close()
}
