package metalink

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is matched (errors.Is) by every error this package returns
// about a document, a file name or a header. The more specific sentinels
// below are matched as well where they apply.
var ErrInvalid = errors.New("metalink: invalid")

// Specific causes, each also matching ErrInvalid.
var (
	// ErrNotMetalink: the root element is not a Metalink 3 or 4 <metalink>.
	ErrNotMetalink = errors.New("not a metalink document")
	// ErrSyntax: the XML is not well formed.
	ErrSyntax = errors.New("malformed XML")
	// ErrDoctype: the document has a DOCTYPE or another <!...> directive,
	// the vehicle of entity-expansion and external-entity attacks.
	ErrDoctype = errors.New("DOCTYPE and entity declarations are not allowed")
	// ErrTooLarge: the document is longer than the byte limit.
	ErrTooLarge = errors.New("document too large")
	// ErrTooDeep: elements nest deeper than the depth limit.
	ErrTooDeep = errors.New("elements nested too deeply")
	// ErrLimit: a count limit (files, URLs, piece hashes, text length) is
	// exceeded.
	ErrLimit = errors.New("limit exceeded")
	// ErrUnsafePath: a file name is absolute, climbs out with "..", or
	// holds characters that are unsafe in a path.
	ErrUnsafePath = errors.New("unsafe file name")
	// ErrURL: a mirror URL is unusable or unsafe.
	ErrURL = errors.New("bad URL")
	// ErrHash: a hash value or type is malformed.
	ErrHash = errors.New("bad hash")
)

// Error describes one problem of a document, naming where it is. It
// matches ErrInvalid and its Err with errors.Is.
type Error struct {
	// File is the name of the <file> concerned, or "" for the document.
	File string
	// Field names the element or attribute, e.g. "size", "url[2]",
	// "pieces/hash[7]".
	Field string
	// Line is the line of the document where the problem was found, or 0
	// when the error comes from Validate or a header.
	Line int
	// Msg says what is wrong and, where it helps, what to do.
	Msg string
	// Err is the specific sentinel (ErrTooDeep, ErrUnsafePath, ...).
	Err error
}

// Error names the line (while parsing), the file, the field and the
// problem; URLs in it are redacted.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("metalink: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.File != "" {
		fmt.Fprintf(&b, "file %q: ", e.File)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the specific sentinel and ErrInvalid.
func (e *Error) Unwrap() []error { return []error{e.Err, ErrInvalid} }

func newError(sentinel error, file, field, format string, args ...any) *Error {
	return &Error{File: file, Field: field, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}
