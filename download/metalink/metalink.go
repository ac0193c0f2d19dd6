package metalink

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Namespaces and media types of the two Metalink versions.
const (
	// NamespaceV4 is the XML namespace of Metalink 4 (RFC 5854).
	NamespaceV4 = "urn:ietf:params:xml:ns:metalink"
	// NamespaceV3 is the XML namespace of Metalink 3.0.
	NamespaceV3 = "http://www.metalinker.org/"
	// MediaType is the media type of a Metalink 4 document (.meta4).
	MediaType = "application/metalink4+xml"
	// MediaTypeV3 is the media type of a Metalink 3 document (.metalink).
	MediaTypeV3 = "application/metalink+xml"
)

// Priority bounds of RFC 5854: lower is better, and a url or metaurl
// without a priority gets DefaultPriority.
const (
	MinPriority     = 1
	MaxPriority     = 999999
	DefaultPriority = MaxPriority
)

// Metalink is one parsed (or to-be-written) Metalink document. The zero
// value is an empty document, which Validate refuses because it has no
// file. A Metalink is plain data: safe for concurrent reads, not for
// concurrent writes.
type Metalink struct {
	// Files are the files the document describes, in document order.
	Files []File
	// Generator names the program that wrote the document.
	Generator string
	// Origin is the URL the document says it was published at; it is
	// informational and never fetched by this package.
	Origin string
	// Dynamic is origin's dynamic="true": the document may be refreshed
	// from Origin.
	Dynamic bool
	// Published and Updated are the document's dates, in UTC; zero when
	// absent. A Metalink 3 date that does not parse is left zero.
	Published, Updated time.Time
}

// File is one file of a Metalink document.
type File struct {
	// Name is the file's relative name, '/'-separated; it may name a
	// subdirectory ("dir/disk.qcow2"). Validate guarantees it has no
	// absolute, "..", "." or empty segment, no backslash, colon or control
	// character; join it to a directory only with SafeJoin.
	Name string
	// Size is the file's length in bytes, or -1 when the document does not
	// give it (RFC 5854 makes size optional; a downloader needs it, so
	// Validate and Parse take the RequireSize option to insist).
	Size int64
	// Hashes are the whole-file hashes, in document order, one per type.
	Hashes []Hash
	// Pieces are the piece hashes, or nil. When the document offers several
	// <pieces> elements (one per hash type), the one with the strongest
	// known type is kept.
	Pieces *Pieces
	// URLs are the mirrors, in document order; SortedURLs and URLsFor give
	// them in priority order.
	URLs []URL
	// MetaURLs point at other metadata (torrents, other metalinks). They
	// are kept for the record and never followed by this package; a
	// downloader should not follow them either unless it has a reason to.
	MetaURLs []MetaURL
	// Identity, Version, Description and Copyright are free text from the
	// document, trimmed.
	Identity, Version, Description, Copyright string
	// Languages and OS list the <language> and <os> elements in order.
	Languages, OS []string
}

// Hash is a digest in Metalink form: Type is the IANA "Hash Function
// Textual Name" in lowercase (md5, sha-1, sha-224, sha-256, sha-384,
// sha-512) and Value is lowercase hexadecimal. Types outside that list are
// kept as written (lowercased) so that nothing is lost, but Known reports
// false and no code of this package treats them as a verification.
type Hash struct {
	Type  string
	Value string
}

// Known reports whether h's type is one of the six types this package
// knows the length and strength of.
func (h Hash) Known() bool { _, ok := hashTypes[h.Type]; return ok }

// Pieces are per-piece hashes: piece i covers bytes [i*Length,
// (i+1)*Length) of the file, the last piece being shorter when the size is
// not a multiple of Length.
type Pieces struct {
	// Length is the piece length in bytes, > 0.
	Length int64
	// Type is the hash type of every piece hash, as in Hash.Type.
	Type string
	// Hashes are the lowercase hex piece hashes, in piece order.
	Hashes []string
}

// Known reports whether the piece hash type is one this package knows.
func (p Pieces) Known() bool { _, ok := hashTypes[p.Type]; return ok }

// Count is the number of pieces of a file of size bytes: ceil(size /
// Length). It is 0 for a size ≤ 0 or a Length ≤ 0.
func (p Pieces) Count(size int64) int64 {
	if size <= 0 || p.Length <= 0 {
		return 0
	}
	n := size / p.Length
	if size%p.Length != 0 {
		n++
	}
	return n
}

// PieceRange is the byte range of piece i of a file of size bytes: its
// offset and length. ok is false when i is not a piece of such a file.
func (p Pieces) PieceRange(i int64, size int64) (off, n int64, ok bool) {
	if i < 0 || i >= p.Count(size) {
		return 0, 0, false
	}
	off = i * p.Length
	return off, min(p.Length, size-off), true
}

