package faultserver

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// hopParam is the query parameter that carries the position in a redirect
// chain.
const hopParam = "faultserver-hop"

// handle serves one request on the listener for scheme and host.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, scheme, host string) {
	if !s.enter() {
		return
	}
	defer s.wg.Done()
	if h, ok := s.handlers[r.URL.Path]; ok {
		h.ServeHTTP(w, r)
		return
	}
	s.rec.requestStarted()
	id, _ := r.Context().Value(connIDKey{}).(uint64)
	rec := &Request{
		Conn:           id,
		Scheme:         scheme,
		Host:           host,
		Method:         r.Method,
		Path:           r.URL.Path,
		Range:          r.Header.Get("Range"),
		IfRange:        r.Header.Get("If-Range"),
		AcceptEncoding: r.Header.Get("Accept-Encoding"),
		Start:          time.Now(),
	}
	defer func() {
		rec.Duration = time.Since(rec.Start)
		s.rec.requestDone(*rec)
		if s.logger != nil {
			s.logger.LogAttrs(r.Context(), slog.LevelDebug, "faultserver request",
				slog.Uint64("conn", rec.Conn), slog.String("method", rec.Method),
				slog.String("url", scheme+"://"+host+r.URL.RequestURI()),
				slog.String("range", rec.Range), slog.Int("status", rec.Status),
				slog.Int64("bytes", rec.Bytes), slog.String("fault", rec.Fault),
				slog.Duration("duration", rec.Duration))
		}
	}()

	f := s.faults.Load()
	if f.Latency > 0 && !s.sleep(r.Context(), f.Latency) {
		return
	}
	if f.takeFailure() {
		if f.RetryAfter > 0 {
			secs := (f.RetryAfter + time.Second - 1) / time.Second
			w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
		}
		textStatus(w, rec, f.FailStatus, "fail")
		return
	}
	if code, ok := f.Status[r.URL.Path]; ok {
		textStatus(w, rec, code, "status")
		return
	}
	if v, ok := s.redirects.Load(r.URL.Path); ok {
		s.redirect(w, r, rec, v.(*redirect), scheme, host)
		return
	}
	res, ok := s.resources[r.URL.Path]
	if !ok {
		textStatus(w, rec, http.StatusNotFound, "")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		textStatus(w, rec, http.StatusMethodNotAllowed, "")
		return
	}
	s.serveResource(w, r, rec, f, res)
}

// textStatus answers with code and its text as the body.
func textStatus(w http.ResponseWriter, rec *Request, code int, fault string) {
	rec.Status, rec.Fault = code, fault
	body := fmt.Sprintf("%d %s\n", code, http.StatusText(code))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	n, _ := io.WriteString(w, body)
	rec.Bytes = int64(n)
}

// redirect answers with the hop of rd the request is at.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, rec *Request, rd *redirect, scheme, host string) {
	i := 0
	if q := r.URL.Query().Get(hopParam); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 || n >= len(rd.hops) {
			textStatus(w, rec, http.StatusNotFound, "")
			return
		}
		i = n
	}
	hop := rd.hops[i]
	loc := hop.URL
	if loc == "" {
		if hop.Scheme != "" {
			scheme = hop.Scheme
		}
		if hop.Host != "" {
			host = hop.Host
		}
		target := rd.to
		if i+1 < len(rd.hops) {
			target = r.URL.Path + "?" + hopParam + "=" + strconv.Itoa(i+1)
		}
		loc = s.URLFor(scheme, host, target)
	}
	code := hop.Status
	if code == 0 {
		code = http.StatusFound
	}
	w.Header().Set("Location", loc)
	textStatus(w, rec, code, "redirect")
}

// serveResource answers a GET or HEAD for res.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, rec *Request, f *faultState, res *resource) {
	if n := f.ChangeAfterRequests; n > 0 {
		if f.requests[res.Path].Add(1) >= int64(n) && f.fired[res.Path].CompareAndSwap(false, true) {
			s.autoChange(f, res)
		}
	}
	v := res.version()
	size := res.Size
	h := w.Header()
	h.Set("Content-Type", res.ContentType)
	h.Set("ETag", v.ETag)
	h.Set("Last-Modified", v.ModTime.Format(http.TimeFormat))
	if !f.NoRanges {
		h.Set("Accept-Ranges", "bytes")
	}
	if f.Gzip && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		rec.Fault = "gzip"
		s.serveGzip(w, r, rec, f, v)
		return
	}

	status, body := http.StatusOK, byteRange{0, size}
	if rng := r.Header.Get("Range"); rng != "" {
		switch br, kind := parseRange(rng, size); {
		case f.NoRanges:
			rec.Fault = "no-ranges"
		case r.Header.Get("If-Range") != "" && !ifRangeMatches(r.Header.Get("If-Range"), v.ETag, v.ModTime):
			// RFC 9110 section 13.1.5: a stale validator gets the whole
			// current representation.
		case f.Always200 && kind != rangeNone:
			rec.Fault = "always-200"
		case kind == rangeOne:
			status, body = http.StatusPartialContent, br
		case kind == rangeUnsatisfiable:
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			textStatus(w, rec, http.StatusRequestedRangeNotSatisfiable, "")
			return
		}
	}
	if status == http.StatusPartialContent {
		total := size
		if f.WrongContentRange {
			rec.Fault = "wrong-content-range"
			switch {
			case body.start+body.length < size:
				body.start++
			case body.start > 0:
				body.start--
			default:
				total++
			}
		}
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", body.start, body.start+body.length-1, total))
	}
	h.Set("Content-Length", strconv.FormatInt(body.length, 10))
	rec.Status = status
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	s.writeBody(w, r, rec, f, res, v.Content, body)
}

