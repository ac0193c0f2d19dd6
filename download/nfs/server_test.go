package nfs_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-git/go-billy/v5"
	gonfs "github.com/willscott/go-nfs"
	"github.com/willscott/go-nfs/helpers"
	"github.com/willscott/go-nfs/helpers/memfs"
)

func init() {
	// The server logs every refused lookup at info level; keep test output
	// to what the tests say.
	gonfs.Log.SetLevel(gonfs.FatalLevel)
}

// testExport is the only directory the test server lets clients mount, so
// Open has to find it among the prefixes of the path.
const testExport = "/srv/export"

// testServer is go-nfs serving an in-memory filesystem on 127.0.0.1,
// MOUNT and NFS on one port.
type testServer struct {
	Addr string
	Port int
	FS   billy.Filesystem
	ln   *trackingListener
	h    *exportHandler
}

// startServer starts a server whose export root holds files (paths
// relative to the export, "/"-separated). Stop it with Kill.
func startServer(files map[string][]byte) (*testServer, error) {
	fs := memfs.New()
	for name, data := range files {
		if err := fs.MkdirAll(path.Dir(name), 0o755); err != nil {
			return nil, err
		}
		f, err := fs.Create(name)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(data); err != nil {
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tl := &trackingListener{Listener: l, conns: map[net.Conn]struct{}{}}
	h := &exportHandler{Handler: helpers.NewNullAuthHandler(fs), exports: []string{testExport}}
	go func() { _ = gonfs.Serve(tl, helpers.NewCachingHandler(h, 1024)) }()
	return &testServer{Addr: l.Addr().String(), Port: l.Addr().(*net.TCPAddr).Port, FS: fs, ln: tl, h: h}, nil
}

func newServer(t testing.TB, files map[string][]byte) *testServer {
	t.Helper()
	s, err := startServer(files)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return s
}

// URL is the nfs:// URL of name, a path relative to the export.
func (s *testServer) URL(name string) string {
	return fmt.Sprintf("nfs://%s%s/%s", s.Addr, testExport, name)
}

// Kill closes the listener and cuts every connection, as a server that
// dies does.
func (s *testServer) Kill() { s.ln.kill() }

// Accepted is how many connections the server has accepted.
func (s *testServer) Accepted() int64 { return s.ln.accepted.Load() }

// trackingListener counts and remembers the connections it accepts.
type trackingListener struct {
	net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	dead     bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return c, nil
}

func (l *trackingListener) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dead = true
	_ = l.Listener.Close()
	for c := range l.conns {
		_ = c.Close()
	}
}

// exportHandler mounts only its exports, records the AUTH_UNIX
// credentials of MNT calls, and counts MNT calls.
type exportHandler struct {
	gonfs.Handler
	exports []string
	mu      sync.Mutex
	creds   []authUnix
	mounts  []string
}

type authUnix struct {
	Flavor   uint32
	UID, GID uint32
}

func (h *exportHandler) Mount(ctx context.Context, c net.Conn, req gonfs.MountRequest) (gonfs.MountStatus, billy.Filesystem, []gonfs.AuthFlavor) {
	h.mu.Lock()
	h.mounts = append(h.mounts, string(req.Dirpath))
	a := authUnix{Flavor: req.Header.Cred.Flavor}
	if b := req.Header.Cred.Body; a.Flavor == 1 && len(b) >= 8 {
		n := int(binary.BigEndian.Uint32(b[4:]))
		off := 8 + (n+3)/4*4
		if len(b) >= off+8 {
			a.UID = binary.BigEndian.Uint32(b[off:])
			a.GID = binary.BigEndian.Uint32(b[off+4:])
		}
	}
	h.creds = append(h.creds, a)
	h.mu.Unlock()
	if !slices.Contains(h.exports, string(req.Dirpath)) {
		// go-nfs makes a handle even for a refused mount, so it needs a
		// filesystem; the status tells the client it got nothing.
		_, fs, _ := h.Handler.Mount(ctx, c, req)
		return gonfs.MountStatusErrNoEnt, fs, nil
	}
	return h.Handler.Mount(ctx, c, req)
}

func (h *exportHandler) seen() ([]string, []authUnix) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.mounts), slices.Clone(h.creds)
}

// stallProxy forwards TCP to a backend until Freeze, after which it
// forwards nothing but keeps the connections open: a server that hangs.
type stallProxy struct {
	Addr   string
	ln     net.Listener
	frozen chan struct{}
	once   sync.Once
}

func newStallProxy(t testing.TB, backend string) *stallProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{Addr: l.Addr().String(), ln: l, frozen: make(chan struct{})}
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
			wg.Add(2)
			go func() { defer wg.Done(); p.pipe(b, c) }()
			go func() { defer wg.Done(); p.pipe(c, b) }()
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

func (p *stallProxy) pipe(dst, src net.Conn) {
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

// Freeze stops all forwarding.
func (p *stallProxy) Freeze() { p.once.Do(func() { close(p.frozen) }) }

// RemotePorts are the client ports of the connections accepted so far.
func (s *testServer) RemotePorts() []int {
	s.ln.mu.Lock()
	defer s.ln.mu.Unlock()
	var out []int
	for c := range s.ln.conns {
		out = append(out, c.RemoteAddr().(*net.TCPAddr).Port)
	}
	return out
}
