package nfs

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Limits from RFC 1813: MOUNT's dirpath is at most MNTPATHLEN bytes and a
// single name is at most NFS_MAXNAMLEN (the common server limit).
const (
	maxPathLen = 1024
	maxNameLen = 255
)

// Location is a parsed nfs:// URL. It is a plain value, safe to copy and to
// share between goroutines.
type Location struct {
	// Host is the server's name or IP address literal, without brackets.
	Host string
	// Port is the port from the URL, or 0 when the URL names none: then the
	// MOUNT and NFS ports are asked from the server's portmapper (port 111),
	// and NFS falls back to 2049 when the portmapper does not list it. A
	// port in the URL is used for both MOUNT and NFS, as userspace servers
	// that serve both programs on one port expect.
	Port int
	// Names are the path's components, percent-decoded, none empty, "." or
	// "..", none holding '/' or NUL. There is at least one.
	Names []string
}

// Path is the absolute path the URL names on the server.
func (l Location) Path() string { return "/" + strings.Join(l.Names, "/") }

// ExportCandidates are the directories Open tries to mount, longest first:
// every proper prefix of the path, down to "/". The export is the longest
// one the server lets the client mount; the rest of the path is looked up
// below it. Trying from the longest means a server that allows mounting
// subdirectories of an export (Linux does) gives the file's own directory.
func (l Location) ExportCandidates() []string {
	out := make([]string, 0, len(l.Names))
	for i := len(l.Names) - 1; i >= 0; i-- {
		out = append(out, "/"+strings.Join(l.Names[:i], "/"))
	}
	return out
}

// String is the URL in canonical form: nfs://host[:port]/path, with the
// names escaped as needed.
func (l Location) String() string {
	host := l.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if l.Port != 0 {
		host += ":" + strconv.Itoa(l.Port)
	}
	var b strings.Builder
	b.WriteString("nfs://")
	b.WriteString(host)
	for _, n := range l.Names {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(n))
	}
	return b.String()
}

// ParseURL parses nfs://host[:port]/export/path/file. It refuses user
// information, a query, a fragment, an empty path or a path that is only
// "/", "." and ".." components (even percent-encoded), encoded '/' or NUL
// inside a name, names over 255 bytes and paths over 1024 bytes. Where the
// export ends and the file path starts is decided by Open (see
// Location.ExportCandidates), not by the URL. Errors are *URLError, which
// match ErrBadURL.
func ParseURL(raw string) (Location, error) {
	bad := func(format string, a ...any) (Location, error) {
		return Location{}, &URLError{URL: raw, Reason: fmt.Sprintf(format, a...)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("%v", unwrapURLErr(err))
	}
	switch {
	case !strings.EqualFold(u.Scheme, "nfs"):
		return bad("scheme %q is not nfs", u.Scheme)
	case u.Opaque != "":
		return bad("want nfs://host/path")
	case u.User != nil:
		return bad("user information is not allowed: NFS uses AUTH_UNIX uid/gid options, not credentials in the URL")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("a query is not allowed")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("a fragment is not allowed")
	}
	host := u.Hostname()
	if host == "" {
		return bad("no host")
	}
	if strings.ContainsAny(host, "/\x00 %") {
		return bad("bad host %q", host)
	}
	loc := Location{Host: host}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port %q is not in 1-65535", p)
		}
		loc.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("empty port")
	}
	if ip := net.ParseIP(host); ip == nil && strings.Contains(host, ":") {
		return bad("bad host %q", host)
	}
	esc := u.EscapedPath()
	if esc == "" || esc == "/" {
		return bad("empty path: name the file, nfs://host/export/path/file")
	}
	if len(u.Path) > maxPathLen {
		return bad("path is %d bytes, over the 1024 of MOUNT", len(u.Path))
	}
	for _, part := range strings.Split(esc, "/") {
		if part == "" {
			continue
		}
		name, err := url.PathUnescape(part)
		if err != nil {
			return bad("bad escape in %q", part)
		}
		switch {
		case name == "." || name == "..":
			return bad("%q in the path is not allowed", name)
		case strings.ContainsAny(name, "/\x00"):
			return bad("a name holds an encoded '/' or NUL")
		case len(name) > maxNameLen:
			return bad("a name is %d bytes, over 255", len(name))
		}
		loc.Names = append(loc.Names, name)
	}
	if len(loc.Names) == 0 {
		return bad("empty path: name the file, nfs://host/export/path/file")
	}
	return loc, nil
}

func unwrapURLErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
