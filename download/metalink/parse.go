package metalink

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Parse reads a Metalink 4 (RFC 5854) or Metalink 3.0 document from r and
// validates it (see Validate). The version is taken from the namespace of
// the root element; any other root is refused with ErrNotMetalink.
//
// Parse is hardened against hostile documents: it reads at most the byte
// limit (WithMaxBytes, default 4 MiB) and stops reading there; it refuses
// any DOCTYPE or other <!...> directive (ErrDoctype), so no entity is ever
// declared or expanded; it counts element depth itself (ErrTooDeep) and
// bounds files, URLs, piece hashes and text (ErrLimit). Elements of other
// namespaces, and unknown Metalink elements, are skipped within those
// limits, as the RFC's extension rules ask. Every error matches ErrInvalid.
//
// Parse is safe for concurrent use.
func Parse(r io.Reader, opts ...Option) (*Metalink, error) {
	o := buildOptions(opts)
	lr := &limitReader{r: r, left: o.maxBytes}
	m, err := parse(lr, o)
	if err != nil {
		return nil, err
	}
	if err := m.validate(o); err != nil {
		return nil, err
	}
	return m, nil
}

// ParseBytes is Parse of a byte slice; a slice longer than the byte limit
// is refused without being looked at.
func ParseBytes(b []byte, opts ...Option) (*Metalink, error) {
	o := buildOptions(opts)
	if int64(len(b)) > o.maxBytes {
		return nil, tooLarge(o.maxBytes)
	}
	return Parse(bytes.NewReader(b), opts...)
}

// errReadLimit is what limitReader returns once the limit is passed.
var errReadLimit = errors.New("read limit")

// limitReader returns errReadLimit instead of reading past left bytes,
// so a huge document costs no more than the limit to refuse.
type limitReader struct {
	r    io.Reader
	left int64
	err  error // the last error of r other than io.EOF
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One more byte tells a document of exactly the limit from a
		// longer one.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errReadLimit
		}
		if err != nil && err != io.EOF {
			l.err = err
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		l.err = err
	}
	return n, err
}

func tooLarge(limit int64) error {
	return newError(ErrTooLarge, "", "", "document is longer than %d bytes (raise the limit with WithMaxBytes if it is genuine)", limit)
}

type parser struct {
	lr    *limitReader
	dec   *xml.Decoder
	o     *options
	depth int
	ns    string
	v3    bool
}

func parse(lr *limitReader, o *options) (*Metalink, error) {
	dec := xml.NewDecoder(lr)
	dec.Strict = true
	p := &parser{lr: lr, dec: dec, o: o}
	for {
		t, err := p.token()
		if err == io.EOF {
			return nil, newError(ErrNotMetalink, "", "", "document has no root element")
		}
		if err != nil {
			return nil, err
		}
		se, ok := t.(xml.StartElement)
		if !ok {
			continue
		}
		var m *Metalink
		switch {
		case se.Name.Local == "metalink" && se.Name.Space == NamespaceV4:
			p.ns = NamespaceV4
			m, err = p.metalinkV4()
		case se.Name.Local == "metalink" && se.Name.Space == NamespaceV3:
			p.ns, p.v3 = NamespaceV3, true
			m, err = p.metalinkV3(se)
		default:
			return nil, p.errorf(ErrNotMetalink, "", "", "root element is <%s> in namespace %q; want <metalink> in %q (Metalink 4) or %q (Metalink 3)",
				se.Name.Local, se.Name.Space, NamespaceV4, NamespaceV3)
		}
		if err != nil {
			return nil, err
		}
		if err := p.trailer(); err != nil {
			return nil, err
		}
		return m, nil
	}
}

// trailer reads to the end so that a malformed or second root after the
// first is refused rather than ignored.
func (p *parser) trailer() error {
	for {
		t, err := p.token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.StartElement:
			return p.errorf(ErrSyntax, "", "", "element <%s> after the root element", t.Name.Local)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return p.errorf(ErrSyntax, "", "", "text after the root element")
			}
		}
	}
}

func (p *parser) line() int {
	l, _ := p.dec.InputPos()
	return l
}

func (p *parser) errorf(sentinel error, file, field, format string, args ...any) error {
	e := newError(sentinel, file, field, format, args...)
	e.Line = p.line()
	return e
}

// token is the decoder's Token with the package's guards.
func (p *parser) token() (xml.Token, error) {
	t, err := p.dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, err
		}
		if errors.Is(err, errReadLimit) {
			return nil, tooLarge(p.o.maxBytes)
		}
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return nil, &Error{Line: se.Line, Msg: se.Msg, Err: ErrSyntax}
		}
		if p.lr.err != nil && errors.Is(err, p.lr.err) {
			// The reader failed: an I/O problem, not a bad document.
			return nil, fmt.Errorf("metalink: reading document: %w", err)
		}
		// encoding/xml reports some problems (an XML version other than
		// 1.0, an encoding other than UTF-8) as plain errors.
		return nil, p.errorf(ErrSyntax, "", "", "%v", err)
	}
	switch t := t.(type) {
	case xml.StartElement:
		p.depth++
		if p.depth > p.o.maxDepth {
			return nil, p.errorf(ErrTooDeep, "", "", "elements nest deeper than %d at <%s>", p.o.maxDepth, t.Name.Local)
		}
	case xml.EndElement:
		p.depth--
	case xml.Directive:
		return nil, p.errorf(ErrDoctype, "", "", "document contains <!%s>; Metalink needs no DOCTYPE, and entity declarations are refused", firstWord(t))
	}
	return t, nil
}

