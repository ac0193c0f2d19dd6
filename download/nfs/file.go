package nfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Procedures used (RFC 1813, RFC 1833).
const (
	procGetPort = 3
	procMNT     = 1
	procUMNT    = 3
	procGetAttr = 1
	procLookup  = 3
	procRead    = 6
	procFSInfo  = 19
)

// umountTimeout bounds Close's UMNT call.
const umountTimeout = 10 * time.Second

// defaultNFSPort is where nfsd listens when the portmapper does not say.
const defaultNFSPort = 2049

// File is a regular file on an NFSv3 server, opened without mounting it in
// the kernel. ReadAt, ReadAtContext, Size, Validators, Location and Export
// are safe for concurrent use; Close may be called concurrently with them,
// and reads then fail with ErrClosed or a connection error.
type File struct {
	loc       Location
	export    string
	server    string // nfsd host:port, for errors
	mountAddr string
	cfg       config
	fh        []byte
	attr      fattr3
	rsize     int
	pool      *pool
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// NFSTime is an NFSv3 time: seconds and nanoseconds since the epoch.
type NFSTime struct{ Sec, Nsec uint32 }

// Validators identify one version of a file: if any field differs between
// two opens, the bytes may differ and a partial download must start over.
// The value is comparable with ==; String gives a stable text form to
// store beside a partial download. Ctime is included because, unlike
// mtime, a client cannot set it back.
type Validators struct {
	FSID, FileID uint64
	Size         int64
	Mtime, Ctime NFSTime
}

// String is "nfs3:fsid=…,fileid=…,size=…,mtime=S.N,ctime=S.N".
func (v Validators) String() string {
	return fmt.Sprintf("nfs3:fsid=%x,fileid=%d,size=%d,mtime=%d.%09d,ctime=%d.%09d",
		v.FSID, v.FileID, v.Size, v.Mtime.Sec, v.Mtime.Nsec, v.Ctime.Sec, v.Ctime.Nsec)
}

func validatorsOf(a fattr3) Validators {
	return Validators{
		FSID: a.FSID, FileID: a.FileID, Size: int64(a.Size),
		Mtime: NFSTime{a.Mtime[0], a.Mtime[1]}, Ctime: NFSTime{a.Ctime[0], a.Ctime[1]},
	}
}

// Size is the file's size in bytes when it was opened.
func (f *File) Size() int64 { return int64(f.attr.Size) }

// Validators are the file's identity and version when it was opened.
func (f *File) Validators() Validators { return validatorsOf(f.attr) }

// Location is the parsed URL the File was opened from.
func (f *File) Location() Location { return f.loc }

// Export is the directory that was mounted; the rest of the path was
// looked up below it.
func (f *File) Export() string { return f.export }

// ReadSize is the byte count one READ asks for.
func (f *File) ReadSize() int { return f.rsize }

// Open mounts the export holding the file named by rawURL
// (nfs://host[:port]/export/path/file), looks the file up and checks it is
// a regular file. No kernel mount and no root are needed (unless
// WithPrivilegedPort). Where the export ends is found by asking MOUNT for
// each directory on the path, longest first (see
// Location.ExportCandidates). ctx bounds Open only; reads take their own
// context. Errors are *URLError, or *Error naming the operation, server,
// path and NFS status. The caller must Close the File.
func Open(ctx context.Context, rawURL string, opts ...Option) (*File, error) {
	loc, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	mountAddr, nfsAddr, err := ports(ctx, &cfg, loc)
	if err != nil {
		return nil, err
	}
	f := &File{loc: loc, server: nfsAddr, mountAddr: mountAddr, cfg: cfg}
	root, used, err := f.mount(ctx)
	if err != nil {
		return nil, err
	}
	f.pool = newPool(&f.cfg, nfsAddr, int(cfg.maxRead))
	if err := f.lookup(ctx, root, loc.Names[used:]); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := f.fsinfo(ctx, root); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// ports finds mountd's and nfsd's addresses: the URL's port for both, or
// the portmapper's answers.
func ports(ctx context.Context, cfg *config, loc Location) (mountAddr, nfsAddr string, err error) {
	if loc.Port != 0 {
		a := hostPort(loc.Host, loc.Port)
		return a, a, nil
	}
	pmAddr := hostPort(loc.Host, cfg.portmapPort)
	fail := func(err error) (string, string, error) {
		return "", "", &Error{Op: "portmap", Server: pmAddr, Path: loc.Path(), Err: err}
	}
	c, err := dialRPC(ctx, cfg, pmAddr, 0)
	if err != nil {
		return fail(fmt.Errorf("cannot reach the portmapper (give the port in the URL if the server has none): %w", err))
	}
	defer c.Close()
	getport := func(prog, vers uint32) (int, error) {
		d, err := c.call(ctx, progPortmap, versPortmap, procGetPort,
			enc(nil).u32(prog).u32(vers).u32(6).u32(0))
		if err != nil {
			return 0, err
		}
		p := d.u32()
		if d.err != nil || p > 65535 {
			return 0, fmt.Errorf("%w: bad GETPORT reply", ErrProtocol)
		}
		return int(p), nil
	}
	mp, err := getport(progMount, versMount)
	if err != nil {
		return fail(err)
	}
	if mp == 0 {
		return fail(errors.New("the portmapper lists no MOUNT v3 over TCP: is mountd running?"))
	}
	np, err := getport(progNFS, versNFS)
	if err != nil {
		return fail(err)
	}
	if np == 0 {
		np = defaultNFSPort
	}
	return hostPort(loc.Host, mp), hostPort(loc.Host, np), nil
}

// mount tries MNT on each candidate export and returns the root handle
// and how many path names the export covers.
func (f *File) mount(ctx context.Context) ([]byte, int, error) {
	c, err := dialRPC(ctx, &f.cfg, f.mountAddr, 0)
	if err != nil {
		return nil, 0, &Error{Op: "dial", Server: f.mountAddr, Path: f.loc.Path(), Err: err}
	}
	defer c.Close()
	var (
		tried []string
		worst Status
	)
	cands := f.loc.ExportCandidates()
	for i, dir := range cands {
		d, err := c.call(ctx, progMount, versMount, procMNT, enc(nil).str(dir))
		if err != nil {
			return nil, 0, &Error{Op: "MNT", Server: f.mountAddr, Path: dir, Err: err}
		}
		st := Status(d.u32())
		if d.err != nil {
			return nil, 0, &Error{Op: "MNT", Server: f.mountAddr, Path: dir, Err: fmt.Errorf("%w: %v", ErrProtocol, d.err)}
		}
		if st != StatusOK {
			tried = append(tried, dir+": "+st.mountString())
			if worst == StatusOK || worst == StatusNoEnt {
				worst = st
			}
			continue
		}
		fh := d.opaque(fhSize3)
		n := d.u32()
		var flavors []uint32
		for j := uint32(0); j < n && j < 64 && d.err == nil; j++ {
			flavors = append(flavors, d.u32())
		}
		if d.err != nil || len(fh) == 0 {
			return nil, 0, &Error{Op: "MNT", Server: f.mountAddr, Path: dir, Err: fmt.Errorf("%w: bad MNT reply", ErrProtocol)}
		}
		if len(flavors) > 0 && !containsFlavor(flavors) {
			return nil, 0, &Error{Op: "MNT", Server: f.mountAddr, Path: dir,
				Err: fmt.Errorf("%w: the export accepts only auth flavors %v; this client speaks AUTH_NONE and AUTH_UNIX", ErrProtocol, flavors)}
		}
		f.export = dir
		return fh, len(cands) - 1 - i, nil
	}
	return nil, 0, &Error{Op: "MNT", Server: f.mountAddr, Path: f.loc.Path(), Status: worst,
		Err: fmt.Errorf("%w (tried %s)", ErrNotExported, strings.Join(tried, ", "))}
}

func containsFlavor(fl []uint32) bool {
	for _, x := range fl {
		if x == 0 || x == 1 {
			return true
		}
	}
	return false
}

// nfsCall runs one NFS procedure on a pooled connection and reads its
// status; a failed transport closes the connection.
func (f *File) nfsCall(ctx context.Context, op, path string, proc uint32, args []byte, parse func(d *dec, st Status) error) error {
	c, err := f.pool.get(ctx)
	if err != nil {
		return &Error{Op: op, Server: f.server, Path: path, Err: err}
	}
	d, err := c.call(ctx, progNFS, versNFS, proc, args)
	if err != nil {
		f.pool.put(c, false)
		return &Error{Op: op, Server: f.server, Path: path, Err: err}
	}
	st := Status(d.u32())
	err = parse(d, st)
	if d.err != nil {
		f.pool.put(c, false)
		return &Error{Op: op, Server: f.server, Path: path, Err: fmt.Errorf("%w: %v", ErrProtocol, d.err)}
	}
	f.pool.put(c, true)
	if err != nil {
		return err
	}
	if st != StatusOK {
		return &Error{Op: op, Server: f.server, Path: path, Status: st}
	}
	return nil
}

func (f *File) lookup(ctx context.Context, fh []byte, names []string) error {
	path := f.export
	for _, name := range names {
		path = strings.TrimSuffix(path, "/") + "/" + name
		err := f.nfsCall(ctx, "LOOKUP", path, procLookup, enc(nil).opaque(fh).str(name), func(d *dec, st Status) error {
			if st == StatusOK {
				fh = d.opaque(fhSize3)
				d.postOpAttr()
			}
			d.postOpAttr() // directory's attributes
			return nil
		})
		if err != nil {
			return err
		}
	}
	path = f.loc.Path()
	var attr fattr3
	err := f.nfsCall(ctx, "GETATTR", path, procGetAttr, enc(nil).opaque(fh), func(d *dec, st Status) error {
		if st == StatusOK {
			attr = d.fattr()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if attr.Type != nf3Reg {
		hint := ""
		if attr.Type == nf3Lnk {
			hint = "; symbolic links are not followed, name the target"
		}
		return &Error{Op: "open", Server: f.server, Path: path,
			Err: fmt.Errorf("%w: it is %s%s", ErrNotRegular, typeName(attr.Type), hint)}
	}
	if attr.Size > 1<<62 {
		return &Error{Op: "open", Server: f.server, Path: path, Err: fmt.Errorf("%w: size %d", ErrProtocol, attr.Size)}
	}
	f.fh, f.attr = fh, attr
	return nil
}

func (f *File) fsinfo(ctx context.Context, root []byte) error {
	var rtmax, rtpref uint32
	err := f.nfsCall(ctx, "FSINFO", f.export, procFSInfo, enc(nil).opaque(root), func(d *dec, st Status) error {
		d.postOpAttr()
		if st == StatusOK {
			rtmax, rtpref = d.u32(), d.u32()
		}
		return nil
	})
	if err != nil {
		return err
	}
	size := f.cfg.maxRead
	if rtpref != 0 && rtpref < size {
		size = rtpref
	}
	if rtmax != 0 && rtmax < size {
		size = rtmax
	}
	if size < 512 {
		size = 512
	}
	f.rsize = int(size)
	return nil
}

// ReadAt reads len(p) bytes at off, as io.ReaderAt: fewer bytes only with
// an error, io.EOF at the end of the file. It is ReadAtContext with
// context.Background(); a stalled server still fails it after the idle
// timeout.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	return f.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt that ctx can cancel. It issues READs of at most
// ReadSize bytes one after another on one pooled connection at a time;
// concurrent calls use up to WithConnections connections in parallel. A
// READ whose attributes show a different file version than Open saw fails
// with an error matching ErrChanged.
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &Error{Op: "READ", Server: f.server, Path: f.loc.Path(), Err: errors.New("negative offset")}
	}
	n := 0
	for n < len(p) {
		if f.closed.Load() {
			return n, &Error{Op: "READ", Server: f.server, Path: f.loc.Path(), Err: ErrClosed}
		}
		want := min(len(p)-n, f.rsize)
		got, eof, err := f.read(ctx, p[n:n+want], off+int64(n))
		n += got
		if err != nil {
			return n, err
		}
		if eof && n < len(p) {
			return n, io.EOF
		}
		if got == 0 && !eof {
			return n, &Error{Op: "READ", Server: f.server, Path: f.loc.Path(),
				Err: fmt.Errorf("%w: empty READ reply before the end of the file", ErrProtocol)}
		}
	}
	return n, nil
}

func (f *File) read(ctx context.Context, buf []byte, off int64) (int, bool, error) {
	var (
		got int
		eof bool
	)
	path := f.loc.Path()
	err := f.nfsCall(ctx, "READ", path, procRead, enc(nil).opaque(f.fh).u64(uint64(off)).u32(uint32(len(buf))), func(d *dec, st Status) error {
		attr, ok := d.postOpAttr()
		if st != StatusOK {
			return nil
		}
		count := d.u32()
		eof = d.bool()
		data := d.opaque(len(buf))
		if d.err != nil {
			return nil
		}
		if int(count) != len(data) {
			d.err = fmt.Errorf("READ count %d but %d bytes of data", count, len(data))
			return nil
		}
		got = copy(buf, data)
		if ok && validatorsOf(attr) != validatorsOf(f.attr) {
			return &Error{Op: "READ", Server: f.server, Path: path,
				Err: fmt.Errorf("%w: was %v, now %v", ErrChanged, validatorsOf(f.attr), validatorsOf(attr))}
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return got, eof, nil
}

// Close unmounts (UMNT, which only updates the server's list of mounts,
// best effort) and closes every connection, interrupting reads in
// flight. It returns the UMNT error, if any; the File is closed either
// way. Later calls return nil.
func (f *File) Close() error {
	f.closeOnce.Do(func() {
		f.closed.Store(true)
		if f.pool != nil {
			f.pool.close()
		}
		if f.export == "" {
			return
		}
		// UMNT only tidies the server's list of mounts: not worth a long
		// wait on a server that is gone or stalled.
		ctx, cancel := context.WithTimeout(context.Background(), min(f.cfg.connectTimeout+f.cfg.idleTimeout, umountTimeout))
		defer cancel()
		c, err := dialRPC(ctx, &f.cfg, f.mountAddr, 0)
		if err == nil {
			_, err = c.call(ctx, progMount, versMount, procUMNT, enc(nil).str(f.export))
			_ = c.Close()
		}
		if err != nil {
			f.closeErr = &Error{Op: "UMNT", Server: f.mountAddr, Path: f.export, Err: err}
		}
	})
	return f.closeErr
}

// pool holds the connections to nfsd, each carrying one call at a time.
type pool struct {
	cfg      *config
	addr     string
	maxReply int
	sem      chan struct{}

	mu     sync.Mutex
	idle   []*rpcConn
	all    map[*rpcConn]struct{}
	closed bool
}

func newPool(cfg *config, addr string, maxReply int) *pool {
	return &pool{cfg: cfg, addr: addr, maxReply: maxReply,
		sem: make(chan struct{}, cfg.conns), all: map[*rpcConn]struct{}{}}
}

func (p *pool) get(ctx context.Context) (*rpcConn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.sem
		return nil, ErrClosed
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	c, err := dialRPC(ctx, p.cfg, p.addr, p.maxReply)
	if err != nil {
		<-p.sem
		return nil, fmt.Errorf("dial: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		<-p.sem
		return nil, ErrClosed
	}
	p.all[c] = struct{}{}
	return c, nil
}

// put returns c; a connection whose call failed is closed, since a reply
// may still be on its way and would be taken for the next call's.
func (p *pool) put(c *rpcConn, ok bool) {
	p.mu.Lock()
	if ok && !p.closed {
		p.idle = append(p.idle, c)
	} else {
		delete(p.all, c)
		_ = c.Close()
	}
	p.mu.Unlock()
	<-p.sem
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for c := range p.all {
		_ = c.Close()
	}
	p.all = map[*rpcConn]struct{}{}
	p.idle = nil
}
