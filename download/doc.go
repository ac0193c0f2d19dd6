// Package download gets VM disk images from HTTP(S) servers, Metalink
// mirrors and NFS exports onto local storage: in parallel, verified while
// they arrive, resumable across process restarts, and never visible at the
// destination unless complete and correct.
//
// # Use
//
// Make one [Client] with [New] and share it; it is safe for concurrent use.
// [Client.Get] downloads one [Request]; [Client.Batch] many, a few at a
// time:
//
//	c, err := download.New()
//	res, err := c.Get(ctx, download.Request{
//		URL:      "https://mirror.example/templates/debian-12.qcow2",
//		Path:     "/var/lib/libvirt/images/7f3c.qcow2",
//		Checksum: "{SHA-256}2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
//	})
//
// With no options a Client uses 8 connections per download and at most 16
// per host, CloudStack's three timeouts of 5 seconds, 5 retries with
// backoff from 500ms to 30s, at most 10 redirects, the system roots, no
// logging and no progress events, and a URL policy that refuses loopback,
// link-local and cloud metadata addresses. Each Option documents its
// default.
//
// A Get for a destination that a Get of the same Client is already
// downloading from the same URL waits for it and shares its result; one
// with another URL or checksum fails with [ErrBusy].
//
// # How a download runs
//
// The first request asks for the first bytes of the file with a Range
// header. Its 206 response gives the size and the validators (ETag,
// Last-Modified); the connections then take chunks of the file front to
// back, each asking for its chunk with If-Range, so the file fills from its
// start. Chunks are a fraction of the file (at most 16 MiB) and shrink near
// the end so the connections finish together; a connection left without
// work takes half of a slow connection's request in flight, so a slow
// connection does not hold the tail. Every 206 must carry the Content-Range asked for, of the
// same total size and entity; a 200 to a range request is never appended:
// it means the file changed (the download starts again from zero) or that
// the server does not really serve ranges (the download goes on in one
// stream, keeping what it has). A server without ranges gets one stream.
// Compressed responses are refused; none is asked for.
//
// Data goes to ".NAME.ddpart" beside the destination, preallocated after a
// free-space check. A hash cursor follows the contiguous prefix of written
// bytes, reading them back from the page cache, so the digest is ready
// moments after the last byte and the file is never read twice. The
// checksum is verified, the file synced, renamed over the destination and
// the directory synced. On a mismatch the data is removed and a
// [*ChecksumError] returned, which says not to retry the same source on
// another host.
//
// # Sources: Metalink, Link mirrors, NFS
//
// A download has one or more sources, and the same machinery (ranges,
// verification, the part and control files, resume, policy, progress)
// serves them all:
//
//   - An http or https URL. When its first response carries RFC 6249
//     headers, a Digest (or Repr-Digest) becomes the checksum if the
//     Request has none, and Link rel=duplicate mirrors join the download,
//     one connection each, when a checksum vouches for their bytes
//     ([WithMetalinkHTTP] turns this off).
//   - A Metalink (package download/metalink): a URL whose path ends in
//     ".metalink" or ".meta4" ([IsMetalinkURL], CloudStack's rule), or
//     [Request.AsMetalink], or a parsed file in [Request.Metalink]. Its size
//     is known up front; its strongest whole-file hash is the checksum;
//     its http and https mirrors work in parallel, the better ones (by
//     priority, then measured rate) taking the larger share
//     ([WithMirrorConnections]). A mirror that fails waits out a backoff
//     while the others take its work, and is dropped after the retries or
//     at once for an answer that cannot be right (another size, a 404); a
//     mirror much slower than the others is demoted to one connection.
//     With piece hashes, chunks end on piece boundaries and each piece is
//     checked as soon as it is complete, before the hash cursor passes it;
//     a bad piece is fetched again, alone, from another mirror, and the
//     mirror that served it is dropped ([Result.Sources] says what each
//     did; [*PieceError] if a piece never comes right). Mirrors never get
//     the credentials of the Metalink's URL.
//   - An nfs://host[:port]/export/path URL, read with the pure-Go NFSv3
//     client of package download/nfs: no mount, no root, every connection
//     through the policy. Reads go in parallel at offsets; the file's
//     attributes are its identity for resume, and a file that changes
//     during the download starts it again.
//
// Other schemes (s3, gcs, git) go through the go-getter adapter in the
// module download/getter, which writes through [Client.GetWith]: the
// engine still takes the lock, verifies and commits.
//
// # Resume
//
// ".NAME.ddctl" records the ranges written, the validators and the hash
// state at the cursor. It is rewritten after every 256 KiB a connection
// writes (at most every 20 ms), and every 5 seconds after an fsync of the
// data, as a durable copy that a restart after a reboot trusts instead. A
// later Get to the same destination (in this process or another) asks
// only for the missing ranges, with If-Range, and does not hash the prefix
// again. Two processes cannot write one destination at once: the part file
// is locked with flock on Linux (elsewhere only the downloads of one
// Client are kept apart), and the second gets [ErrBusy]. A changed remote file starts the
// download from zero. A process killed at any instant leaves either no file
// at the destination or the complete, verified one. [RemovePartial] clears
// what an abandoned download left.
//
// # Failures
//
// Network errors, truncated bodies, stalls (no byte for the socket timeout),
// 408, 429 and 5xx are retried per request with jittered exponential
// backoff, honouring Retry-After; a request that brought new bytes starts
// its count afresh. 403, 404 and other 4xx, policy refusals, TLS failures,
// size and checksum mismatches are not retried, with one exception: when
// the redirect target that ranges are fetched from (often a signed URL that
// expires) refuses, the requested URL is followed again. After a 4xx what
// was fetched is kept, since the validators tell the next Get whether it
// still applies. Errors match
// [ErrChecksumMismatch], [ErrSizeMismatch], [ErrRemoteChanged], [ErrBusy],
// [ErrStalled], [ErrNoConnection], [ErrRequest], [ErrBadResponse],
// [ErrNoSource], [ErrDenied], [ErrTooManyRedirects] and [ErrDowngrade], or
// are an [*HTTPError], a [*SpaceError], a [*ChecksumError] or a
// [*PieceError]. URLs in errors, logs
// and results have passwords and signatures redacted ([RedactURL]).
//
// # Trust and policy
//
// TLS verification and host name checks are always on. Trust is the system
// roots plus [WithRootCAs], or a [TrustSource] consulted for every new
// connection, so a certificate added to a trust store works for the next
// download without a new Client. The [Policy] is checked when connecting,
// on the resolved address of every connection and every redirect hop; a
// redirect from HTTPS to HTTP is refused.
//
// # Checksums
//
// [ParseChecksum] reads every form orchestrators use for a template's
// checksum: CloudStack's "{SHA-256}HEX" (MD5, SHA-1, SHA-224, SHA-256,
// SHA-384 and SHA-512, names and hex in any case), go-digest's and
// go-getter's "sha256:HEX", bare hex (MD5, as CloudStack decides, or by
// length with [InferByLength]) and go-getter's ?checksum= URL parameter
// ([ChecksumFromURL]), which Get also reads from a Request's URL. A bad
// string gives a [*ChecksumFormatError] that says what is wrong and how to
// write it. Without a checksum the file's SHA-256 is computed and reported.
package download
