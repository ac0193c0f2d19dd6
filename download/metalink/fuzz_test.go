package metalink

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	names, _ := filepath.Glob("testdata/*.meta*")
	for _, p := range names {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(doc4(file4("a/b", `<size>3</size><pieces length="2" type="md5"><hash>`+strings.Repeat("a", 32)+`</hash><hash>`+strings.Repeat("b", 32)+`</hash></pieces>`))))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseBytes(b, WithMaxBytes(1<<20))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed document: %v", err)
		}
		again, err := ParseBytes(out)
		if err != nil {
			t.Fatalf("Parse of Marshal output: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip differs\n got %#v\nwant %#v", again, m)
		}
		dir := t.TempDir()
		for _, f := range m.Files {
			if p, err := f.SafeJoin(dir); err != nil || !strings.HasPrefix(p, dir+string(filepath.Separator)) {
				t.Fatalf("SafeJoin(%q) of a parsed name = %q, %v", f.Name, p, err)
			}
		}
	})
}

func FuzzParseLinkHeaders(f *testing.F) {
	f.Add(`<http://m1.example/f>; rel=duplicate; pri=1; geo=de; pref, </rel/f>; rel="duplicate x"; depth=2`)
	f.Add(`<http://u:p@m.example/f>; rel=duplicate; title="a,\"b"; pri=3;`)
	f.Add(`<x>; rel=duplicate; pri=+1, junk, <`)
	base, _ := url.Parse("https://user:pw@origin.example/dir/f.iso")
	f.Fuzz(func(t *testing.T, v string) {
		got, err := ParseLinkHeaders(http.Header{"Link": {v}}, base)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v does not match ErrInvalid", err)
		}
		seen := map[string]bool{}
		for _, u := range got {
			if seen[u.URL] {
				t.Fatalf("duplicate mirror %s", u.URL)
			}
			seen[u.URL] = true
			m := &Metalink{Files: []File{{Name: "f", Size: -1, URLs: []URL{u}}}}
			if err := m.Validate(); err != nil {
				t.Fatalf("mirror %+v fails Validate: %v", u, err)
			}
			p, _ := url.Parse(u.URL)
			if p.User != nil {
				t.Fatalf("mirror %s carries credentials", u.URL)
			}
		}
	})
}

func FuzzSafeJoin(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "a/../../b", "/abs", `a\b`, "C:x", "a/./b", "...", "a//b", "\x00"} {
		f.Add("/srv/dest", s)
	}
	f.Add("rel/dir", "x/y")
	f.Add("/", "etc/passwd")
	f.Fuzz(func(t *testing.T, dir, name string) {
		p, err := File{Name: name}.SafeJoin(dir)
		if err != nil {
			if !errors.Is(err, ErrUnsafePath) || p != "" {
				t.Fatalf("SafeJoin(%q, %q) = %q, %v", dir, name, p, err)
			}
			return
		}
		clean := filepath.Clean(dir)
		rel, err := filepath.Rel(clean, p)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			t.Fatalf("SafeJoin(%q, %q) = %q escapes %q (rel %q)", dir, name, p, clean, rel)
		}
		if filepath.Clean(p) != p {
			t.Fatalf("SafeJoin(%q, %q) = %q is not clean", dir, name, p)
		}
		if err := CheckName(name); err != nil {
			t.Fatalf("SafeJoin accepted %q, CheckName refuses it: %v", name, err)
		}
	})
}