// autoChange makes the change ChangeAfter* asks for.
func (s *Server) autoChange(f *faultState, res *resource) {
	_, generated := res.Content.(Pattern)
	res.change(f.ChangeContent && generated)
}

// acceptsGzip reports whether an Accept-Encoding value accepts gzip.
func acceptsGzip(v string) bool {
	for part := range strings.SplitSeq(v, ",") {
		name, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// serveGzip answers with the whole content gzip-compressed.
func (s *Server) serveGzip(w http.ResponseWriter, r *http.Request, rec *Request, f *faultState, v Version) {
	h := w.Header()
	h.Set("Content-Encoding", "gzip")
	h.Add("Vary", "Accept-Encoding")
	rec.Status = http.StatusOK
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	cw := &countingWriter{w: w, s: s, rec: rec, ctx: r.Context(), uplink: f.uplink}
	f.placeCorruption(0)
	cr := &corruptReader{r: v.Content, f: f}
	zw, _ := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	_, err := io.Copy(zw, io.NewSectionReader(cr, 0, v.Content.Size()))
	if err == nil {
		zw.Close()
	}
	if cr.hit {
		rec.Fault = "corrupt"
	}
}

// countingWriter counts the body bytes it passes on, and paces them by
// uplink when it is not nil.
type countingWriter struct {
	w      io.Writer
	s      *Server
	rec    *Request
	ctx    context.Context
	uplink *sharedPacer
}

func (c *countingWriter) Write(p []byte) (int, error) {
	done := 0
	for len(p) > 0 {
		n := len(p)
		if c.uplink != nil {
			n = min(n, int(c.uplink.burst))
			if d := c.uplink.reserve(int64(n), time.Now()); d > 0 && !c.s.sleep(c.ctx, d) {
				return done, errAborted
			}
		}
		m, err := c.w.Write(p[:n])
		done += m
		c.rec.Bytes += int64(m)
		c.s.rec.bytes.Add(int64(m))
		if err != nil {
			return done, err
		}
		p = p[n:]
	}
	return done, nil
}

// errAborted ends a response whose client went away, or whose server
// closed, while it waited.
var errAborted = errors.New("faultserver: response aborted")

// Write sizes: unthrottled responses go out in bodyChunk writes; throttled
// ones in about a hundredth of a second's worth (of the lower rate, when
// Rate and ServerRate both apply), within these bounds.
const (
	bodyChunk     = 256 << 10
	minPacedChunk = 512
	maxPacedChunk = 64 << 10
)

// pacedChunk is the write size, and the burst, of a response paced at rate
// bytes per second.
func pacedChunk(rate int64) int64 {
	return min(max(rate/100, minPacedChunk), maxPacedChunk)
}

// bufPool holds bodyChunk buffers.
var bufPool = sync.Pool{New: func() any { return new([bodyChunk]byte) }}

// writeBody writes the body of a response, bytes br of content, applying
// the rates, the corruption, the stall, the resource change and the
// connection cut of f.
func (s *Server) writeBody(w http.ResponseWriter, r *http.Request, rec *Request, f *faultState, res *resource, content io.ReaderAt, br byteRange) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	stallAt, cutAt, cutKind := int64(-1), int64(-1), ""
	if f.hasBodyFault() {
		if f.StallAfter > 0 && f.StallAfter < br.length {
			stallAt = f.StallAfter
		}
		if f.TruncateAfter > 0 && f.TruncateAfter < br.length {
			cutAt, cutKind = f.TruncateAfter, "truncate"
		}
		if f.ResetAfter > 0 && f.ResetAfter < br.length && (cutAt < 0 || f.ResetAfter <= cutAt) {
			cutAt, cutKind = f.ResetAfter, "reset"
		}
		if (stallAt >= 0 || cutAt >= 0) && !f.takeBodyFault() {
			stallAt, cutAt = -1, -1
		}
	}
	chunk := int64(bodyChunk)
	var p *pacer
	if f.Rate > 0 {
		chunk = pacedChunk(f.Rate)
		p = &pacer{rate: f.Rate, burst: chunk, start: time.Now()}
	}
	if f.uplink != nil {
		chunk = min(chunk, f.uplink.burst)
	}
	buf := bufPool.Get().(*[bodyChunk]byte)
	defer bufPool.Put(buf)
	bytesSent := f.bytes[res.Path]
	if br.length > 0 {
		f.placeCorruption(br.start)
	}

	for pos := int64(0); pos < br.length; {
		n := min(chunk, br.length-pos)
		if stallAt > pos {
			n = min(n, stallAt-pos)
		}
		if cutAt > pos {
			n = min(n, cutAt-pos)
		}
		if f.ChangeAfterBytes > 0 {
			if left := f.ChangeAfterBytes - bytesSent.Load(); left > 0 {
				n = min(n, left)
			}
		}
		if pos == stallAt || pos == cutAt {
			n = 0
		}
		if n > 0 {
			if p != nil {
				if d := p.delay(n, time.Since(p.start)); d > 0 && !s.sleep(ctx, d) {
					return
				}
				p.sent += n
			}
			// The response's own rate first: a chunk reserved from the
			// shared bucket is not then held back while others wait.
			if f.uplink != nil {
				if d := f.uplink.reserve(n, time.Now()); d > 0 && !s.sleep(ctx, d) {
					return
				}
			}
			if m, err := content.ReadAt(buf[:n], br.start+pos); int64(m) < n {
				s.logError(r, "reading content", err)
				panic(http.ErrAbortHandler)
			}
			flipped := f.corrupt(buf[:n], br.start+pos)
			m, err := w.Write(buf[:n])
			if flipped && f.corrupts(br.start+pos, int64(m)) {
				rec.Fault = "corrupt"
			}
			pos += int64(m)
			rec.Bytes += int64(m)
			s.rec.bytes.Add(int64(m))
			if sent := bytesSent.Add(int64(m)); f.ChangeAfterBytes > 0 && sent >= f.ChangeAfterBytes &&
				f.fired[res.Path].CompareAndSwap(false, true) {
				s.autoChange(f, res)
			}
			if err != nil {
				return
			}
		}
		if pos == stallAt {
			rec.Fault = "stall"
			rc.Flush()
			if !s.sleep(ctx, f.StallFor) {
				return
			}
			stallAt = -1
			if p != nil {
				// The stall does not earn the connection a burst.
				p.start, p.sent = time.Now(), 0
			}
		}
		if pos == cutAt {
			rec.Fault = cutKind
			s.cut(rc, r, cutKind == "reset")
			return
		}
	}
}

// cut flushes what the response wrote and closes the connection: with a
// TCP reset, or cleanly (TLS close_notify, then FIN).
func (s *Server) cut(rc *http.ResponseController, r *http.Request, reset bool) {
	rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		s.logError(r, "taking over the connection", err)
		panic(http.ErrAbortHandler)
	}
	if !reset {
		conn.Close()
		return
	}
	raw := conn
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		// Let the client receive what was written: a reset discards
		// unsent data.
		waitSent(tcp, 2*time.Second)
		tcp.SetLinger(0)
	}
	raw.Close()
}

