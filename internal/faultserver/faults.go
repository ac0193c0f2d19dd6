package faultserver

import (
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are the misbehaviours the server shows. The zero value is a correct
// server. Replace them at any time with [Server.SetFaults], also while
// responses are in flight: each response reads the faults once, when it
// starts, except for the byte-counted resource change, which is checked as
// bytes go out.
//
// Faults that count (FailRequests, BodyFaultResponses, ChangeAfterRequests,
// ChangeAfterBytes) count from the SetFaults call that installed them.
type Faults struct {
	// NoRanges makes the server ignore Range and If-Range and answer 200
	// with the whole content, and stop sending Accept-Ranges.
	NoRanges bool
	// Always200 makes the server answer a range request with 200 and the
	// whole content, while still sending Accept-Ranges: bytes: the server
	// that claims range support but does not honour it.
	Always200 bool
	// WrongContentRange makes every 206 carry a range other than the one
	// asked for: one byte later (or earlier, at the end of the content),
	// with the body of that range. A range covering the whole content gets
	// a wrong complete length instead.
	WrongContentRange bool
	// Gzip makes the server honour Accept-Encoding: gzip: such a request
	// gets 200 with the whole content gzip-compressed, without
	// Content-Length, whatever its Range says. It lets tests check that a
	// client asks for the identity encoding.
	Gzip bool

	// Rate caps each response's body at this many bytes per second (a token
	// bucket per response, so per connection, as HTTP/1.1 serves one
	// response at a time on a connection). Zero or less: unlimited.
	Rate int64
	// ServerRate caps the body bytes of all the server's responses
	// together, on every host and listener, at this many bytes per second,
	// as a mirror's uplink would: one token bucket shared by every
	// response, from which each takes small chunks in turn, so that
	// concurrent connections get about equal shares. It applies on top of
	// Rate. Responses started before a SetFaults keep drawing on the
	// bucket of the faults they started under. Zero or less: unlimited.
	ServerRate int64
	// Latency delays the response headers of every request.
	Latency time.Duration

	// CorruptLength, when positive, makes every response body byte whose
	// offset in the content lies in [CorruptOffset,
	// CorruptOffset+CorruptLength) go out XOR 0xFF, in full (200) and
	// partial (206) responses alike, on every host, for every resource.
	// The ETag, the sizes and [Server.Version] stay those of the true
	// content, so a client notices only by hashing what it got: the mirror
	// that serves a bad piece.
	CorruptOffset, CorruptLength int64
	// CorruptFirstPiece, when positive, is a piece length that places the
	// corrupted range where the client surely reads it: in the piece where
	// the first response with a body (after SetFaults) starts, at
	// CorruptOffset from that piece's start. The range then stays there
	// for every later response. A benchmark can thus have a mirror serve
	// one bad piece whichever part of the file a client asks it for.
	CorruptFirstPiece int64

	// ResetAfter, when positive, makes the server reset the TCP connection
	// (a close with SO_LINGER 0, so the client reads ECONNRESET rather than
	// EOF) after writing this many body bytes of a response. Responses
	// shorter than that complete normally.
	ResetAfter int64
	// TruncateAfter, when positive, makes the server close the connection
	// cleanly (FIN; close_notify over TLS) after this many body bytes,
	// although Content-Length promised more.
	TruncateAfter int64
	// StallAfter, when positive, makes the server stop sending after this
	// many body bytes of a response, for StallFor, and then go on. A zero
	// StallFor stalls until the client goes away or the server closes.
	StallAfter int64
	StallFor   time.Duration
	// BodyFaultResponses, when positive, limits ResetAfter, TruncateAfter
	// and StallAfter to that many responses (those long enough to be hit);
	// later responses are whole. Zero: every response.
	BodyFaultResponses int

	// FailRequests makes the next that many requests fail with FailStatus
	// (default 503) and a short text body.
	FailRequests int
	FailStatus   int
	// RetryAfter, when positive, is sent with failures as Retry-After, in
	// whole seconds (rounded up).
	RetryAfter time.Duration

	// Status answers requests for a path (as in the URL, e.g.
	// "/file.qcow2") with that status, e.g. 403 or 404, and a short text
	// body; it applies to resources, redirect sources and unknown paths.
	Status map[string]int

	// ChangeAfterRequests, when positive, changes a resource (as
	// [Server.Change] with ChangeContent) when that many requests for it
	// have started; the request that reaches the count is the first to see
	// the new version. ChangeAfterBytes, when positive, changes it once that
	// many body bytes of it have been sent, in the middle of the response
	// that crosses the count (which goes on with the old content). Each
	// fires once per SetFaults.
	ChangeAfterRequests int
	ChangeAfterBytes    int64
	// ChangeContent makes the automatic change above replace the content as
	// well as the validators (content generated by a [Pattern] only).
	ChangeContent bool
}

// faultState is the installed Faults with their counters.
type faultState struct {
	Faults
	failLeft      atomic.Int64
	bodyFaultLeft atomic.Int64
	// requests and bytes count, per resource path, what was served since
	// SetFaults, for ChangeAfter*; fired records a change made.
	requests map[string]*atomic.Int64
	bytes    map[string]*atomic.Int64
	fired    map[string]*atomic.Bool
	// uplink is the bucket of ServerRate, nil when there is none.
	uplink *sharedPacer
	// corruptEnd is CorruptOffset+CorruptLength, saturated.
	corruptEnd int64
	// placed says where CorruptFirstPiece put the range: until then
	// nothing is corrupted; place fixes it once.
	place                  sync.Once
	placed                 atomic.Bool
	placedStart, placedEnd int64
}

// newFaultState installs f for the given resource paths.
func newFaultState(f Faults, paths []string) *faultState {
	s := &faultState{
		Faults:   f,
		requests: make(map[string]*atomic.Int64, len(paths)),
		bytes:    make(map[string]*atomic.Int64, len(paths)),
		fired:    make(map[string]*atomic.Bool, len(paths)),
	}
	// The map is copied so that a caller changing theirs afterwards cannot
	// race with the handlers.
	if f.Status != nil {
		s.Status = make(map[string]int, len(f.Status))
		for k, v := range f.Status {
			s.Status[k] = v
		}
	}
	if s.FailStatus == 0 {
		s.FailStatus = 503
	}
	if f.CorruptLength > 0 {
		s.corruptEnd = f.CorruptOffset + f.CorruptLength
		if s.corruptEnd < f.CorruptOffset {
			s.corruptEnd = math.MaxInt64
		}
	}
	if f.ServerRate > 0 {
		s.uplink = newSharedPacer(f.ServerRate, pacedChunk(f.ServerRate))
	}
	s.failLeft.Store(int64(f.FailRequests))
	s.bodyFaultLeft.Store(int64(f.BodyFaultResponses))
	for _, p := range paths {
		s.requests[p] = new(atomic.Int64)
		s.bytes[p] = new(atomic.Int64)
		s.fired[p] = new(atomic.Bool)
	}
	return s
}

// takeFailure reports whether this request is one of the FailRequests.
func (s *faultState) takeFailure() bool {
	return s.failLeft.Load() > 0 && s.failLeft.Add(-1) >= 0
}

// hasBodyFault reports whether any body fault is set.
func (s *faultState) hasBodyFault() bool {
	return s.ResetAfter > 0 || s.TruncateAfter > 0 || s.StallAfter > 0
}

// takeBodyFault reports whether a response that would be hit by a body
// fault gets it, under BodyFaultResponses.
func (s *faultState) takeBodyFault() bool {
	if s.BodyFaultResponses <= 0 {
		return true
	}
	return s.bodyFaultLeft.Load() > 0 && s.bodyFaultLeft.Add(-1) >= 0
}

// placeCorruption fixes the corrupted range of CorruptFirstPiece at the
// first response, which starts at content offset start.
func (s *faultState) placeCorruption(start int64) {
	if s.CorruptFirstPiece <= 0 || s.CorruptLength <= 0 {
		return
	}
	s.place.Do(func() {
		s.placedStart = start/s.CorruptFirstPiece*s.CorruptFirstPiece + s.CorruptOffset
		s.placedEnd = s.placedStart + s.CorruptLength
		if s.placedEnd < s.placedStart {
			s.placedEnd = math.MaxInt64
		}
		s.placed.Store(true)
	})
}

// corruptRange is the corrupted range [start, end), or ok false when
// nothing is corrupted (yet).
func (s *faultState) corruptRange() (start, end int64, ok bool) {
	switch {
	case s.CorruptLength <= 0:
		return 0, 0, false
	case s.CorruptFirstPiece > 0:
		if !s.placed.Load() {
			return 0, 0, false
		}
		return s.placedStart, s.placedEnd, true
	}
	return s.CorruptOffset, s.corruptEnd, true
}

// corrupts reports whether content bytes [off, off+n) overlap the
// corrupted range.
func (s *faultState) corrupts(off, n int64) bool {
	start, end, ok := s.corruptRange()
	return ok && n > 0 && off < end && start < off+n
}

// corrupt flips the bytes of b, which holds content from offset off, that
// lie in the corrupted range, and reports whether there were any.
func (s *faultState) corrupt(b []byte, off int64) bool {
	n := int64(len(b))
	if !s.corrupts(off, n) {
		return false
	}
	start, end, _ := s.corruptRange()
	from := max(start, off) - off
	to := min(end, off+n) - off
	for i := from; i < to; i++ {
		b[i] ^= 0xff
	}
	return true
}

// corruptReader is content as the faults send it: with the corrupted
// range flipped. hit records that a read returned corrupted bytes.
type corruptReader struct {
	r   io.ReaderAt
	f   *faultState
	hit bool
}

func (c *corruptReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(b, off)
	if c.f.corrupt(b[:n], off) {
		c.hit = true
	}
	return n, err
}

// Hop is one redirect response of a chain set with [Server.Redirect].
type Hop struct {
	// Status is the redirect status: 301, 302, 303, 307 or 308. Zero means
	// 302.
	Status int
	// Scheme is where the hop points: "http" or "https" (which needs TLS).
	// Empty: the scheme of the request being redirected.
	Scheme string
	// Host is one of the server's hosts (e.g. "127.0.0.2") the hop points
	// to. Empty: the host of the request being redirected.
	Host string
	// URL, when set, is sent verbatim as Location, and ends the chain:
	// a redirect to an address the test names, such as one a client must
	// refuse. Scheme and Host are then unused.
	URL string
}
