package netguard

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

// loopbackServer starts an httptest server listening on ip (a loopback
// address) and counts the connections it accepts.
func loopbackServer(t *testing.T, ip string, h http.Handler, tls bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	}
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = l
	var accepted atomic.Int32
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			accepted.Add(1)
		}
	}
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s, &accepted
}

// fakeDNS answers A and AAAA queries over an in-memory pipe, so tests can
// make a name resolve to anything without touching the network. answer
// gets the query type (1 for A, 28 for AAAA) and how many queries of that
// type came before.
type fakeDNS struct {
	answer func(qtype uint16, n int) []netip.Addr

	mu     sync.Mutex
	counts map[uint16]int
}

// resolver returns a pure-Go resolver whose every DNS exchange goes to f.
func (f *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			client, server := net.Pipe()
			go f.serve(server)
			return client, nil
		},
	}
}

// serve handles length-prefixed (TCP-style) DNS messages until the client
// closes the pipe; net.Pipe is not a PacketConn, so the resolver frames
// its messages as over TCP.
func (f *fakeDNS) serve(c net.Conn) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		resp := f.respond(q)
		if resp == nil {
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

// respond builds the answer to one query, or nil for a malformed one.
func (f *fakeDNS) respond(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil
	}
	qEnd := i + 5
	qtype := binary.BigEndian.Uint16(q[i+1:])

	f.mu.Lock()
	if f.counts == nil {
		f.counts = map[uint16]int{}
	}
	n := f.counts[qtype]
	f.counts[qtype]++
	f.mu.Unlock()

	var rrs [][]byte
	for _, a := range f.answer(qtype, n) {
		switch {
		case qtype == 1 && a.Is4():
			b := a.As4()
			rrs = append(rrs, b[:])
		case qtype == 28 && a.Is6():
			b := a.As16()
			rrs = append(rrs, b[:])
		}
	}
	r := append([]byte(nil), q[:2]...)                     // ID
	r = append(r, 0x81, 0x80)                              // response, recursion desired and available, no error
	r = binary.BigEndian.AppendUint16(r, 1)                // questions
	r = binary.BigEndian.AppendUint16(r, uint16(len(rrs))) // answers
	r = append(r, 0, 0, 0, 0)                              // authority, additional
	r = append(r, q[12:qEnd]...)
	for _, rd := range rrs {
		r = append(r, 0xc0, 12) // name: pointer to the question
		r = binary.BigEndian.AppendUint16(r, qtype)
		r = binary.BigEndian.AppendUint16(r, 1) // class IN
		r = binary.BigEndian.AppendUint32(r, 0) // TTL
		r = binary.BigEndian.AppendUint16(r, uint16(len(rd)))
		r = append(r, rd...)
	}
	return r
}

// count returns how many queries of qtype f has answered.
func (f *fakeDNS) count(qtype uint16) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[qtype]
}

// fixedDNS answers every A or AAAA query with addrs.
func fixedDNS(addrs ...string) *fakeDNS {
	var as []netip.Addr
	for _, s := range addrs {
		as = append(as, netip.MustParseAddr(s))
	}
	return &fakeDNS{answer: func(uint16, int) []netip.Addr { return as }}
}

// guardedClient returns a client that dials through a Dialer with p and
// resolver r (nil for the system's).
func guardedClient(t *testing.T, p Policy, r *net.Resolver) *http.Client {
	t.Helper()
	d, err := NewDialer(p, &net.Dialer{Resolver: r})
	if err != nil {
		t.Fatalf("NewDialer: %v", err)
	}
	tr := NewTransport(d, nil)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: CheckRedirect(0)}
}

var allowLoopback = Policy{Allow: Prefixes{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
