package metalink

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/directdl/directdl/internal/netguard"
)

// Name limits: a whole name and one '/'-separated segment, in bytes (the
// usual PATH_MAX and NAME_MAX).
const (
	maxNameLen    = 4096
	maxSegmentLen = 255
	// maxUnknownHashHex bounds the value of a hash type this package does
	// not know.
	maxUnknownHashHex = 1024
)

// Validate checks m against the rules Parse applies, so that a document
// built in code is known to be safe and writable before Marshal. The
// options are Parse's (count limits, RequireSize). Hash types and values
// and locations may be in any case here; Marshal writes them lowercased.
//
// The rules, each failure an *Error matching ErrInvalid and a specific
// sentinel:
//   - at least one file; file names pass CheckName and are unique;
//   - size is -1 (unknown) or ≥ 0; required with RequireSize;
//   - whole-file hashes: a type, at most one per type, lowercase-able hex
//     of the right length for known types (md5 32 ... sha-512 128);
//   - pieces: length > 0, a type, at least one hash, exactly
//     ceil(size/length) hashes when the size is known, each hex of the
//     right length;
//   - at least one url or metaurl; each URL absolute with a scheme and a
//     host, not file:, without user information: credentials of a mirror
//     never come from a Metalink, and a downloader must never pass the
//     credentials it used for the Metalink itself on to its mirrors
//     (curl's CVE-2021-22923); priority 1..999999; location two letters;
//   - text is valid UTF-8 of characters XML can hold, within the limits.
//
// Validate does not modify m and is safe for concurrent use with other
// readers of m.
func (m *Metalink) Validate(opts ...Option) error {
	return m.validate(buildOptions(opts))
}

func (m *Metalink) validate(o *options) error {
	if m == nil || len(m.Files) == 0 {
		return newError(ErrInvalid, "", "file", "the document describes no file")
	}
	if len(m.Files) > o.maxFiles {
		return newError(ErrLimit, "", "file", "more than %d files", o.maxFiles)
	}
	for _, t := range []struct{ field, s string }{{"generator", m.Generator}, {"origin", m.Origin}} {
		if err := checkText(o, "", t.field, t.s); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		field string
		y     int
		zero  bool
	}{{"published", m.Published.Year(), m.Published.IsZero()}, {"updated", m.Updated.Year(), m.Updated.IsZero()}} {
		if !t.zero && (t.y < 0 || t.y > 9999) {
			return newError(ErrInvalid, "", t.field, "year %d cannot be written as an RFC 3339 date", t.y)
		}
	}
	names := make(map[string]bool, len(m.Files))
	for i := range m.Files {
		f := &m.Files[i]
		if err := f.validate(o); err != nil {
			return err
		}
		if names[f.Name] {
			return newError(ErrInvalid, f.Name, "name", "two files have this name")
		}
		names[f.Name] = true
	}
	return nil
}

func (f *File) validate(o *options) error {
	if err := CheckName(f.Name); err != nil {
		return err
	}
	name := f.Name
	switch {
	case f.Size < -1:
		return newError(ErrInvalid, name, "size", "size %d is negative", f.Size)
	case f.Size == -1 && o.requireSize:
		return newError(ErrInvalid, name, "size", "no size given, and the caller requires one")
	}
	seen := map[string]bool{}
	for i, h := range f.Hashes {
		field := fmt.Sprintf("hash[%d]", i)
		t, err := checkHash(name, field, h.Type, h.Value)
		if err != nil {
			return err
		}
		if seen[t] {
			return newError(ErrHash, name, field, "a second %s hash", t)
		}
		seen[t] = true
	}
	if err := f.validatePieces(o); err != nil {
		return err
	}
	if len(f.URLs)+len(f.MetaURLs) == 0 {
		return newError(ErrURL, name, "url", "no url or metaurl: the file cannot be fetched")
	}
	if len(f.URLs)+len(f.MetaURLs) > o.maxURLs {
		return newError(ErrLimit, name, "url", "more than %d url and metaurl elements", o.maxURLs)
	}
	for i, u := range f.URLs {
		field := fmt.Sprintf("url[%d]", i)
		if err := checkURL(o, name, field, u.URL); err != nil {
			return err
		}
		if err := checkPriority(name, field, u.Priority); err != nil {
			return err
		}
		if u.Location != "" && !isCountry(u.Location) {
			return newError(ErrInvalid, name, field+" location", "%q is not an ISO 3166-1 alpha-2 country code (two letters)", u.Location)
		}
	}
	for i, mu := range f.MetaURLs {
		field := fmt.Sprintf("metaurl[%d]", i)
		if err := checkURL(o, name, field, mu.URL); err != nil {
			return err
		}
		if err := checkPriority(name, field, mu.Priority); err != nil {
			return err
		}
		if !isToken(mu.MediaType) {
			return newError(ErrInvalid, name, field+" mediatype", "%q is not a media type name such as \"torrent\"", mu.MediaType)
		}
		if mu.Name != "" {
			if err := CheckName(mu.Name); err != nil {
				var e *Error
				if errors.As(err, &e) {
					e.File, e.Field = name, field+" name"
				}
				return err
			}
		}
	}
	texts := []struct{ field, s string }{
		{"identity", f.Identity}, {"version", f.Version}, {"description", f.Description}, {"copyright", f.Copyright},
	}
	for _, s := range f.Languages {
		texts = append(texts, struct{ field, s string }{"language", s})
	}
	for _, s := range f.OS {
		texts = append(texts, struct{ field, s string }{"os", s})
	}
	for _, t := range texts {
		if err := checkText(o, name, t.field, t.s); err != nil {
			return err
		}
	}
	return nil
}

