// Package download gets VM disk images from HTTP(S) sources onto local
// storage, verified.
//
// # Status
//
// This package is being built in steps. It provides today the checksum
// value type that the engine verifies against; the parallel, resumable
// engine (Client, Get, Request, Result) follows.
//
// # Checksums
//
// [ParseChecksum] reads every form orchestrators use for a template's
// checksum: CloudStack's "{SHA-256}HEX" (MD5, SHA-1, SHA-224, SHA-256,
// SHA-384 and SHA-512, names and hex in any case), go-digest's and
// go-getter's "sha256:HEX", bare hex (MD5, as CloudStack decides, or by
// length with [InferByLength]) and go-getter's ?checksum= URL parameter
// ([ChecksumFromURL]). A bad string gives a [*ChecksumFormatError] that
// says what is wrong and how to write it.
//
// A [Checksum] is a comparable value. It makes the hash to feed
// ([Checksum.NewHash]; the standard library's hashes can be serialized
// mid-stream, which resuming downloads relies on) and checks the result
// ([Checksum.Verify]), returning a [*ChecksumError] whose message tells the
// caller not to retry the same source elsewhere.
package download
