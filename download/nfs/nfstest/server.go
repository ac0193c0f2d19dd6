package nfstest

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-git/go-billy/v5"
	gonfs "github.com/willscott/go-nfs"
	"github.com/willscott/go-nfs/helpers"
)

func init() {
	// go-nfs logs every refused lookup at info level; keep test output
	// to what the tests say.
	gonfs.Log.SetLevel(gonfs.FatalLevel)
}

// Export is the only directory a Server lets clients mount, so a client
// has to find it among the prefixes of a longer path.
const Export = "/srv/export"

// Server is go-nfs serving a temporary directory on 127.0.0.1, MOUNT and
// NFS on one port. Its methods are safe for concurrent use.
type Server struct {
	// Addr is host:port of both MOUNT and NFS; Port is its port.
	Addr string
	Port int
	// FS is the exported directory; paths are relative to Export. Tests
	// may change files through it at any time.
	FS billy.Filesystem

	dir string
	ln  *trackingListener
	h   *exportHandler
}

// Start starts a server whose export holds files (paths relative to
// Export, "/"-separated; directories are made as needed), in a new
// temporary directory. The caller must Close it.
func Start(files map[string][]byte) (*Server, error) {
	dir, err := os.MkdirTemp("", "nfstest-")
	if err != nil {
		return nil, err
	}
	fs := dirFS{root: dir}
	for name, data := range files {
		if err := writeFile(fs, name, data); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	s, err := serve(fs)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// serve starts a server for the files in fs.
func serve(fs dirFS) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tl := &trackingListener{Listener: l, conns: map[net.Conn]struct{}{}}
	h := &exportHandler{Handler: helpers.NewNullAuthHandler(fs), exports: []string{Export}}
	go func() { _ = gonfs.Serve(tl, helpers.NewCachingHandler(h, 1024)) }()
	return &Server{Addr: l.Addr().String(), Port: l.Addr().(*net.TCPAddr).Port, FS: fs, dir: fs.root, ln: tl, h: h}, nil
}

// New is Start for a test: it fails t if the server cannot start and
// closes the server when t ends.
func New(t testing.TB, files map[string][]byte) *Server {
	t.Helper()
	s, err := Start(files)
	if err != nil {
		t.Fatalf("nfstest: starting a server: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Restart starts another server for the same files, as s would be after
// a restart: same file ids and times, but another port (the old one may
// not be free again), so its URLs differ. It fails t if the server cannot
// start and closes it when t ends. s itself is left as it is; Kill it
// first for a server that really went away.
func (s *Server) Restart(t testing.TB) *Server {
	t.Helper()
	n, err := serve(dirFS{root: s.dir})
	if err != nil {
		t.Fatalf("nfstest: restarting a server: %v", err)
	}
	t.Cleanup(n.Close)
	return n
}

func writeFile(fs billy.Filesystem, name string, data []byte) error {
	if err := fs.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := fs.Create(name)
	if err != nil {
		return err
	}
	return writeClose(f, data)
}

func writeClose(f billy.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// URL is the nfs:// URL of name, a path relative to Export.
func (s *Server) URL(name string) string { return exportURL(s.Addr, name) }

func exportURL(addr, name string) string { return fmt.Sprintf("nfs://%s%s/%s", addr, Export, name) }

// Replace gives name the content data in one step: the new content is
// written beside it and renamed over it, so a READ sees either the old
// file or the new one (another file id), never a mix.
func (s *Server) Replace(name string, data []byte) error {
	f, err := s.FS.TempFile(path.Dir(name), ".nfstest-")
	if err != nil {
		return fmt.Errorf("nfstest: replacing %s: %w", name, err)
	}
	if err := writeClose(f, data); err != nil {
		_ = s.FS.Remove(f.Name())
		return fmt.Errorf("nfstest: replacing %s: %w", name, err)
	}
	if err := s.FS.Rename(f.Name(), name); err != nil {
		_ = s.FS.Remove(f.Name())
		return fmt.Errorf("nfstest: replacing %s: %w", name, err)
	}
	return nil
}

// Kill closes the listener and cuts every connection, as a server that
// dies does; the files stay, for Restart. Later calls do nothing more.
func (s *Server) Kill() { s.ln.kill() }

// Close kills the server and removes its files, which the servers
// Restart made from it (or it from) share.
func (s *Server) Close() {
	s.Kill()
	_ = os.RemoveAll(s.dir)
}

// Accepted is how many connections the server has accepted.
func (s *Server) Accepted() int64 { return s.ln.accepted.Load() }

// RemotePorts are the client ports of the connections accepted so far.
func (s *Server) RemotePorts() []int {
	s.ln.mu.Lock()
	defer s.ln.mu.Unlock()
	var out []int
	for c := range s.ln.conns {
		out = append(out, c.RemoteAddr().(*net.TCPAddr).Port)
	}
	return out
}

// Mounts are the paths of the MNT calls so far, granted or not, in order.
func (s *Server) Mounts() []string {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return slices.Clone(s.h.mounts)
}

// Creds are the credentials of the MNT calls so far, in order.
func (s *Server) Creds() []AuthUnix {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return slices.Clone(s.h.creds)
}

// AuthUnix is the credential of one call: its flavor (1 for AUTH_UNIX)
// and, for AUTH_UNIX, the uid and gid.
type AuthUnix struct {
	Flavor   uint32
	UID, GID uint32
}

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

// exportHandler mounts only its exports and records the path and
// AUTH_UNIX credentials of every MNT call.
type exportHandler struct {
	gonfs.Handler
	exports []string
	mu      sync.Mutex
	creds   []AuthUnix
	mounts  []string
}

func (h *exportHandler) Mount(ctx context.Context, c net.Conn, req gonfs.MountRequest) (gonfs.MountStatus, billy.Filesystem, []gonfs.AuthFlavor) {
	h.mu.Lock()
	h.mounts = append(h.mounts, string(req.Dirpath))
	h.creds = append(h.creds, authUnixOf(req.Header.Cred.Flavor, req.Header.Cred.Body))
	h.mu.Unlock()
	if !slices.Contains(h.exports, string(req.Dirpath)) {
		// go-nfs makes a handle even for a refused mount, so it needs a
		// filesystem; the status tells the client it got nothing.
		_, fs, _ := h.Handler.Mount(ctx, c, req)
		return gonfs.MountStatusErrNoEnt, fs, nil
	}
	return h.Handler.Mount(ctx, c, req)
}

// authUnixOf reads uid and gid from an AUTH_UNIX body (RFC 5531: stamp,
// machine name as XDR string, uid, gid, gids).
func authUnixOf(flavor uint32, b []byte) AuthUnix {
	a := AuthUnix{Flavor: flavor}
	if flavor != 1 || len(b) < 8 {
		return a
	}
	n := int(binary.BigEndian.Uint32(b[4:]))
	off := 8 + (n+3)/4*4
	if len(b) >= off+8 {
		a.UID = binary.BigEndian.Uint32(b[off:])
		a.GID = binary.BigEndian.Uint32(b[off+4:])
	}
	return a
}
