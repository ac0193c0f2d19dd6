package nfs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directdl/directdl/download/nfs"
	"github.com/directdl/directdl/download/nfs/nfstest"
	"github.com/directdl/directdl/internal/netguard"
)

// hangGuard fails the test if fn does not return: the tests assert that
// a dead server gives an error rather than a hang, not how fast.
const hangGuard = 60 * time.Second

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t testing.TB, url string, opts ...nfs.Option) *nfs.File {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	f, err := nfs.Open(ctx, url, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// readParallel reads f with n readers, each reading its own quarter in
// chunks of chunk bytes.
func readParallel(f *nfs.File, n, chunk int) ([]byte, error) {
	size := f.Size()
	out := make([]byte, size)
	part := (size + int64(n) - 1) / int64(n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start, end := int64(i)*part, min(int64(i+1)*part, size)
			for off := start; off < end; off += int64(chunk) {
				buf := out[off:min(off+int64(chunk), end)]
				if _, err := f.ReadAt(buf, off); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func TestReadParallel(t *testing.T) {
	data := randomBytes(t, 8<<20)
	srv := nfstest.New(t, map[string][]byte{"templates/big.qcow2": data})
	f := open(t, srv.URL("templates/big.qcow2"))
	if f.Size() != int64(len(data)) {
		t.Fatalf("Size = %d, want %d", f.Size(), len(data))
	}
	if f.Export() != nfstest.Export {
		t.Errorf("Export = %q, want %q", f.Export(), nfstest.Export)
	}
	if f.ReadSize() != nfs.DefaultMaxReadSize {
		t.Errorf("ReadSize = %d, want the 1 MiB cap of the server's 1 GiB rtpref", f.ReadSize())
	}
	got, err := readParallel(f, 4, 3<<20+17)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("bytes read differ from the file's")
	}
	mounts := srv.Mounts()
	want := []string{"/srv/export/templates", "/srv/export"}
	if strings.Join(mounts, ",") != strings.Join(want, ",") {
		t.Errorf("MNT calls = %q, want %q (longest prefix first)", mounts, want)
	}

	// A second open of the same file has the same validators; another
	// file has others.
	again := open(t, srv.URL("templates/big.qcow2"))
	if again.Validators() != f.Validators() {
		t.Errorf("validators differ between opens: %v and %v", again.Validators(), f.Validators())
	}
	if v := f.Validators(); v.Size != int64(len(data)) || !strings.Contains(v.String(), "size=8388608") {
		t.Errorf("Validators = %v, want size %d", v, len(data))
	}
}

func TestSizes(t *testing.T) {
	const rsize = 4096
	files := map[string][]byte{
		"empty":  {},
		"one":    randomBytes(t, 1),
		"uneven": randomBytes(t, 3*rsize+7),
		"exact":  randomBytes(t, 2*rsize),
	}
	srv := nfstest.New(t, files)
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			f := open(t, srv.URL(name), nfs.WithMaxReadSize(rsize), nfs.WithConnections(1))
			if f.Size() != int64(len(data)) {
				t.Fatalf("Size = %d, want %d", f.Size(), len(data))
			}
			got, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes that differ from the file's %d", len(got), len(data))
			}
			// Past the end: io.ReaderAt's contract.
			buf := make([]byte, 10)
			n, err := f.ReadAt(buf, int64(len(data)))
			if n != 0 || err != io.EOF {
				t.Errorf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
			}
			if len(data) > 0 {
				n, err := f.ReadAt(make([]byte, rsize*4), int64(len(data)-1))
				if n != 1 || err != io.EOF {
					t.Errorf("ReadAt across the end = %d, %v; want 1, io.EOF", n, err)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	srv := nfstest.New(t, map[string][]byte{"dir/file": []byte("x")})
	if err := srv.FS.Symlink("dir/file", "link"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		url      string
		is       error
		status   nfs.Status
		contains []string
	}{
		{"missing file", srv.URL("dir/missing.bin"), fs.ErrNotExist, nfs.StatusNoEnt,
			[]string{"LOOKUP", "/srv/export/dir/missing.bin", "NFS3ERR_NOENT", srv.Addr}},
		{"missing dir", srv.URL("nodir/file"), fs.ErrNotExist, nfs.StatusNoEnt,
			[]string{"/srv/export/nodir", "NFS3ERR_NOENT"}},
		{"directory", srv.URL("dir"), nfs.ErrNotRegular, 0,
			[]string{"/srv/export/dir", "a directory"}},
		{"symlink", srv.URL("link"), nfs.ErrNotRegular, 0,
			[]string{"/srv/export/link", "symbolic link"}},
		{"file as directory", srv.URL("dir/file/more"), nil, nfs.StatusNotDir,
			[]string{"NFS3ERR_NOTDIR"}},
		{"not exported", "nfs://" + srv.Addr + "/other/file", nfs.ErrNotExported, nfs.StatusNoEnt,
			[]string{"MNT3ERR_NOENT", "/other", "tried"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := nfs.Open(context.Background(), tt.url)
			if err == nil {
				_ = f.Close()
				t.Fatal("Open succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not match %v", err, tt.is)
			}
			var ne *nfs.Error
			if !errors.As(err, &ne) {
				t.Fatalf("error %T is not *nfs.Error: %v", err, err)
			}
			if ne.Status != tt.status {
				t.Errorf("Status = %v, want %v", ne.Status, tt.status)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
		})
	}
}

// refusingDialer refuses every connection, as the engine's policy dialer
// does for a denied address, and counts the attempts.
type refusingDialer struct{ calls atomic.Int64 }

var errPolicy = errors.New("address denied by policy")

func (d *refusingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.calls.Add(1)
	return nil, errPolicy
}

func TestDialerRefuses(t *testing.T) {
	srv := nfstest.New(t, map[string][]byte{"f": []byte("data")})
	d := &refusingDialer{}
	_, err := nfs.Open(context.Background(), srv.URL("f"), nfs.WithDialer(d))
	if !errors.Is(err, errPolicy) {
		t.Fatalf("Open = %v, want the dialer's error", err)
	}
	if d.calls.Load() == 0 {
		t.Error("the dialer was never asked")
	}

	// The real policy dialer with the default policy refuses loopback.
	gd, err := netguard.NewDialer(netguard.Policy{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = nfs.Open(context.Background(), srv.URL("f"), nfs.WithDialer(gd))
	if !errors.Is(err, netguard.ErrDenied) {
		t.Fatalf("Open with netguard = %v, want ErrDenied", err)
	}
	if n := srv.Accepted(); n != 0 {
		t.Fatalf("server accepted %d connections through refusing dialers", n)
	}

	// And allowing loopback lets the same dialer through.
	gd, err = netguard.NewDialer(netguard.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := open(t, srv.URL("f"), nfs.WithDialer(gd))
	buf := make([]byte, 4)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "data" {
		t.Fatalf("ReadAt = %q, %v", buf, err)
	}
}

func TestBadURLConnectsNothing(t *testing.T) {
	d := &refusingDialer{}
	for _, u := range []string{
		"nfs://127.0.0.1/srv/export/../etc/passwd",
		"nfs://127.0.0.1/srv/%2e%2e/x",
		"nfs://user:pw@127.0.0.1/srv/x",
		"nfs://127.0.0.1/",
		"nfs://127.0.0.1/srv/x?a=b",
		"nfs://127.0.0.1/srv/x#frag",
		"http://127.0.0.1/srv/x",
	} {
		_, err := nfs.Open(context.Background(), u, nfs.WithDialer(d))
		if !errors.Is(err, nfs.ErrBadURL) {
			t.Errorf("Open(%q) = %v, want ErrBadURL", u, err)
		}
		if strings.Contains(err.Error(), "pw@") {
			t.Errorf("error %q shows the password", err)
		}
	}
	if n := d.calls.Load(); n != 0 {
		t.Fatalf("%d dials for refused URLs", n)
	}
}

func TestAuthUnix(t *testing.T) {
	srv := nfstest.New(t, map[string][]byte{"f": []byte("x")})
	open(t, srv.URL("f"))
	open(t, srv.URL("f"), nfs.WithAuthUnix(1000, 1001))
	creds := srv.Creds()
	if len(creds) != 2 {
		t.Fatalf("%d MNT calls, want 2", len(creds))
	}
	if c := creds[0]; c.Flavor != 1 || c.UID != nfs.DefaultUID || c.GID != nfs.DefaultGID {
		t.Errorf("default credentials = %+v, want AUTH_UNIX 65534/65534", c)
	}
	if c := creds[1]; c.Flavor != 1 || c.UID != 1000 || c.GID != 1001 {
		t.Errorf("credentials = %+v, want AUTH_UNIX 1000/1001", c)
	}
}

// TestServerKilledMidTransfer cuts the server while four readers are
// half-way: every reader must get an error, none may hang.
func TestServerKilledMidTransfer(t *testing.T) {
	data := randomBytes(t, 8<<20)
	srv := nfstest.New(t, map[string][]byte{"big": data})
	f := open(t, srv.URL("big"), nfs.WithMaxReadSize(64<<10), nfs.WithTimeouts(2*time.Second, 2*time.Second))
	const readers = 4
	part := f.Size() / readers
	var first, killed sync.WaitGroup
	first.Add(readers)
	killed.Add(1)
	errs := make(chan error, readers)
	for i := range readers {
		go func() {
			off := int64(i) * part
			buf := make([]byte, 64<<10)
			_, err := f.ReadAt(buf, off)
			first.Done()
			if err != nil {
				errs <- err
				return
			}
			killed.Wait()
			_, err = f.ReadAt(make([]byte, part-int64(len(buf))), off+int64(len(buf)))
			errs <- err
		}()
	}
	first.Wait()
	srv.Kill()
	killed.Done()
	timeout := time.After(hangGuard)
	for range readers {
		select {
		case err := <-errs:
			var ne *nfs.Error
			if !errors.As(err, &ne) || ne.Op != "READ" {
				t.Errorf("reader error = %v, want a READ *nfs.Error", err)
			}
			t.Logf("reader error: %v", err)
		case <-timeout:
			t.Fatal("a reader hung after the server was killed")
		}
	}
}

// TestServerStalls freezes the connections without closing them: the idle
// timeout must turn the silence into an error.
func TestServerStalls(t *testing.T) {
	data := randomBytes(t, 1<<20)
	srv := nfstest.New(t, map[string][]byte{"big": data})
	p := nfstest.NewStallProxy(t, srv.Addr)
	f := open(t, p.URL("big"), nfs.WithTimeouts(time.Second, 300*time.Millisecond))
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	p.Freeze()
	done := make(chan error, 1)
	go func() { _, err := f.ReadAt(buf, 4096); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("ReadAt on a stalled server = %v, want a deadline error", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("ReadAt hung on a stalled server")
	}
}

// TestServerClosesConnection has the server close its connections
// between calls: the next call fails with a READ error (an end of stream
// where the reply should be), and the one after it works on a new
// connection.
func TestServerClosesConnection(t *testing.T) {
	data := randomBytes(t, 1<<20)
	srv := nfstest.New(t, map[string][]byte{"big": data})
	p := nfstest.NewStallProxy(t, srv.Addr)
	f := open(t, p.URL("big"), nfs.WithConnections(1))
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	_, err := f.ReadAt(buf, 4096)
	var ne *nfs.Error
	if !errors.As(err, &ne) || ne.Op != "READ" || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt on a closed connection = %v, want a READ *nfs.Error at the end of the stream", err)
	}
	if _, err := f.ReadAt(buf, 4096); err != nil || !bytes.Equal(buf, data[4096:8192]) {
		t.Fatalf("ReadAt after the connection closed = %v, or other bytes", err)
	}
}

func TestReadContextCancel(t *testing.T) {
	data := randomBytes(t, 1<<20)
	srv := nfstest.New(t, map[string][]byte{"big": data})
	p := nfstest.NewStallProxy(t, srv.Addr)
	// A long idle timeout, so only the cancellation can end the read.
	f := open(t, p.URL("big"), nfs.WithTimeouts(time.Second, time.Hour))
	p.Freeze()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := f.ReadAtContext(ctx, make([]byte, 4096), 0); done <- err }()
	cancel()
	// Close's UMNT goes through the frozen proxy too; a dead backend makes
	// it fail at once instead of waiting out its timeout.
	defer srv.Kill()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ReadAtContext = %v, want context.Canceled", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("a cancelled read hung")
	}
}

func TestFileChanged(t *testing.T) {
	srv := nfstest.New(t, map[string][]byte{"f": randomBytes(t, 10000)})
	f := open(t, srv.URL("f"))
	w, err := srv.FS.OpenFile("f", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	_, err = f.ReadAt(make([]byte, 100), 0)
	if !errors.Is(err, nfs.ErrChanged) {
		t.Fatalf("ReadAt after the file grew = %v, want ErrChanged", err)
	}
	g := open(t, srv.URL("f"))
	if g.Validators() == f.Validators() {
		t.Error("validators of the grown file equal the old ones")
	}
}

func TestClose(t *testing.T) {
	srv := nfstest.New(t, map[string][]byte{"f": []byte("abc")})
	f := open(t, srv.URL("f"))
	if err := f.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, nfs.ErrClosed) {
		t.Fatalf("ReadAt after Close = %v, want ErrClosed", err)
	}
}

func TestOptionsRefused(t *testing.T) {
	for name, o := range map[string]nfs.Option{
		"read size":   nfs.WithMaxReadSize(100),
		"connections": nfs.WithConnections(0),
		"timeouts":    nfs.WithTimeouts(0, time.Second),
		"dialer":      nfs.WithDialer(nil),
	} {
		if _, err := nfs.Open(context.Background(), "nfs://127.0.0.1/x/y", o, nfs.WithDialer(&refusingDialer{})); err == nil || errors.Is(err, errPolicy) {
			t.Errorf("%s: Open = %v, want the option refused before dialing", name, err)
		}
	}
}

func benchmarkRead(b *testing.B, conns int) {
	data := randomBytes(b, 8<<20)
	srv := nfstest.New(b, map[string][]byte{"big": data})
	f := open(b, srv.URL("big"), nfs.WithConnections(conns), nfs.WithMaxReadSize(256<<10))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := readParallel(f, 4, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead1Conn(b *testing.B)  { benchmarkRead(b, 1) }
func BenchmarkRead4Conns(b *testing.B) { benchmarkRead(b, 4) }

func TestPrivilegedPort(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("binding a source port below 1024 needs root")
	}
	srv := nfstest.New(t, map[string][]byte{"f": []byte("x")})
	var locals []int
	var mu sync.Mutex
	f := open(t, srv.URL("f"), nfs.WithPrivilegedPort(func(local *net.TCPAddr) (nfs.Dialer, error) {
		mu.Lock()
		locals = append(locals, local.Port)
		mu.Unlock()
		return &net.Dialer{LocalAddr: local}, nil
	}))
	if _, err := f.ReadAt(make([]byte, 1), 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range srv.RemotePorts() {
		if p >= 1024 {
			t.Errorf("a connection came from port %d", p)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(locals) == 0 {
		t.Fatal("the dialer factory was never called")
	}
}
