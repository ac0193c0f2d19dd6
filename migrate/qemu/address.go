package qemu

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// socketAddress is QAPI's SocketAddress (the flat form blockdev-add's nbd
// driver takes) for an inet or unix socket.
type socketAddress struct {
	Type string `json:"type,omitempty"`
	Host string `json:"host,omitempty"`
	Port string `json:"port,omitempty"`
	Path string `json:"path,omitempty"`
}

// legacy returns the address as QAPI's SocketAddressLegacy, which
// nbd-server-start takes in QEMU 7.2.
func (a socketAddress) legacy() any {
	data := a
	data.Type = ""
	return map[string]any{"type": a.Type, "data": data}
}

func (a socketAddress) String() string {
	if a.Type == "unix" {
		return "unix:" + a.Path
	}
	return net.JoinHostPort(a.Host, a.Port)
}

// parseNBDAddress parses the address the destination's NBD server listens
// on and the source connects to: "host:port" (IPv6 hosts in brackets) with
// a port from 1 to 65535, or "unix:PATH". Port 0 is refused because QEMU
// 7.2 cannot report the port it would pick.
func parseNBDAddress(s string) (socketAddress, error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if path == "" {
			return socketAddress{}, fmt.Errorf("NBD address %q: empty unix socket path", s)
		}
		return socketAddress{Type: "unix", Path: path}, nil
	}
	host, port, err := splitHostPort(s, false)
	if err != nil {
		return socketAddress{}, fmt.Errorf("NBD address %q: %w; use HOST:PORT, such as 127.0.0.1:10809, or unix:PATH", s, err)
	}
	return socketAddress{Type: "inet", Host: host, Port: port}, nil
}

// parseMigrateURI parses the migration URI the destination listens on and
// the source connects to: "tcp:HOST:PORT", where port 0 lets the
// destination pick one, or "unix:PATH". Other transports are refused:
// "exec:" would run a shell command on both hosts.
func parseMigrateURI(s string) (socketAddress, error) {
	switch {
	case strings.HasPrefix(s, "tcp:"):
		host, port, err := splitHostPort(s[len("tcp:"):], true)
		if err != nil {
			return socketAddress{}, fmt.Errorf("migration URI %q: %w; use tcp:HOST:PORT, such as tcp:127.0.0.1:49152", s, err)
		}
		return socketAddress{Type: "inet", Host: host, Port: port}, nil
	case strings.HasPrefix(s, "unix:"):
		if len(s) == len("unix:") {
			return socketAddress{}, fmt.Errorf("migration URI %q: empty unix socket path", s)
		}
		return socketAddress{Type: "unix", Path: s[len("unix:"):]}, nil
	}
	return socketAddress{}, fmt.Errorf("migration URI %q: use tcp:HOST:PORT or unix:PATH", s)
}

// migrateURI formats a as a QEMU migration URI.
func migrateURI(a socketAddress) string {
	if a.Type == "unix" {
		return "unix:" + a.Path
	}
	return "tcp:" + net.JoinHostPort(a.Host, a.Port)
}

func splitHostPort(s string, zeroPort bool) (host, port string, err error) {
	host, port, err = net.SplitHostPort(s)
	if err != nil {
		return "", "", err
	}
	if host == "" {
		return "", "", fmt.Errorf("empty host")
	}
	if strings.ContainsAny(host, ",:") && net.ParseIP(host) == nil {
		return "", "", fmt.Errorf("host %q is neither a name nor an IP address", host)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || port != strconv.FormatUint(n, 10) {
		return "", "", fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if n == 0 && !zeroPort {
		return "", "", fmt.Errorf("port 0: give the port explicitly")
	}
	return host, port, nil
}
