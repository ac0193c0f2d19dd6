// Package metalink reads, checks and writes Metalink documents: Metalink 4
// (RFC 5854, namespace urn:ietf:params:xml:ns:metalink, media type
// application/metalink4+xml, ".meta4") and Metalink 3.0 (namespace
// http://www.metalinker.org/, ".metalink", as aria2 and older tools
// write it), and it reads the Metalink/HTTP headers of RFC 6249 (Link
// rel=duplicate mirrors and Digest / Repr-Digest hashes).
//
// A Metalink describes files by name, size and hashes (whole-file and per
// piece) and lists mirrors for each. The package turns that into plain
// values (Metalink, File, Hash, Pieces, URL, MetaURL) for a downloader to
// use; it never touches the network or the file system.
//
// # Reading
//
// Parse (or ParseBytes) detects the version from the root element's
// namespace and maps both versions onto the same types: a Metalink 3
// preference p (1..100, higher is better) becomes the Metalink 4
// priority 101-p (1..999999, lower is better, default 999999), as aria2
// does; a bittorrent url becomes a MetaURL; hash types are normalised to
// the IANA names (SHA256 and sha256 become sha-256) and hash values and
// locations to lowercase. Every document Parse returns has passed
// Validate.
//
// # Security rules
//
// A Metalink comes from the network and names files to write, so the
// package treats it as hostile:
//
//   - Size: Parse reads at most 4 MiB (WithMaxBytes) and stops reading
//     there, so a 50 MiB document costs 4 MiB to refuse.
//   - Entities: any DOCTYPE or other <!...> directive is refused
//     (ErrDoctype). encoding/xml never fetches external entities, but it
//     accepts a DOCTYPE; refusing it outright rules out billion-laughs
//     expansion and external-entity tricks in every later version.
//   - Depth and counts: encoding/xml has no depth limit, so the parser
//     counts nesting itself (32, WithMaxDepth) and bounds files (1000),
//     url+metaurl per file (1000), piece hashes per file (1,000,000) and
//     the text of one element (64 KiB). Extension elements of other
//     namespaces are skipped within the same limits.
//   - File names: CheckName allows relative '/'-separated names,
//     subdirectories included, and refuses absolute names, "..", "." and
//     empty segments, backslashes, colons and control characters
//     (ErrUnsafePath); duplicate names are refused. File.SafeJoin joins a
//     name to a destination directory and guarantees the result is inside
//     it; it is lexical, so a downloader creates the file through an
//     os.Root on that directory when the directory may hold symlinks.
//   - Mirrors: URLs must be absolute with a host; file: URLs are refused
//     (a Metalink must not name local files) and so are URLs carrying
//     credentials. A downloader must never send the credentials it used
//     to fetch the Metalink to its mirrors (curl's CVE-2021-22923);
//     ParseLinkHeaders resolves relative links against the base URL
//     without its user information for that reason. Other schemes (ftp,
//     rsync, nfs, ...) are kept; File.URLsFor picks the ones a
//     downloader speaks.
//   - Hashes: known types must have the right length; other types are kept
//     but Hash.Known is false and StrongestHash never returns them. MD5
//     and SHA-1 are weak (RFC 5854 §7.4): prefer StrongestHash.
//   - MetaURLs (torrents, other metalinks) are kept, never followed.
//
// Errors are *Error values naming the file, the field and, while parsing,
// the line; they match ErrInvalid and a specific sentinel (ErrTooLarge,
// ErrTooDeep, ErrDoctype, ErrLimit, ErrUnsafePath, ErrURL, ErrHash,
// ErrSyntax, ErrNotMetalink) with errors.Is. URLs in messages are
// redacted.
//
// # Writing
//
// Metalink.Marshal and WriteTo validate and write Metalink 4, with the
// namespace, deterministically (the same value gives the same bytes);
// Parse reads the output back equal. Tests and the quickstart use it to
// serve metalinks from loopback servers.
//
// # Metalink/HTTP
//
// ParseLinkHeaders reads RFC 6249 mirrors from Link headers and
// ParseDigest reads Digest (RFC 3230) and Repr-Digest (RFC 9530) into the
// same Hash form as the XML. Both keep the good entries of a partly
// malformed header and report the rest in their error.
//
// # Pieces
//
// Pieces.Count and Pieces.PieceRange give the byte range each piece hash
// covers, for checking pieces as they complete and fetching only a bad
// piece again.
//
// All functions are safe for concurrent use; values are plain data.
package metalink
