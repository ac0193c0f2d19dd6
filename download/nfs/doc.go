// Package nfs reads a file from an NFSv3 server without mounting it: a
// small ONC RPC client speaks the portmapper, MOUNT and NFS protocols over
// TCP itself, so the download engine can use an nfs:// URL as one more
// ranged source, with its own verification, resume and atomic commit.
//
// # Why not mount
//
// CloudStack's NFS direct download mounts the export on the hypervisor and
// copies the file out, checking nothing. A kernel mount needs root, leaves
// kernel state behind when the agent dies (a hung hard mount blocks every
// process that touches it), and bypasses the address policy that guards
// every other download. Here nothing is mounted: MNT only asks mountd for
// the export's root file handle, every connection (portmapper, mountd,
// nfsd) goes through the caller's Dialer — the engine passes its netguard
// dialer, so the policy is checked on the resolved address of each one —
// and the bytes go through the engine, which verifies checksums while it
// writes and commits atomically.
//
// # URLs
//
// nfs://host[:port]/export/path/file. The URL does not say where the
// export ends: Open asks MNT for each directory on the path, longest
// first, and looks the rest of the path up below the first one the server
// grants (MOUNT's EXPORT list is not used: many servers hide it, and a
// Linux server also grants subdirectories of an export). Without a port,
// the MOUNT and NFS ports are asked from the portmapper on port 111 (NFS
// falls back to 2049); with one, MOUNT and NFS are both called on it, as
// single-port userspace servers serve them. ParseURL refuses user
// information, queries, fragments, empty paths and "." or ".." names, so a
// URL cannot climb out of its export (LOOKUP of ".." would).
//
// # Credentials
//
// Calls carry AUTH_UNIX with uid and gid 65534 (nobody) unless
// WithAuthUnix says otherwise: templates are world-readable, and root
// gains nothing on a server that squashes it (the default) while it would
// bypass file modes on one that does not. Servers exporting with "secure"
// (Linux's default) refuse source ports above 1023: WithPrivilegedPort
// binds one below, which needs root or CAP_NET_BIND_SERVICE.
//
// # Reading
//
// Open checks the path is a regular file (a directory, symbolic link or
// device is an error naming it) and records its size and Validators
// (filesystem id, file id, size, mtime and ctime): a resumed download
// compares them with the ones stored beside its partial file and starts
// over when they differ. ReadAt is an io.ReaderAt, safe for concurrent use:
// each call issues READs of at most ReadSize bytes (the server's preferred
// size, capped at 1 MiB) on one connection from a pool of up to
// WithConnections (4), one call in flight per connection, since common
// servers, go-nfs among them, answer the calls of one connection in turn.
// Every READ reply carries the file's attributes; if they no longer match
// the Validators, the read fails with ErrChanged instead of mixing two
// versions of the file.
//
// # Failures
//
// Every connect is bounded by the connect timeout and every RPC by the
// idle timeout (5s each, like the HTTP engine's): a server that dies or
// stalls mid-transfer gives an error, never a hang, and a read can also be
// cancelled with ReadAtContext. Errors are *Error, naming the operation,
// the server, the path and the NFS status (NFS3ERR_NOENT, NFS3ERR_ACCES,
// NFS3ERR_STALE...), and match fs.ErrNotExist, fs.ErrPermission, ErrStale
// and the other sentinels with errors.Is. Nothing is retried here: the
// engine's retry and backoff decide.
package nfs
