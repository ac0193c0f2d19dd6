// Package checksum reads and checks the checksums orchestrators register for
// templates: CloudStack's "{SHA-256}HEX", go-digest's (and go-getter's)
// "sha256:HEX" and bare hex. It is the one place those rules live, so the
// download engine and the migration tool, which may not import each other,
// read a checksum string the same way and agree on what it means.
//
// # Algorithms
//
// The algorithms are the ones CloudStack accepts: MD5, SHA-1, SHA-224,
// SHA-256, SHA-384 and SHA-512. [Lookup] finds one by any spelling ("SHA-256",
// "sha256", "Sha-256"); [Algorithms] lists them, weakest first.
//
// # Forms
//
// [Parse] accepts:
//
//   - "{SHA-256}9f86d0…": CloudStack's form; the algorithm name in any case,
//     with or without the hyphen; hex digits in either case.
//   - "sha256:9f86d0…": go-digest's form, also go-getter's ?checksum= value;
//     md5, sha1 and sha224 too. sha256, sha384 and sha512 values are also
//     validated by go-digest.
//   - "9f86d0…": bare hex is MD5, CloudStack's rule (it never infers the
//     algorithm), unless inferByLength asks for go-getter's rule, which names
//     the algorithm by the length of the value.
//   - "" or only white space: no checksum, the zero [Sum].
//
// A string that cannot be read gives a [*FormatError] that wraps one of
// [ErrAlgorithm], [ErrLength], [ErrHex] or [ErrForm] and says how to write the
// checksum instead. Its message has no package prefix, so a caller can put
// its own in front. "file:URL" checksum files (go-getter) are refused with
// ErrForm: fetching a file is the caller's business, not a parser's.
//
// # Concurrency
//
// Everything here is a pure function or a method on a value: safe for
// concurrent use. Each hash.Hash from [Sum.NewHash] is new and belongs to the
// caller.
package checksum