func firstWord(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexAny(s, " \t\r\n["); i >= 0 {
		s = s[:i]
	}
	if len(s) > 20 {
		s = s[:20]
	}
	return s
}

// children calls fn for every child element of the element just opened,
// until its end tag. fn must consume the child up to its own end tag.
func (p *parser) children(fn func(xml.StartElement) error) error {
	for {
		t, err := p.token()
		if err == io.EOF {
			return p.errorf(ErrSyntax, "", "", "unexpected end of document")
		}
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.StartElement:
			if err := fn(t.Copy()); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

// skip consumes the element just opened, with depth guarded.
func (p *parser) skip() error {
	return p.children(func(xml.StartElement) error { return p.skip() })
}

// text reads the trimmed character data of the element just opened,
// skipping child elements.
func (p *parser) text(file, field string) (string, error) {
	var b []byte
	for {
		t, err := p.token()
		if err == io.EOF {
			return "", p.errorf(ErrSyntax, file, field, "unexpected end of document")
		}
		if err != nil {
			return "", err
		}
		switch t := t.(type) {
		case xml.CharData:
			if len(b)+len(t) > p.o.maxText {
				return "", p.errorf(ErrLimit, file, field, "text longer than %d bytes", p.o.maxText)
			}
			b = append(b, t...)
		case xml.StartElement:
			if err := p.skip(); err != nil {
				return "", err
			}
		case xml.EndElement:
			return strings.TrimSpace(string(b)), nil
		}
	}
}

func attr(se xml.StartElement, name string) (string, bool) {
	for _, a := range se.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// mine reports whether se is a Metalink element (not an extension).
func (p *parser) mine(se xml.StartElement) bool { return se.Name.Space == p.ns }

func (p *parser) metalinkV4() (*Metalink, error) {
	m := &Metalink{}
	err := p.children(func(se xml.StartElement) error {
		if !p.mine(se) {
			return p.skip()
		}
		var err error
		switch se.Name.Local {
		case "file":
			if len(m.Files) >= p.o.maxFiles {
				return p.errorf(ErrLimit, "", "file", "more than %d files", p.o.maxFiles)
			}
			var f File
			f, err = p.fileV4(se)
			m.Files = append(m.Files, f)
		case "generator":
			m.Generator, err = p.text("", "generator")
		case "origin":
			d, _ := attr(se, "dynamic")
			m.Dynamic = strings.TrimSpace(d) == "true"
			m.Origin, err = p.text("", "origin")
		case "published":
			m.Published, err = p.date("published")
		case "updated":
			m.Updated, err = p.date("updated")
		default:
			return p.skip()
		}
		return err
	})
	return m, err
}

func (p *parser) date(field string) (time.Time, error) {
	s, err := p.text("", field)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, p.errorf(ErrInvalid, "", field, "%q is not an RFC 3339 date (like 2010-05-01T12:15:02Z)", s)
	}
	return t.UTC(), nil
}

func (p *parser) integer(file, field, s string, lo, hi int64) (int64, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi || (s != "" && s[0] == '+') {
		return 0, p.errorf(ErrInvalid, file, field, "%q is not an integer in %d..%d", s, lo, hi)
	}
	return n, nil
}

func (p *parser) fileV4(se xml.StartElement) (File, error) {
	name, ok := attr(se, "name")
	if !ok {
		return File{}, p.errorf(ErrInvalid, "", "file", "no name attribute")
	}
	f := File{Name: name, Size: -1}
	var pieces []*Pieces
	err := p.children(func(se xml.StartElement) error {
		if !p.mine(se) {
			return p.skip()
		}
		var err error
		var s string
		switch se.Name.Local {
		case "size":
			if s, err = p.text(name, "size"); err == nil {
				f.Size, err = p.integer(name, "size", s, 0, 1<<63-1)
			}
		case "hash":
			var h Hash
			if h, err = p.hash(se, name, fmt.Sprintf("hash[%d]", len(f.Hashes))); err == nil {
				f.Hashes = append(f.Hashes, h)
			}
		case "pieces":
			var pc *Pieces
			if pc, err = p.pieces(se, name); err == nil {
				pieces = append(pieces, pc)
			}
		case "url":
			err = p.url(se, &f)
		case "metaurl":
			err = p.metaURL(se, &f)
		case "identity":
			f.Identity, err = p.text(name, "identity")
		case "version":
			f.Version, err = p.text(name, "version")
		case "description":
			f.Description, err = p.text(name, "description")
		case "copyright":
			f.Copyright, err = p.text(name, "copyright")
		case "language":
			if s, err = p.text(name, "language"); err == nil {
				f.Languages = append(f.Languages, s)
			}
		case "os":
			if s, err = p.text(name, "os"); err == nil {
				f.OS = append(f.OS, s)
			}
		default:
			return p.skip()
		}
		return err
	})
	if err != nil {
		return f, err
	}
	f.Pieces, err = p.choosePieces(name, pieces)
	return f, err
}

func (p *parser) hash(se xml.StartElement, file, field string) (Hash, error) {
	t, ok := attr(se, "type")
	if !ok || strings.TrimSpace(t) == "" {
		return Hash{}, p.errorf(ErrHash, file, field, "no type attribute")
	}
	v, err := p.text(file, field)
	if err != nil {
		return Hash{}, err
	}
	return Hash{Type: CanonicalHashType(t), Value: strings.ToLower(v)}, nil
}

// pieces reads <pieces length type>; in Metalink 3 its hashes carry a
// piece="N" attribute, which must count up from 0.
func (p *parser) pieces(se xml.StartElement, file string) (*Pieces, error) {
	ls, _ := attr(se, "length")
	length, err := p.integer(file, "pieces length", ls, 1, 1<<63-1)
	if err != nil {
		return nil, err
	}
	t, ok := attr(se, "type")
	if !ok || strings.TrimSpace(t) == "" {
		return nil, p.errorf(ErrHash, file, "pieces", "no type attribute")
	}
	pc := &Pieces{Length: length, Type: CanonicalHashType(t)}
	err = p.children(func(se xml.StartElement) error {
		if !p.mine(se) || se.Name.Local != "hash" {
			return p.skip()
		}
		i := len(pc.Hashes)
		field := fmt.Sprintf("pieces/hash[%d]", i)
		if i >= p.o.maxPieces {
			return p.errorf(ErrLimit, file, "pieces", "more than %d piece hashes (raise WithMaxPieces if genuine)", p.o.maxPieces)
		}
		if p.v3 {
			if n, ok := attr(se, "piece"); ok {
				if _, err := p.integer(file, field+" piece", n, int64(i), int64(i)); err != nil {
					return err
				}
			}
		}
		v, err := p.text(file, field)
		if err != nil {
			return err
		}
		pc.Hashes = append(pc.Hashes, strings.ToLower(v))
		return nil
	})
	return pc, err
}

// choosePieces keeps the strongest of several <pieces> of one file.
func (p *parser) choosePieces(file string, all []*Pieces) (*Pieces, error) {
	var best *Pieces
	bestStrength := -1
	seen := map[string]bool{}
	for _, pc := range all {
		if seen[pc.Type] {
			return nil, p.errorf(ErrHash, file, "pieces", "two <pieces> of type %s", pc.Type)
		}
		seen[pc.Type] = true
		if s := hashTypes[pc.Type].strength; s > bestStrength {
			best, bestStrength = pc, s
		}
	}
	return best, nil
}

func (p *parser) checkURLCount(f *File) error {
	if len(f.URLs)+len(f.MetaURLs) >= p.o.maxURLs {
		return p.errorf(ErrLimit, f.Name, "url", "more than %d url and metaurl elements", p.o.maxURLs)
	}
	return nil
}

func (p *parser) url(se xml.StartElement, f *File) error {
	if err := p.checkURLCount(f); err != nil {
		return err
	}
	field := fmt.Sprintf("url[%d]", len(f.URLs))
	u := URL{Priority: DefaultPriority}
	if s, ok := attr(se, "priority"); ok {
		n, err := p.integer(f.Name, field+" priority", s, MinPriority, MaxPriority)
		if err != nil {
			return err
		}
		u.Priority = int(n)
	}
	if s, ok := attr(se, "location"); ok {
		u.Location = strings.ToLower(strings.TrimSpace(s))
	}
	var err error
	u.URL, err = p.text(f.Name, field)
	f.URLs = append(f.URLs, u)
	return err
}

func (p *parser) metaURL(se xml.StartElement, f *File) error {
	if err := p.checkURLCount(f); err != nil {
		return err
	}
	field := fmt.Sprintf("metaurl[%d]", len(f.MetaURLs))
	mu := MetaURL{Priority: DefaultPriority}
	if s, ok := attr(se, "priority"); ok {
		n, err := p.integer(f.Name, field+" priority", s, MinPriority, MaxPriority)
		if err != nil {
			return err
		}
		mu.Priority = int(n)
	}
	mt, _ := attr(se, "mediatype")
	mu.MediaType = strings.ToLower(strings.TrimSpace(mt))
	mu.Name, _ = attr(se, "name")
	var err error
	mu.URL, err = p.text(f.Name, field)
	f.MetaURLs = append(f.MetaURLs, mu)
	return err
}
