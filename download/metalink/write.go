package metalink

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"time"
)

// Marshal validates m (with the given options, as Validate) and returns
// it as a Metalink 4 document in the RFC 5854 namespace, UTF-8, indented
// by two spaces. The output is deterministic: elements in a fixed order,
// files, hashes and URLs in m's order, every url and metaurl with an
// explicit priority, dates in UTC (RFC 3339), hash types and values and
// locations lowercased, a size only when known. Parse reads it back equal
// to m (Preferred, which XML has no place for, excepted).
//
// Marshal does not modify m and is safe for concurrent use with other
// readers of m.
func (m *Metalink) Marshal(opts ...Option) ([]byte, error) {
	if err := m.Validate(opts...); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w := &writer{b: &b}
	b.WriteString(xml.Header)
	w.open(0, "metalink", "xmlns", NamespaceV4)
	w.text(1, "generator", m.Generator)
	if m.Origin != "" || m.Dynamic {
		if m.Dynamic {
			w.elem(1, "origin", m.Origin, "dynamic", "true")
		} else {
			w.elem(1, "origin", m.Origin)
		}
	}
	w.date(1, "published", m.Published)
	w.date(1, "updated", m.Updated)
	for i := range m.Files {
		w.file(&m.Files[i])
	}
	w.close(0, "metalink")
	return b.Bytes(), nil
}

// WriteTo writes Marshal's output to dst, with the default limits. It
// implements io.WriterTo.
func (m *Metalink) WriteTo(dst io.Writer) (int64, error) {
	out, err := m.Marshal()
	if err != nil {
		return 0, err
	}
	n, err := dst.Write(out)
	return int64(n), err
}

type writer struct{ b *bytes.Buffer }

func (w *writer) indent(level int) {
	for range level {
		w.b.WriteString("  ")
	}
}

func (w *writer) start(level int, name string, attrs []string) {
	w.indent(level)
	w.b.WriteByte('<')
	w.b.WriteString(name)
	for i := 0; i+1 < len(attrs); i += 2 {
		w.b.WriteByte(' ')
		w.b.WriteString(attrs[i])
		w.b.WriteString(`="`)
		// EscapeText escapes quotes and white space controls, so the
		// value survives attribute-value normalisation unchanged.
		_ = xml.EscapeText(w.b, []byte(attrs[i+1]))
		w.b.WriteByte('"')
	}
	w.b.WriteByte('>')
}

func (w *writer) open(level int, name string, attrs ...string) {
	w.start(level, name, attrs)
	w.b.WriteByte('\n')
}

func (w *writer) close(level int, name string) {
	w.indent(level)
	w.b.WriteString("</" + name + ">\n")
}

func (w *writer) elem(level int, name, text string, attrs ...string) {
	w.start(level, name, attrs)
	_ = xml.EscapeText(w.b, []byte(text))
	w.b.WriteString("</" + name + ">\n")
}

// text writes an element only when its text is not empty.
func (w *writer) text(level int, name, text string) {
	if text != "" {
		w.elem(level, name, text)
	}
}

func (w *writer) date(level int, name string, t time.Time) {
	if !t.IsZero() {
		w.elem(level, name, t.UTC().Format(time.RFC3339Nano))
	}
}

func (w *writer) file(f *File) {
	w.open(1, "file", "name", f.Name)
	w.text(2, "identity", f.Identity)
	w.text(2, "version", f.Version)
	w.text(2, "description", f.Description)
	w.text(2, "copyright", f.Copyright)
	for _, s := range f.Languages {
		w.elem(2, "language", s)
	}
	for _, s := range f.OS {
		w.elem(2, "os", s)
	}
	if f.Size >= 0 {
		w.elem(2, "size", strconv.FormatInt(f.Size, 10))
	}
	for _, h := range f.Hashes {
		w.elem(2, "hash", strings.ToLower(h.Value), "type", CanonicalHashType(h.Type))
	}
	if pc := f.Pieces; pc != nil {
		w.open(2, "pieces", "length", strconv.FormatInt(pc.Length, 10), "type", CanonicalHashType(pc.Type))
		for _, h := range pc.Hashes {
			w.elem(3, "hash", strings.ToLower(h))
		}
		w.close(2, "pieces")
	}
	for _, u := range f.URLs {
		attrs := []string{}
		if u.Location != "" {
			attrs = append(attrs, "location", strings.ToLower(u.Location))
		}
		attrs = append(attrs, "priority", strconv.Itoa(u.Priority))
		w.elem(2, "url", u.URL, attrs...)
	}
	for _, mu := range f.MetaURLs {
		attrs := []string{"mediatype", strings.ToLower(mu.MediaType)}
		if mu.Name != "" {
			attrs = append(attrs, "name", mu.Name)
		}
		attrs = append(attrs, "priority", strconv.Itoa(mu.Priority))
		w.elem(2, "metaurl", mu.URL, attrs...)
	}
	w.close(1, "file")
}
