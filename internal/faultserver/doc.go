// Package faultserver is a real HTTP and HTTPS server on loopback addresses
// for tests and benchmarks of download clients: it serves large content
// without holding it in memory, answers Range requests as RFC 9110 says, and
// misbehaves on demand in the ways real servers do: ignored ranges, 200
// for 206, wrong Content-Range, reset or truncated connections, 5xx bursts,
// stalls, slow links and slow uplinks, corrupted bytes, content that
// changes mid-download, redirect chains across hosts, and TLS chains
// missing their intermediate.
//
// # Starting a server in a test
//
// [StartTest] starts a server that closes when the test ends. Without
// options it serves [DefaultResourceSize] bytes of [Pattern]
// ([DefaultResourceSeed]) at [DefaultResourcePath] on 127.0.0.1:
//
//	s := faultserver.StartTest(t,
//		faultserver.WithResource(faultserver.PatternResource("/disk.qcow2", 42, 8<<30)),
//		faultserver.WithFaults(faultserver.Faults{Rate: 20 << 20}))
//	resp, err := http.Get(s.URL("/disk.qcow2"))
//
// Outside tests, [Start] returns the server and [Server.Close] stops it.
//
// # Content
//
// A [Resource] is an [io.ReaderAt] and a size at a path. [Pattern] content
// is generated from a seed at any offset, so an 8 GiB resource costs
// nothing and any range of it can be compared with what a client wrote:
// [Server.Version] gives the current content as an [*io.SectionReader], and
// [Hash] digests it. A *bytes.Reader or an *os.File serves given content.
//
// # Ranges
//
// Every resource has a strong ETag and a Last-Modified date and advertises
// Accept-Ranges: bytes. A single range (bytes=a-b, a-, -n) gets 206 with
// Content-Range; a range past the end gets 416 with Content-Range:
// bytes */SIZE. Several ranges, a syntax error or another unit get 200 with
// the whole content (the server never sends multipart/byteranges), as does
// an If-Range that no longer matches (a weak ETag never does). HEAD answers
// with the headers GET would send. Only HTTP/1.1 is served, also over TLS.
//
// # Faults
//
// [Faults] lists the misbehaviours; the zero value is a correct server.
// [Server.SetFaults] switches them at any moment, also while downloads run:
// a response follows the faults set when it started. Counted faults
// (FailRequests, BodyFaultResponses, ChangeAfter*) count from SetFaults.
// [Server.Change] makes a new version of a resource at once, as if the
// remote file were replaced.
//
// Rate caps each response; ServerRate caps all of them together, as the
// uplink of one mirror does, sharing it among concurrent connections.
// CorruptOffset and CorruptLength flip a range of content bytes in every
// response while the validators stay those of the true content: a mirror
// serving a bad piece, which only a client that hashes pieces notices.
// Several servers with the same seed and one of them corrupting are
// mirrors of one file for testing Metalink downloads.
//
// ResetAfter closes the connection with a TCP reset (SO_LINGER 0) once
// what was written has reached the client, so the client reads exactly
// that many bytes and then ECONNRESET; TruncateAfter closes it cleanly
// instead, short of the promised Content-Length. Neither is possible over
// HTTP/2, which the server therefore does not offer.
//
// # Hosts and redirects
//
// [WithHosts] listens on several loopback addresses, such as 127.0.0.1,
// 127.0.0.2 and 127.0.0.3 (Linux routes all of 127.0.0.0/8 to the loopback
// interface) or ::1. Any other address, and any name, is refused with
// [ErrNotLoopback]: the server never listens beyond the machine. With
// [WithTLS] each host has an HTTPS and an HTTP listener; [Server.URLFor]
// names one. [Server.Redirect] sets a chain of [Hop]s across them, with
// any redirect status, from HTTPS to HTTP and back, and may end with a URL
// the test names, such as an address a client must refuse to follow.
//
// # TLS
//
// [NewPKI] makes a root CA, an intermediate and a leaf for the loopback
// addresses and localhost. [PKI.Certificate] gives the leaf with or without
// its intermediate, [PKI.RootPool] the pool a client trusts, and
// [PKI.WritePEM] files for curl and aria2c.
//
// # Assertions
//
// [Server.Requests] is the log of finished requests: connection number,
// listener, method, path, Range and If-Range, status, body bytes and the
// fault applied. [Server.Stats] counts requests, bytes and connections,
// with the peaks of concurrent connections and requests. [WithHandler]
// adds endpoints outside the log and the counters, such as one that
// reports them to a script.
//
// # Standalone
//
// The program in cmd/faultserver serves a resource with the faults set by
// flags, prints its URL (and digests, if asked) and runs until interrupted,
// for benchmark scripts that compare whole programs; with -control it
// answers GET /_stats and POST /_reset so that they can count bytes.
package faultserver
