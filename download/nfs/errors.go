package nfs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/directdl/directdl/internal/netguard"
)

// Sentinel errors, matched with errors.Is through the typed errors below.
var (
	// ErrBadURL: the URL is not a usable nfs:// URL (*URLError).
	ErrBadURL = errors.New("nfs: bad URL")
	// ErrNotRegular: the path names a directory, a symbolic link or
	// another non-regular file.
	ErrNotRegular = errors.New("nfs: not a regular file")
	// ErrNotExported: no directory on the path could be mounted.
	ErrNotExported = errors.New("nfs: no prefix of the path is exported to this client")
	// ErrStale: the server no longer knows the file handle (NFS3ERR_STALE
	// or NFS3ERR_BADHANDLE), for instance after the file was replaced;
	// Open the URL again.
	ErrStale = errors.New("nfs: stale file handle")
	// ErrChanged: the file's attributes changed while it was being read,
	// so the bytes may mix two versions; start over.
	ErrChanged = errors.New("nfs: file changed during the read")
	// ErrProtocol: the server sent something that is not valid ONC RPC,
	// MOUNT or NFSv3, or refused the RPC itself (program unavailable,
	// authentication error).
	ErrProtocol = errors.New("nfs: protocol error")
	// ErrClosed: the File was closed.
	ErrClosed = errors.New("nfs: file closed")
)

// URLError is a URL that ParseURL refused. URL is redacted of any
// password it held.
type URLError struct {
	URL    string
	Reason string
}

// Error names the redacted URL and what is wrong with it.
func (e *URLError) Error() string {
	return fmt.Sprintf("nfs: bad URL %q: %s", netguard.RedactString(e.URL), e.Reason)
}

// Unwrap returns ErrBadURL.
func (e *URLError) Unwrap() error { return ErrBadURL }

// Status is an NFSv3 status (nfsstat3) or a MOUNT status (mountstat3); the
// two share their numbers.
type Status uint32

// The statuses this package names (RFC 1813 §2.6 and §5.1.5).
const (
	StatusOK          Status = 0
	StatusPerm        Status = 1
	StatusNoEnt       Status = 2
	StatusIO          Status = 5
	StatusNXIO        Status = 6
	StatusAcces       Status = 13
	StatusExist       Status = 17
	StatusNoDev       Status = 19
	StatusNotDir      Status = 20
	StatusIsDir       Status = 21
	StatusInval       Status = 22
	StatusFBig        Status = 27
	StatusNameTooLong Status = 63
	StatusStale       Status = 70
	StatusRemote      Status = 71
	StatusBadHandle   Status = 10001
	StatusNotSupp     Status = 10004
	StatusTooSmall    Status = 10005
	StatusServerFault Status = 10006
	StatusBadType     Status = 10007
	StatusJukebox     Status = 10008
)

var statusNames = map[Status]string{
	StatusOK: "OK", StatusPerm: "PERM", StatusNoEnt: "NOENT", StatusIO: "IO",
	StatusNXIO: "NXIO", StatusAcces: "ACCES", StatusExist: "EXIST",
	StatusNoDev: "NODEV", StatusNotDir: "NOTDIR", StatusIsDir: "ISDIR",
	StatusInval: "INVAL", StatusFBig: "FBIG", StatusNameTooLong: "NAMETOOLONG",
	StatusStale: "STALE", StatusRemote: "REMOTE", StatusBadHandle: "BADHANDLE",
	StatusNotSupp: "NOTSUPP", StatusTooSmall: "TOOSMALL",
	StatusServerFault: "SERVERFAULT", StatusBadType: "BADTYPE",
	StatusJukebox: "JUKEBOX",
}

// String is the RFC 1813 name, NFS3ERR_NOENT for instance.
func (s Status) String() string {
	if s == StatusOK {
		return "NFS3_OK"
	}
	if n, ok := statusNames[s]; ok {
		return "NFS3ERR_" + n
	}
	return fmt.Sprintf("NFS3ERR_%d", uint32(s))
}

func (s Status) mountString() string {
	if s == StatusOK {
		return "MNT3_OK"
	}
	return strings.Replace(s.String(), "NFS3ERR_", "MNT3ERR_", 1)
}

// Error is a failed operation on an NFS server: Op is the RPC or step
// ("portmap", "dial", "MNT", "LOOKUP", "GETATTR", "FSINFO", "READ",
// "UMNT", "open"), Server the host:port it talked to, Path the path on the
// server it concerned. Status is the NFS or MOUNT status when the server
// answered with one, else zero and Err says what went wrong (a dial, a
// timeout, a protocol error). errors.Is matches fs.ErrNotExist for
// NOENT, fs.ErrPermission for ACCES and PERM, ErrStale for STALE and
// BADHANDLE, and whatever Err matches.
type Error struct {
	Op     string
	Server string
	Path   string
	Status Status
	Err    error
}

// Error names the operation, path, server and status or cause.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nfs: %s %s on %s", e.Op, e.Path, e.Server)
	if e.Status != StatusOK {
		if e.Op == "MNT" || e.Op == "UMNT" {
			fmt.Fprintf(&b, ": %s", e.Status.mountString())
		} else {
			fmt.Fprintf(&b, ": %s", e.Status)
		}
		if hint := e.Status.hint(); hint != "" {
			b.WriteString(" (" + hint + ")")
		}
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (s Status) hint() string {
	switch s {
	case StatusNoEnt:
		return "no such file or directory"
	case StatusAcces, StatusPerm:
		return "permission denied: check the export's client list and the file's mode for the AUTH_UNIX uid/gid in use"
	case StatusStale, StatusBadHandle:
		return "the file handle is no longer valid: the file was replaced or the export changed; open the URL again"
	case StatusNotDir:
		return "a component of the path is not a directory"
	}
	return ""
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Is maps the status to the standard sentinels.
func (e *Error) Is(target error) bool {
	switch e.Status {
	case StatusNoEnt:
		return target == fs.ErrNotExist
	case StatusAcces, StatusPerm:
		return target == fs.ErrPermission
	case StatusStale, StatusBadHandle:
		return target == ErrStale
	}
	return false
}