func (f *File) validatePieces(o *options) error {
	pc := f.Pieces
	if pc == nil {
		return nil
	}
	name := f.Name
	if pc.Length <= 0 {
		return newError(ErrInvalid, name, "pieces length", "piece length %d is not positive", pc.Length)
	}
	t := CanonicalHashType(pc.Type)
	if !isToken(t) {
		return newError(ErrHash, name, "pieces type", "%q is not a hash type name", pc.Type)
	}
	if len(pc.Hashes) == 0 {
		return newError(ErrInvalid, name, "pieces", "no piece hash")
	}
	if len(pc.Hashes) > o.maxPieces {
		return newError(ErrLimit, name, "pieces", "more than %d piece hashes", o.maxPieces)
	}
	if f.Size >= 0 {
		if want := pc.Count(f.Size); int64(len(pc.Hashes)) != want {
			return newError(ErrInvalid, name, "pieces", "%d piece hashes, but a %d-byte file in %d-byte pieces has %d pieces", len(pc.Hashes), f.Size, pc.Length, want)
		}
	}
	for i, v := range pc.Hashes {
		if _, err := checkHash(name, fmt.Sprintf("pieces/hash[%d]", i), t, v); err != nil {
			return err
		}
	}
	return nil
}

// checkHash checks one hash and returns its canonical type.
func checkHash(file, field, typ, value string) (string, error) {
	t := CanonicalHashType(typ)
	if !isToken(t) {
		return "", newError(ErrHash, file, field, "%q is not a hash type name", typ)
	}
	if !isHex(value) {
		return "", newError(ErrHash, file, field, "%s value %q is not hexadecimal", t, clip(value))
	}
	if info, ok := hashTypes[t]; ok {
		if len(value) != info.hexLen {
			return "", newError(ErrHash, file, field, "%s value has %d hex digits, want %d", t, len(value), info.hexLen)
		}
	} else if len(value) > maxUnknownHashHex {
		return "", newError(ErrHash, file, field, "%s value longer than %d hex digits", t, maxUnknownHashHex)
	}
	return t, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// isToken accepts the names Metalink uses for hash and media types:
// letters, digits and "-._+", at most 64 bytes.
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("-._+", c) >= 0) {
			return false
		}
	}
	return true
}