// logError logs a failure that the client cannot be told about.
func (s *Server) logError(r *http.Request, what string, err error) {
	if s.logger != nil {
		s.logger.LogAttrs(r.Context(), slog.LevelDebug, "faultserver: "+what,
			slog.String("path", r.URL.Path), slog.Any("error", err))
	}
}

// pacer is a token bucket that starts full: at time t after start, burst +
// rate*t bytes may have been sent in all. It compares with the clock rather
// than summing sleeps, so oversleeping does not add up.
type pacer struct {
	rate, burst int64
	start       time.Time
	sent        int64
}

// delay returns how long to wait, elapsed after start, before sending n
// more bytes.
func (p *pacer) delay(n int64, elapsed time.Duration) time.Duration {
	need := p.sent + n - p.burst
	if need <= 0 {
		return 0
	}
	at := time.Duration(float64(need) / float64(p.rate) * float64(time.Second))
	return at - elapsed
}

// sharedPacer is a token bucket that several responses draw on at once:
// each reserves the bytes of its next write and waits until they are due,
// so that the writes of all of them together keep to rate, with bursts of
// at most burst bytes. Reservations are served in the order they are made,
// which shares the rate about equally among responses writing chunks of
// the same size. Unlike pacer it starts over when it runs idle, so an idle
// server does not save up a burst. It is safe for concurrent use.
type sharedPacer struct {
	rate, burst int64

	mu sync.Mutex
	// epoch and reserved give the moment all reservations so far are due:
	// epoch + reserved/rate. Kept as a count rather than a sum of
	// durations, so that rounding does not add up.
	epoch    time.Time
	reserved int64
}

func newSharedPacer(rate, burst int64) *sharedPacer {
	return &sharedPacer{rate: rate, burst: burst}
}

// bytesTime is how long sending n bytes at rate takes.
func (p *sharedPacer) bytesTime(n int64) time.Duration {
	return time.Duration(float64(n) / float64(p.rate) * float64(time.Second))
}

// reserve takes n bytes from the bucket at now and returns how long to
// wait before sending them (zero or less: at once).
func (p *sharedPacer) reserve(n int64, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.epoch.IsZero() || p.epoch.Add(p.bytesTime(p.reserved)).Before(now) {
		p.epoch, p.reserved = now, 0
	}
	p.reserved += n
	return p.epoch.Add(p.bytesTime(p.reserved - p.burst)).Sub(now)
}
