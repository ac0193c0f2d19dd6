// Package nfstest runs NFSv3 servers for the tests of this module: go-nfs
// serving a temporary directory, MOUNT and NFS on one TCP port, with the
// faults an NFS client must survive: a server that dies (Kill) and comes
// back (Restart), one that hangs or drops its connections behind a
// StallProxy (Freeze, Cut), a file replaced or removed while it is read.
//
// It is for tests only. Every server and proxy listens on 127.0.0.1, on a
// port the kernel picks, and connects nowhere else (a StallProxy connects
// only to the backend its test names). Clients must be allowed to reach
// loopback: the download engine's default policy refuses it.
//
// Only Export can be mounted; every other MNT is refused with
// MNT3ERR_NOENT, as a server refuses a directory it does not export. The
// server records the path and AUTH_UNIX credentials of every MNT (Mounts,
// Creds) so tests can check what a client asked for.
//
// The files are real files in a directory of their own (FS), not in
// memory: go-nfs's in-memory filesystem is not safe to change while it
// serves, and tests change files mid-read. Replace swaps in new content
// atomically; a reader sees it as another file id in the attributes of its
// next READ. Servers and proxies are safe for concurrent use.
package nfstest
