package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/directdl/directdl/download"
)

// throttled serves one file, with ranges, at most rate bytes per second
// per response, as a CDN edge often does per connection: the reason a
// parallel download is faster. It counts the body bytes it sends.
type throttled struct {
	path string
	rate int64
	sent atomic.Int64
}

func (t *throttled) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.ServeFile(&pacedWriter{ResponseWriter: w, t: t, r: r, start: time.Now()}, r, t.path)
}

// pacedWriter sends a response body no faster than its throttled's rate.
// It hides the ResponseWriter's ReadFrom, so the body comes through Write.
type pacedWriter struct {
	http.ResponseWriter
	t     *throttled
	r     *http.Request
	start time.Time
	n     int64
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		c := b[:min(len(b), 32<<10)]
		b = b[len(c):]
		due := p.start.Add(time.Duration(p.n * int64(time.Second) / p.t.rate))
		select {
		case <-time.After(time.Until(due)):
		case <-p.r.Context().Done():
			return written, p.r.Context().Err()
		}
		m, err := p.ResponseWriter.Write(c)
		written += m
		p.n += int64(m)
		p.t.sent.Add(int64(m))
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// bar draws download progress on w with a progress bar library, fed by
// the download engine's progress events (download.WithProgress). The
// numbers beside it are the engine's. A nil *bar draws nothing.
type bar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	pb    *progressbar.ProgressBar
}

func newBar(w io.Writer) *bar {
	if w == nil {
		return nil
	}
	return &bar{w: w, label: "download"}
}

// show draws p. The engine calls it from the download's goroutines.
func (b *bar) show(p download.Progress) {
	if b == nil || p.Total <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb == nil {
		b.pb = progressbar.NewOptions64(p.Total,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionClearOnFinish(),
		)
	}
	b.pb.Set64(p.Done)
	if !p.Final { // the last event has no rate to show
		b.pb.Describe(fmt.Sprintf("%s %s of %s at %s/s over %d connection(s), %v left",
			b.label, mib(p.Done), mib(p.Total), mib(int64(p.Rate)), p.Connections, p.ETA.Round(100*time.Millisecond)))
	}
}

// relabel changes the word before the numbers.
func (b *bar) relabel(s string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.label = s
}

// clear removes the bar from the terminal, so the step's line replaces it.
func (b *bar) clear() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb != nil {
		b.pb.Clear()
	}
}