func isCountry(s string) bool {
	if len(s) != 2 {
		return false
	}
	for i := 0; i < 2; i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func checkPriority(file, field string, p int) error {
	if p < MinPriority || p > MaxPriority {
		return newError(ErrInvalid, file, field+" priority", "priority %d outside %d..%d", p, MinPriority, MaxPriority)
	}
	return nil
}

// checkURL applies the mirror URL rules; messages show the URL redacted.
func checkURL(o *options, file, field, s string) error {
	if s == "" {
		return newError(ErrURL, file, field, "empty URL")
	}
	if len(s) > o.maxText {
		return newError(ErrLimit, file, field, "URL longer than %d bytes", o.maxText)
	}
	if err := checkText(o, file, field, s); err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil {
		return newError(ErrURL, file, field, "%q does not parse as a URL", netguard.RedactString(s))
	}
	red := netguard.Redact(u)
	switch {
	case strings.EqualFold(u.Scheme, "file"):
		return newError(ErrURL, file, field, "%q: file URLs are refused, a Metalink must not name local files", red)
	case u.Scheme == "" || u.Opaque != "" || u.Host == "":
		return newError(ErrURL, file, field, "%q is not an absolute URL with a host", red)
	case u.User != nil:
		return newError(ErrURL, file, field, "%q carries credentials; mirror URLs must not (give credentials to the client, never in the document)", red)
	}
	return nil
}

// checkText refuses what XML cannot carry, so Marshal never has to
// change a value and Parse reads back what was written.
func checkText(o *options, file, field, s string) error {
	if len(s) > o.maxText {
		return newError(ErrLimit, file, field, "text longer than %d bytes", o.maxText)
	}
	if !utf8.ValidString(s) {
		return newError(ErrInvalid, file, field, "text is not valid UTF-8")
	}
	for _, r := range s {
		if !isXMLChar(r) {
			return newError(ErrInvalid, file, field, "text holds the character %U, which XML cannot carry", r)
		}
	}
	if strings.TrimSpace(s) != s {
		return newError(ErrInvalid, file, field, "text has leading or trailing white space, which Parse would drop")
	}
	return nil
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// CheckName reports whether name is a safe relative file name: not
// empty, at most 4096 bytes, valid UTF-8, no control character,
// backslash or colon (no Windows separators, drive letters or alternate
// streams), not starting with '/', and made of '/'-separated segments
// that are neither empty, "." nor ".." and at most 255 bytes. This is
// stricter than RFC 5854 (which forbids a leading "/", "./", "../" and
// "/../"), so that a name means the same file on every system. The error
// matches ErrUnsafePath and ErrInvalid.
func CheckName(name string) error {
	bad := func(format string, args ...any) error {
		return newError(ErrUnsafePath, name, "name", format, args...)
	}
	switch {
	case name == "":
		return bad("empty file name")
	case len(name) > maxNameLen:
		return bad("name longer than %d bytes", maxNameLen)
	case !utf8.ValidString(name):
		return bad("name is not valid UTF-8")
	case strings.HasPrefix(name, "/"):
		return bad("absolute name; Metalink file names must be relative")
	case strings.ContainsRune(name, '\\'):
		return bad("name contains a backslash (a Windows separator)")
	case strings.ContainsRune(name, ':'):
		return bad("name contains a colon (a drive letter or stream name on Windows)")
	}
	for _, r := range name {
		if unicode.IsControl(r) || !isXMLChar(r) || r == utf8.RuneError {
			return bad("name contains the control character %U", r)
		}
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch {
		case seg == "":
			return bad("name has an empty segment (\"//\" or a trailing \"/\")")
		case seg == ".":
			return bad("name has a \".\" segment")
		case seg == "..":
			return bad("name has a \"..\" segment, which would climb out of the destination")
		case len(seg) > maxSegmentLen:
			return bad("a segment of the name is longer than %d bytes", maxSegmentLen)
		}
	}
	return nil
}

// SafeJoin returns the path of f inside dir: dir joined with f.Name, with
// the guarantee that the result lies strictly inside dir (also after
// filepath.Clean), or an error matching ErrUnsafePath. The check is
// lexical: it cannot see symbolic links already inside dir, so a
// downloader should create the file through an os.Root opened on dir (or
// with O_NOFOLLOW on every component) when dir's contents are not its
// own. SafeJoin touches no file and is safe for concurrent use.
func (f File) SafeJoin(dir string) (string, error) {
	if err := CheckName(f.Name); err != nil {
		return "", err
	}
	if dir == "" {
		return "", newError(ErrUnsafePath, f.Name, "name", "empty destination directory")
	}
	clean := filepath.Clean(dir)
	rel := filepath.FromSlash(f.Name)
	joined := filepath.Join(clean, rel)
	back, err := filepath.Rel(clean, joined)
	if err != nil || back != rel || !strings.HasPrefix(joined, strings.TrimSuffix(clean, string(filepath.Separator))+string(filepath.Separator)) {
		return "", newError(ErrUnsafePath, f.Name, "name", "name does not stay inside %q", dir)
	}
	return joined, nil
}
