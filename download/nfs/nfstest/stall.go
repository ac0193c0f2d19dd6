package nfstest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// StallProxy forwards TCP connections on 127.0.0.1 to a backend until
// Freeze, after which it forwards nothing but keeps the connections open:
// a server that hangs rather than dies. Cut ends the connections of the
// moment instead, as a server that restarts between two calls does. Its
// methods are safe for concurrent use.
type StallProxy struct {
	// Addr is the proxy's host:port; point clients at it instead of the
	// backend.
	Addr   string
	frozen chan struct{}
	once   sync.Once
	cuts   atomic.Int64
}

// NewStallProxy starts a proxy to backend (host:port) that stops when t
// ends, closing every connection it holds.
func NewStallProxy(t testing.TB, backend string) *StallProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("nfstest: starting a proxy: %v", err)
	}
	p := &StallProxy{Addr: l.Addr().String(), frozen: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, b)
			mu.Unlock()
			cuts := p.cuts.Load()
			wg.Add(2)
			go func() { defer wg.Done(); p.pipe(b, c, cuts) }()
			go func() { defer wg.Done(); p.pipe(c, b, -1) }()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

// pipe copies src to dst. cuts is the number of Cut calls before the
// connection was accepted, for the client's side; -1 for the server's.
func (p *StallProxy) pipe(dst, src net.Conn, cuts int64) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			// Hold the connection open and silent until the test ends.
			_, _ = io.Copy(io.Discard, src)
			return
		default:
		}
		if n > 0 && cuts >= 0 && p.cuts.Load() > cuts {
			// A call after a Cut: drop it and close, having read it all,
			// so the client reads a clean end of stream where the reply
			// should start (not a reset, not half a reply).
			_ = src.Close()
			_ = dst.Close()
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = dst.Close()
			return
		}
	}
}

// Freeze stops all forwarding, for good.
func (p *StallProxy) Freeze() { p.once.Do(func() { close(p.frozen) }) }

// Cut ends each connection open now at its next call: the proxy drops the
// call and closes the connection, as a server that restarted (or dropped
// a connection it thought idle) does. A call already sent gets its reply
// first. Connections opened later are forwarded as before.
func (p *StallProxy) Cut() { p.cuts.Add(1) }

// URL is the nfs:// URL of name (a path relative to Export) through the
// proxy.
func (p *StallProxy) URL(name string) string { return exportURL(p.Addr, name) }
