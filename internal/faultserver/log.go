package faultserver

import (
	"sync"
	"sync/atomic"
	"time"
)

// Request is the server's record of one request, for assertions.
type Request struct {
	// Conn numbers the connection the request came on, from 1 in order of
	// acceptance, so tests can tell reused connections from new ones.
	Conn uint64
	// Scheme ("http" or "https") and Host (IP address, no port) name the
	// listener that took the request.
	Scheme, Host string
	Method, Path string
	// Range, IfRange and AcceptEncoding are the request's headers.
	Range, IfRange, AcceptEncoding string
	// Status is the status sent; 0 if the request ended before headers
	// (the client went away during Latency).
	Status int
	// Bytes is the number of body bytes written.
	Bytes int64
	// Fault names what shaped the response ("" for nothing): "fail",
	// "status", "redirect", "no-ranges", "always-200",
	// "wrong-content-range", "gzip", "corrupt" (bytes of
	// [Faults.CorruptOffset] went out flipped), "reset", "truncate" or
	// "stall" (the last of them that applied).
	Fault string
	// Start is when the request arrived; Duration how long the handler ran.
	Start    time.Time
	Duration time.Duration
}

// MaxLogEntries bounds the request log: beyond it, the oldest entries are
// dropped, so a long-running standalone server does not grow without end.
const MaxLogEntries = 100000

// Stats are the server's counters, since it started or [Server.ResetStats].
type Stats struct {
	// Requests is the number of requests received.
	Requests int64
	// BytesServed is the number of body bytes written.
	BytesServed int64
	// Conns is the number of connections accepted; ActiveConns those open
	// now, PeakConns the most open at once.
	Conns, ActiveConns, PeakConns int64
	// ActiveRequests are the requests being handled now; PeakRequests the
	// most at once.
	ActiveRequests, PeakRequests int64
}

// recorder keeps the log and the counters. It is safe for concurrent use.
type recorder struct {
	requests, bytes, conns atomic.Int64
	activeConns, peakConns atomic.Int64
	activeReqs, peakReqs   atomic.Int64

	mu  sync.Mutex
	log []Request
}

// raise sets peak to at least v.
func raise(peak *atomic.Int64, v int64) {
	for {
		p := peak.Load()
		if v <= p || peak.CompareAndSwap(p, v) {
			return
		}
	}
}

func (r *recorder) connOpened() {
	r.conns.Add(1)
	raise(&r.peakConns, r.activeConns.Add(1))
}

func (r *recorder) connClosed() { r.activeConns.Add(-1) }

func (r *recorder) requestStarted() {
	r.requests.Add(1)
	raise(&r.peakReqs, r.activeReqs.Add(1))
}

func (r *recorder) requestDone(req Request) {
	r.activeReqs.Add(-1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.log) >= MaxLogEntries {
		r.log = append(r.log[:0], r.log[len(r.log)-MaxLogEntries/2:]...)
	}
	r.log = append(r.log, req)
}

func (r *recorder) snapshot() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.log...)
}

func (r *recorder) stats() Stats {
	return Stats{
		Requests:       r.requests.Load(),
		BytesServed:    r.bytes.Load(),
		Conns:          r.conns.Load(),
		ActiveConns:    r.activeConns.Load(),
		PeakConns:      r.peakConns.Load(),
		ActiveRequests: r.activeReqs.Load(),
		PeakRequests:   r.peakReqs.Load(),
	}
}

// reset clears the log and the counters, keeping the active counts (the
// peaks restart from them).
func (r *recorder) reset() {
	r.mu.Lock()
	r.log = nil
	r.mu.Unlock()
	r.requests.Store(0)
	r.bytes.Store(0)
	r.conns.Store(0)
	r.peakConns.Store(r.activeConns.Load())
	r.peakReqs.Store(r.activeReqs.Load())
}
