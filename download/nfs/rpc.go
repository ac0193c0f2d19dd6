package nfs

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"time"
)

// ONC RPC programs and versions (RFC 1833, RFC 1813).
const (
	progPortmap = 100000
	progNFS     = 100003
	progMount   = 100005
	versPortmap = 2
	versNFS     = 3
	versMount   = 3
)

// maxReplyOverhead bounds a reply beyond its READ data: attributes and
// headers are a few hundred bytes, so a server sending more is broken or
// hostile and is not buffered.
const maxReplyOverhead = 64 << 10

// rpcConn is one TCP connection carrying one call at a time. It is not
// safe for concurrent use; the pool hands it to one caller at a time.
type rpcConn struct {
	c       net.Conn
	r       *bufio.Reader
	idle    time.Duration
	cred    []byte // encoded opaque_auth of the credentials
	xid     uint32
	maxRepl int
	server  string
}

// dialRPC connects to addr through the configured dialer, binding a
// privileged source port when asked.
func dialRPC(ctx context.Context, cfg *config, addr string, maxReply int) (*rpcConn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.connectTimeout)
	defer cancel()
	var (
		c   net.Conn
		err error
	)
	if cfg.privileged != nil {
		c, err = dialPrivileged(ctx, cfg, addr)
	} else {
		c, err = cfg.dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	rc := &rpcConn{
		c:       c,
		idle:    cfg.idleTimeout,
		cred:    authUnix(cfg),
		xid:     rand.Uint32(),
		maxRepl: maxReply + maxReplyOverhead,
		server:  addr,
	}
	rc.r = bufio.NewReaderSize(idleReader{rc}, 64<<10)
	return rc, nil
}

// dialPrivileged tries random source ports in 600..1023 (below that sit
// well-known services) until one binds.
func dialPrivileged(ctx context.Context, cfg *config, addr string) (net.Conn, error) {
	var last error
	for range 32 {
		local := &net.TCPAddr{Port: 600 + rand.IntN(424)}
		d, err := cfg.privileged(local)
		if err != nil {
			return nil, err
		}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c, nil
		}
		last = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no free privileged source port: %w", last)
}

func authUnix(cfg *config) []byte {
	body := enc(nil).u32(uint32(time.Now().Unix())).str(cfg.machine).
		u32(cfg.uid).u32(cfg.gid).u32(1).u32(cfg.gid)
	return enc(nil).u32(1).opaque(body) // AUTH_UNIX
}

var authNull = enc(nil).u32(0).u32(0)

func (r *rpcConn) Close() error { return r.c.Close() }

// idleReader sets the read deadline afresh before each read, so the
// timeout bounds silence rather than the whole reply.
type idleReader struct{ r *rpcConn }

func (ir idleReader) Read(p []byte) (int, error) {
	if err := ir.r.c.SetReadDeadline(time.Now().Add(ir.r.idle)); err != nil {
		return 0, err
	}
	return ir.r.c.Read(p)
}

// call sends one call and returns the decoder positioned at the
// procedure's results. Any error leaves the connection unusable; the
// caller closes it. Cancelling ctx interrupts the call.
func (r *rpcConn) call(ctx context.Context, prog, vers, proc uint32, args []byte) (*dec, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = r.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	d, err := r.roundTrip(prog, vers, proc, args)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return d, err
}

func (r *rpcConn) roundTrip(prog, vers, proc uint32, args []byte) (*dec, error) {
	r.xid++
	xid := r.xid
	cred := r.cred
	if prog == progPortmap {
		cred = authNull
	}
	msg := enc(make([]byte, 4, 64+len(args))).u32(xid).u32(0).u32(2).u32(prog).u32(vers).u32(proc)
	msg = append(msg, cred...)
	msg = append(msg, authNull...)
	msg = append(msg, args...)
	binary.BigEndian.PutUint32(msg, 0x80000000|uint32(len(msg)-4))
	if err := r.c.SetWriteDeadline(time.Now().Add(r.idle)); err != nil {
		return nil, err
	}
	if _, err := r.c.Write(msg); err != nil {
		return nil, timeoutHint(err, r.idle)
	}
	body, err := r.readRecord()
	if err != nil {
		return nil, timeoutHint(err, r.idle)
	}
	d := &dec{b: body}
	if got := d.u32(); d.err == nil && got != xid {
		return nil, fmt.Errorf("%w: reply xid %#x to call %#x", ErrProtocol, got, xid)
	}
	if d.u32() != 1 { // REPLY
		return nil, fmt.Errorf("%w: not an RPC reply", ErrProtocol)
	}
	switch d.u32() {
	case 0: // MSG_ACCEPTED
		d.u32()
		d.opaque(400) // verifier
		switch st := d.u32(); {
		case d.err != nil:
		case st == 0:
			return d, nil
		case st == 1:
			return nil, fmt.Errorf("%w: program %d is not served (PROG_UNAVAIL)", ErrProtocol, prog)
		case st == 2:
			return nil, fmt.Errorf("%w: program %d version %d is not served (PROG_MISMATCH)", ErrProtocol, prog, vers)
		case st == 3:
			return nil, fmt.Errorf("%w: procedure %d is not served (PROC_UNAVAIL)", ErrProtocol, proc)
		case st == 4:
			return nil, fmt.Errorf("%w: server could not decode the arguments (GARBAGE_ARGS)", ErrProtocol)
		default:
			return nil, fmt.Errorf("%w: RPC accept status %d", ErrProtocol, st)
		}
	case 1: // MSG_DENIED
		if d.u32() == 1 {
			return nil, fmt.Errorf("%w: authentication refused (auth_stat %d): the server may want a privileged source port or other credentials", ErrProtocol, d.u32())
		}
		if d.err == nil {
			return nil, fmt.Errorf("%w: RPC version mismatch", ErrProtocol)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, d.err)
	}
	return nil, fmt.Errorf("%w: bad RPC reply status", ErrProtocol)
}

// readRecord reads one record-marked message (RFC 5531 §11), refusing
// one larger than the connection's limit.
func (r *rpcConn) readRecord() ([]byte, error) {
	var out []byte
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
			return nil, err
		}
		h := binary.BigEndian.Uint32(hdr[:])
		n := int(h & 0x7fffffff)
		if len(out)+n > r.maxRepl {
			return nil, fmt.Errorf("%w: reply of over %d bytes", ErrProtocol, r.maxRepl)
		}
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(r.r, out[start:]); err != nil {
			return nil, err
		}
		if h&0x80000000 != 0 {
			return out, nil
		}
	}
}

func timeoutHint(err error, idle time.Duration) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("no data for %v (server stalled or gone): %w", idle, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("server closed the connection: %w", err)
	}
	return err
}
