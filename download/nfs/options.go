package nfs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Defaults of Open with no options.
const (
	// DefaultConnectTimeout bounds each TCP connect (portmapper, mountd,
	// nfsd), as download.DefaultConnectTimeout does for HTTP.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultIdleTimeout is how long an RPC may wait with no byte moving
	// before it fails, as download.DefaultSocketTimeout does for HTTP.
	DefaultIdleTimeout = 5 * time.Second
	// DefaultMaxReadSize caps the bytes asked for by one READ; the size
	// used is the server's preferred read size (FSINFO rtpref), capped by
	// this and by rtmax.
	DefaultMaxReadSize = 1 << 20
	// DefaultConnections is how many TCP connections to nfsd a File keeps
	// at most, one RPC in flight on each; concurrent ReadAt calls beyond
	// it wait for a free connection.
	DefaultConnections = 4
	// DefaultUID and DefaultGID are the AUTH_UNIX credentials: nobody and
	// nogroup. Templates are world-readable on the servers that serve
	// them, and a root uid gains nothing on a server with root_squash
	// (the default) while it would bypass file modes on one without.
	DefaultUID = 65534
	DefaultGID = 65534
)

// Dialer opens the TCP connections. The download engine passes its
// netguard dialer, so the address policy is checked on every resolved
// address of every connection: portmapper, mountd and nfsd alike.
// *net.Dialer and *netguard.Dialer satisfy it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Option configures Open.
type Option func(*config) error

type config struct {
	dialer         Dialer
	privileged     func(local *net.TCPAddr) (Dialer, error)
	uid, gid       uint32
	machine        string
	connectTimeout time.Duration
	idleTimeout    time.Duration
	maxRead        uint32
	conns          int
	portmapPort    int
}

func defaultConfig() config {
	host, _ := os.Hostname()
	if host == "" || len(host) > 255 {
		host = "directdl"
	}
	return config{
		dialer:         &net.Dialer{},
		uid:            DefaultUID,
		gid:            DefaultGID,
		machine:        host,
		connectTimeout: DefaultConnectTimeout,
		idleTimeout:    DefaultIdleTimeout,
		maxRead:        DefaultMaxReadSize,
		conns:          DefaultConnections,
		portmapPort:    111,
	}
}

// WithDialer sets the dialer of every TCP connection. Default: a plain
// net.Dialer, which applies no address policy.
func WithDialer(d Dialer) Option {
	return func(c *config) error {
		if d == nil {
			return errors.New("nfs: WithDialer(nil)")
		}
		c.dialer = d
		return nil
	}
}

// WithPrivilegedPort makes every connection come from a source port below
// 1024, for servers that export with "secure" (Linux's default) and refuse
// other ports. Binding such a port needs root or CAP_NET_BIND_SERVICE.
// newDialer is called with the local address to bind for each connection
// and returns the dialer to use, so the engine can build a policy-checked
// dialer around it (netguard.NewDialer(policy, &net.Dialer{LocalAddr:
// local})); nil means a plain net.Dialer. The dialer given by WithDialer
// is then unused. Default: off, ephemeral source ports.
func WithPrivilegedPort(newDialer func(local *net.TCPAddr) (Dialer, error)) Option {
	return func(c *config) error {
		if newDialer == nil {
			newDialer = func(local *net.TCPAddr) (Dialer, error) {
				return &net.Dialer{LocalAddr: local}, nil
			}
		}
		c.privileged = newDialer
		return nil
	}
}

// WithAuthUnix sets the AUTH_UNIX uid and gid sent with every call.
// Default: DefaultUID, DefaultGID (65534, nobody).
func WithAuthUnix(uid, gid uint32) Option {
	return func(c *config) error {
		c.uid, c.gid = uid, gid
		return nil
	}
}

// WithTimeouts sets the connect timeout and the idle timeout of each RPC.
// Defaults: DefaultConnectTimeout and DefaultIdleTimeout, 5s each.
func WithTimeouts(connect, idle time.Duration) Option {
	return func(c *config) error {
		if connect <= 0 || idle <= 0 {
			return fmt.Errorf("nfs: timeouts must be positive, got connect %v, idle %v", connect, idle)
		}
		c.connectTimeout, c.idleTimeout = connect, idle
		return nil
	}
}

// WithMaxReadSize caps the bytes one READ asks for. n must be 4096 to
// 16 MiB. Default: DefaultMaxReadSize (1 MiB).
func WithMaxReadSize(n int) Option {
	return func(c *config) error {
		if n < 4096 || n > 16<<20 {
			return fmt.Errorf("nfs: read size %d is not in 4096..16 MiB", n)
		}
		c.maxRead = uint32(n)
		return nil
	}
}

// WithConnections sets how many connections to nfsd a File uses at most.
// One means every READ of the File is serialized. Default:
// DefaultConnections (4).
func WithConnections(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 64 {
			return fmt.Errorf("nfs: connections %d is not in 1..64", n)
		}
		c.conns = n
		return nil
	}
}

// withPortmapperPort moves the portmapper off port 111, which tests cannot
// take.
func withPortmapperPort(port int) Option {
	return func(c *config) error {
		c.portmapPort = port
		return nil
	}
}