// URL is one mirror of a file.
type URL struct {
	// URL is the absolute URL of the mirror. Validate guarantees it parses,
	// has a scheme and a host, is not a file: URL and carries no user
	// information (credentials).
	URL string
	// Priority runs from MinPriority (best) to MaxPriority (worst, the
	// default). A Metalink 3 preference p (0..100, higher is better)
	// becomes 101-p, as aria2 maps it.
	Priority int
	// Location is the ISO 3166-1 alpha-2 country code of the mirror in
	// lowercase, or "".
	Location string
	// Preferred is RFC 6249's "pref" flag of a Link header: the mirror
	// shares the origin's ETag policy. It is never set by Parse and not
	// written by Marshal, which has no place for it in XML.
	Preferred bool
}

// Scheme is the URL's scheme in lowercase, or "" if it does not parse.
func (u URL) Scheme() string {
	p, err := url.Parse(u.URL)
	if err != nil {
		return ""
	}
	return strings.ToLower(p.Scheme)
}

// MetaURL points at metadata that describes the file another way, such as
// a torrent. It is never followed by this package.
type MetaURL struct {
	// URL is the absolute URL of the metadata (rules as for URL.URL).
	URL string
	// MediaType is the kind of metadata, e.g. "torrent"; required.
	MediaType string
	// Priority as in URL.Priority.
	Priority int
	// Name, when not empty, is the file's name inside that metadata; it
	// follows the rules of File.Name.
	Name string
}

// hashInfo is what the package knows of a hash type.
type hashInfo struct {
	hexLen   int // length of the hex digest
	strength int // higher is stronger
}

// hashTypes are the types Metalink uses, from the IANA registry.
var hashTypes = map[string]hashInfo{
	"md5":     {32, 1},
	"sha-1":   {40, 2},
	"sha-224": {56, 3},
	"sha-256": {64, 4},
	"sha-384": {96, 5},
	"sha-512": {128, 6},
}

// hashAliases are spellings seen in Metalink 3 files, aria2's
// --checksum and RFC 3230, mapped to the IANA names.
var hashAliases = map[string]string{
	"sha":    "sha-1",
	"sha1":   "sha-1",
	"sha224": "sha-224",
	"sha256": "sha-256",
	"sha384": "sha-384",
	"sha512": "sha-512",
}

// CanonicalHashType returns the IANA name of a hash type given in any
// case or in an alias form (SHA256, sha1, SHA-256 all give sha-256). A
// type it does not know comes back lowercased and trimmed.
func CanonicalHashType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	if a, ok := hashAliases[t]; ok {
		return a
	}
	return t
}

// StrongestHash returns the whole-file hash of the strongest known type
// (sha-512 > sha-384 > sha-256 > sha-224 > sha-1 > md5). ok is false when
// the file has no hash of a known type; unknown types are never returned.
func (f File) StrongestHash() (h Hash, ok bool) {
	best := 0
	for _, c := range f.Hashes {
		if info, known := hashTypes[c.Type]; known && info.strength > best {
			best, h, ok = info.strength, c, true
		}
	}
	return h, ok
}

// SortedURLs returns a copy of f.URLs sorted by priority, best first;
// mirrors of equal priority keep their document order. A downloader that
// wants aria2's spread among equal mirrors shuffles within a priority
// itself.
func (f File) SortedURLs() []URL {
	out := slices.Clone(f.URLs)
	slices.SortStableFunc(out, func(a, b URL) int { return a.Priority - b.Priority })
	return out
}

// URLsFor returns SortedURLs restricted to the given schemes (compared
// case-insensitively), e.g. URLsFor("http", "https"). With no scheme it
// returns SortedURLs.
func (f File) URLsFor(schemes ...string) []URL {
	all := f.SortedURLs()
	if len(schemes) == 0 {
		return all
	}
	out := all[:0]
	for _, u := range all {
		s := u.Scheme()
		if slices.ContainsFunc(schemes, func(w string) bool { return strings.EqualFold(w, s) }) {
			out = append(out, u)
		}
	}
	return out
}

// ErrNoSuchFile is returned by Pick when the document has no file of the
// name asked for, or several files and no name. It is about the caller's
// choice, not the document, so it does not match ErrInvalid.
var ErrNoSuchFile = errors.New("metalink: no such file")

// Pick returns the file named name, or, when name is empty, the only file
// of the document. The error matches ErrNoSuchFile and lists the names the
// document has. Safe for concurrent use.
func (m *Metalink) Pick(name string) (*File, error) {
	names := make([]string, len(m.Files))
	for i := range m.Files {
		if name != "" && m.Files[i].Name == name {
			return &m.Files[i], nil
		}
		names[i] = strconv.Quote(m.Files[i].Name)
	}
	if name == "" && len(m.Files) == 1 {
		return &m.Files[0], nil
	}
	if name == "" {
		return nil, fmt.Errorf("%w: the document describes %d files (%s); name one", ErrNoSuchFile, len(m.Files), strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("%w: no file %q in the document (it has %s)", ErrNoSuchFile, name, strings.Join(names, ", "))
}
