package metalink

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// metalinkV3 reads a Metalink 3.0 document, the format aria2 and older
// mirror tools write: attributes on the root, files under <files>, hashes
// under <verification>, mirrors under <resources> with a preference
// (1..100, higher is better) instead of a priority.
func (p *parser) metalinkV3(root xml.StartElement) (*Metalink, error) {
	m := &Metalink{}
	m.Generator, _ = attr(root, "generator")
	m.Generator = strings.TrimSpace(m.Generator)
	m.Origin, _ = attr(root, "origin")
	m.Origin = strings.TrimSpace(m.Origin)
	typ, _ := attr(root, "type")
	m.Dynamic = strings.TrimSpace(typ) == "dynamic"
	if s, ok := attr(root, "pubdate"); ok {
		m.Published = date822(s)
	}
	if s, ok := attr(root, "refreshdate"); ok {
		m.Updated = date822(s)
	}
	err := p.children(func(se xml.StartElement) error {
		if !p.mine(se) || se.Name.Local != "files" {
			return p.skip()
		}
		return p.children(func(se xml.StartElement) error {
			if !p.mine(se) || se.Name.Local != "file" {
				return p.skip()
			}
			if len(m.Files) >= p.o.maxFiles {
				return p.errorf(ErrLimit, "", "file", "more than %d files", p.o.maxFiles)
			}
			f, err := p.fileV3(se)
			m.Files = append(m.Files, f)
			return err
		})
	})
	return m, err
}

// date822 parses Metalink 3's RFC 822 dates; one that does not parse is
// left zero rather than failing the document, because these dates are
// informational and often sloppy in the wild.
func date822(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, time.RFC822Z, time.RFC822} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

func (p *parser) fileV3(se xml.StartElement) (File, error) {
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
		case "verification":
			err = p.children(func(se xml.StartElement) error {
				if !p.mine(se) {
					return p.skip()
				}
				switch se.Name.Local {
				case "hash":
					h, err := p.hash(se, name, fmt.Sprintf("hash[%d]", len(f.Hashes)))
					if err == nil {
						f.Hashes = append(f.Hashes, h)
					}
					return err
				case "pieces":
					pc, err := p.pieces(se, name)
					if err == nil {
						pieces = append(pieces, pc)
					}
					return err
				}
				return p.skip()
			})
		case "resources":
			err = p.children(func(se xml.StartElement) error {
				if !p.mine(se) || se.Name.Local != "url" {
					return p.skip()
				}
				return p.urlV3(se, &f)
			})
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

// urlV3 maps a Metalink 3 <url type preference location>: a bittorrent
// URL becomes a MetaURL (it points at a .torrent, as in Metalink 4);
// magnet and ed2k links, which have no host and no Metalink 4 form, are
// dropped; preference p becomes priority 101-p.
func (p *parser) urlV3(se xml.StartElement, f *File) error {
	if err := p.checkURLCount(f); err != nil {
		return err
	}
	typ, _ := attr(se, "type")
	typ = strings.ToLower(strings.TrimSpace(typ))
	field := fmt.Sprintf("url[%d]", len(f.URLs))
	prio := DefaultPriority
	if s, ok := attr(se, "preference"); ok {
		n, err := p.integer(f.Name, field+" preference", s, 0, 100)
		if err != nil {
			return err
		}
		prio = 101 - int(n)
	}
	loc, _ := attr(se, "location")
	loc = strings.ToLower(strings.TrimSpace(loc))
	text, err := p.text(f.Name, field)
	if err != nil {
		return err
	}
	switch typ {
	case "magnet", "ed2k":
		return nil
	case "bittorrent":
		f.MetaURLs = append(f.MetaURLs, MetaURL{URL: text, MediaType: "torrent", Priority: prio})
		return nil
	}
	f.URLs = append(f.URLs, URL{URL: text, Priority: prio, Location: loc})
	return nil
}
