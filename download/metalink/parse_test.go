package metalink

import (
	"bufio"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parseFile(t *testing.T, name string, opts ...Option) *Metalink {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseBytes(b, opts...)
	if err != nil {
		t.Fatalf("ParseBytes(%s): %v", name, err)
	}
	return m
}

// sums reads testdata/content.sums, written by the script that made the
// samples, independently of this package.
func sums(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("testdata/content.sums")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		out[k] = v
	}
	return out
}

// content is the file the samples describe: byte i is (7i+3) mod 251.
func content() []byte {
	b := make([]byte, 1000000)
	for i := range b {
		b[i] = byte((i*7 + 3) % 251)
	}
	return b
}

func TestParseRFC5854Example(t *testing.T) {
	t.Parallel()
	m := parseFile(t, "rfc5854.meta4")
	want := &Metalink{
		Published: time.Date(2009, 5, 15, 12, 23, 23, 0, time.UTC),
		Files: []File{{
			Name:        "example.ext",
			Size:        14471447,
			Identity:    "Example",
			Version:     "1.0",
			Languages:   []string{"en"},
			Description: "A description of the example file for download.",
			Hashes:      []Hash{{"sha-256", hex.EncodeToString(sha256Sum([]byte("example.ext")))}},
			URLs: []URL{
				{URL: "ftp://ftp.example.com/example.ext", Priority: 1, Location: "de"},
				{URL: "http://example.com/example.ext", Priority: 1, Location: "fr"},
			},
			MetaURLs: []MetaURL{{URL: "http://example.com/example.ext.torrent", MediaType: "torrent", Priority: 2}},
		}},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got  %+v\nwant %+v", m, want)
	}
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestParseAria2V3(t *testing.T) {
	t.Parallel()
	m := parseFile(t, "aria2-v3.metalink")
	s := sums(t)
	if m.Generator != "Metalink Editor/2.0dev" || m.Dynamic {
		t.Errorf("generator %q dynamic %v", m.Generator, m.Dynamic)
	}
	if want := time.Date(2005, 12, 18, 12, 0, 0, 0, time.UTC); !m.Published.Equal(want) {
		t.Errorf("published %v, want %v", m.Published, want)
	}
	if len(m.Files) != 1 {
		t.Fatalf("%d files, want 1", len(m.Files))
	}
	f := m.Files[0]
	if f.Name != "images/disk.qcow2" || f.Size != 1000000 || f.Version != "1.0" ||
		!reflect.DeepEqual(f.Languages, []string{"en-US"}) || !reflect.DeepEqual(f.OS, []string{"Linux-x86"}) {
		t.Errorf("file fields: %+v", f)
	}
	wantHashes := []Hash{{"md5", s["md5"]}, {"sha-1", s["sha-1"]}, {"sha-256", s["sha-256"]}}
	if !reflect.DeepEqual(f.Hashes, wantHashes) {
		t.Errorf("hashes %v, want %v", f.Hashes, wantHashes)
	}
	// preference 100 → 1, 90 → 11, 10 → 91, none → default.
	wantURLs := []URL{
		{URL: "ftp://ftp.example.jp/images/disk.qcow2", Priority: 1, Location: "jp"},
		{URL: "http://us.example.org/images/disk.qcow2", Priority: 11, Location: "us"},
		{URL: "http://slow.example.org/images/disk.qcow2", Priority: 91},
		{URL: "http://fallback.example.org/images/disk.qcow2", Priority: 999999},
	}
	if !reflect.DeepEqual(f.URLs, wantURLs) {
		t.Errorf("urls\n got %v\nwant %v", f.URLs, wantURLs)
	}
	wantMeta := []MetaURL{{URL: "http://www.example.org/disk.qcow2.torrent", MediaType: "torrent", Priority: 1}}
	if !reflect.DeepEqual(f.MetaURLs, wantMeta) {
		t.Errorf("metaurls %v, want %v", f.MetaURLs, wantMeta)
	}
	checkPieces(t, f, "sha-1")
}

// checkPieces hashes the real content piece by piece with PieceRange and
// compares with the document.
func checkPieces(t *testing.T, f File, typ string) {
	t.Helper()
	pc := f.Pieces
	if pc == nil || pc.Type != typ || pc.Length != 262144 {
		t.Fatalf("pieces %+v, want %s in 262144-byte pieces", pc, typ)
	}
	data := content()
	if n := pc.Count(f.Size); n != 4 || int64(len(pc.Hashes)) != n {
		t.Fatalf("count %d, hashes %d, want 4", n, len(pc.Hashes))
	}
	var total int64
	for i, want := range pc.Hashes {
		off, n, ok := pc.PieceRange(int64(i), f.Size)
		if !ok || off != total {
			t.Fatalf("piece %d at %d (ok %v), want at %d", i, off, ok, total)
		}
		total += n
		var got string
		switch typ {
		case "sha-1":
			s := sha1.Sum(data[off : off+n])
			got = hex.EncodeToString(s[:])
		case "sha-256":
			got = hex.EncodeToString(sha256Sum(data[off : off+n]))
		}
		if got != want {
			t.Errorf("piece %d: document says %s, content hashes to %s", i, want, got)
		}
	}
	if total != f.Size {
		t.Errorf("pieces cover %d bytes, want %d", total, f.Size)
	}
	if _, _, ok := pc.PieceRange(4, f.Size); ok {
		t.Error("PieceRange(4) of a 4-piece file is ok")
	}
}

func TestParseMirrorsSample(t *testing.T) {
	t.Parallel()
	m := parseFile(t, "mirrors.meta4")
	s := sums(t)
	if m.Origin != "https://images.example.org/disk.meta4" || !m.Dynamic {
		t.Errorf("origin %q dynamic %v", m.Origin, m.Dynamic)
	}
	if want := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC); m.Updated != want {
		t.Errorf("updated %v, want %v (in UTC)", m.Updated, want)
	}
	if len(m.Files) != 2 {
		t.Fatalf("%d files, want 2", len(m.Files))
	}
	f := m.Files[0]
	h, ok := f.StrongestHash()
	if !ok || h != (Hash{"sha-512", s["sha-512"]}) {
		t.Errorf("StrongestHash = %v, %v; want sha-512 %s", h, ok, s["sha-512"])
	}
	checkPieces(t, f, "sha-256") // the stronger of the two <pieces>
	var got []string
	for _, u := range f.SortedURLs() {
		got = append(got, u.URL)
	}
	want := []string{"https://a.example.org/disk.qcow2", "http://c.example.org/disk.qcow2", "https://b.example.org/disk.qcow2", "nfs://nfs.example.org/export/disk.qcow2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SortedURLs\n got %v\nwant %v", got, want)
	}
	if f.URLs[0].Location != "de" {
		t.Errorf("location %q, want lowercased de", f.URLs[0].Location)
	}
	got = got[:0]
	for _, u := range f.URLsFor("HTTPS") {
		got = append(got, u.URL)
	}
	if want := []string{"https://a.example.org/disk.qcow2", "https://b.example.org/disk.qcow2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("URLsFor(HTTPS) = %v, want %v", got, want)
	}
	if f.URLs[0].URL != "https://b.example.org/disk.qcow2" {
		t.Error("SortedURLs/URLsFor reordered File.URLs in place")
	}
	if g := m.Files[1]; g.Name != "checksums/SHA256SUMS" || g.Size != -1 || g.Pieces != nil {
		t.Errorf("second file %+v; want no size (-1) and no pieces", g)
	}
	if _, err := ParseBytes(mustRead(t, "mirrors.meta4"), RequireSize()); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `file "checksums/SHA256SUMS": size: no size given`) {
		t.Errorf("RequireSize: err = %v", err)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStrongestHashIgnoresUnknown(t *testing.T) {
	t.Parallel()
	f := File{Hashes: []Hash{{"blake3", strings.Repeat("a", 64)}, {"md5", strings.Repeat("b", 32)}, {"sha-224", strings.Repeat("c", 56)}}}
	if h, ok := f.StrongestHash(); !ok || h.Type != "sha-224" {
		t.Errorf("got %v %v, want sha-224", h, ok)
	}
	if f.Hashes[0].Known() || !f.Hashes[1].Known() {
		t.Error("Known: blake3 must be unknown, md5 known")
	}
	if _, ok := (File{Hashes: []Hash{{"blake3", "ab"}}}).StrongestHash(); ok {
		t.Error("an unknown type was returned as strongest")
	}
}

func TestPiecesCount(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		length, size, want int64
	}{
		{10, 0, 0}, {10, 1, 1}, {10, 10, 1}, {10, 11, 2}, {1, 1 << 62, 1 << 62},
		{3, 1<<63 - 1, (1<<63-1)/3 + 1}, {1<<63 - 1, 1<<63 - 1, 1}, {0, 5, 0},
	} {
		if got := (Pieces{Length: c.length}).Count(c.size); got != c.want {
			t.Errorf("Count(length %d, size %d) = %d, want %d", c.length, c.size, got, c.want)
		}
	}
	off, n, ok := (Pieces{Length: 10}).PieceRange(2, 25)
	if !ok || off != 20 || n != 5 {
		t.Errorf("PieceRange(2, 25) = %d, %d, %v; want 20, 5, true", off, n, ok)
	}
	if _, _, ok := (Pieces{Length: 10}).PieceRange(-1, 25); ok {
		t.Error("PieceRange(-1) ok")
	}
}

const okHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// doc4 wraps file elements into a Metalink 4 document.
func doc4(files string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<metalink xmlns="urn:ietf:params:xml:ns:metalink">` + files + `</metalink>`
}

// file4 is one file named name with body, plus a URL unless body has one.
func file4(name, body string) string {
	if !strings.Contains(body, "url") {
		body += `<url>http://example.org/f</url>`
	}
	return `<file name="` + name + `">` + body + `</file>`
}

func TestParseRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		doc      string
		sentinel error  // nil: the document is valid
		want     string // substring of the error
	}{
		{"minimal", doc4(file4("f.iso", "")), nil, ""},
		{"subdirectory", doc4(file4("dir/sub/f.qcow2", "")), nil, ""},
		{"size zero", doc4(file4("f", "<size>0</size>")), nil, ""},
		{"uppercase hash", doc4(file4("f", `<hash type="SHA-256">`+strings.ToUpper(okHash)+`</hash>`)), nil, ""},
		{"unknown hash type kept", doc4(file4("f", `<hash type="blake2b">abcd</hash>`)), nil, ""},
		{"priority bounds", doc4(file4("f", `<url priority="1">http://a/f</url><url priority="999999">http://b/f</url>`)), nil, ""},
		{"ftp and rsync kept", doc4(file4("f", `<url>ftp://a/f</url><url>rsync://b/f</url>`)), nil, ""},
		{"no file", doc4(""), ErrInvalid, "describes no file"},
		{"no name", doc4(`<file><url>http://a/f</url></file>`), ErrInvalid, "no name attribute"},
		{"empty name", doc4(file4("", "")), ErrUnsafePath, "empty file name"},
		{"absolute", doc4(file4("/etc/passwd", "")), ErrUnsafePath, `file "/etc/passwd": name: absolute name`},
		{"dot slash", doc4(file4("./f", "")), ErrUnsafePath, `"." segment`},
		{"dot dot prefix", doc4(file4("../f", "")), ErrUnsafePath, `".." segment`},
		{"dot dot inside", doc4(file4("a/../../b", "")), ErrUnsafePath, `".." segment`},
		{"dot dot trailing", doc4(file4("a/..", "")), ErrUnsafePath, `".." segment`},
		{"trailing slash", doc4(file4("a/", "")), ErrUnsafePath, "empty segment"},
		{"double slash", doc4(file4("a//b", "")), ErrUnsafePath, "empty segment"},
		{"backslash", doc4(file4(`..\..\windows\f`, "")), ErrUnsafePath, "backslash"},
		{"drive letter", doc4(file4("C:f", "")), ErrUnsafePath, "colon"},
		{"control char", doc4(file4("a&#x85;b", "")), ErrUnsafePath, "control character U+0085"},
		{"control char XML refuses", doc4(file4("a&#x1b;b", "")), ErrSyntax, "illegal character code U+001B"},
		{"tab", doc4(file4("a&#9;b", "")), ErrUnsafePath, "control character U+0009"},
		{"long segment", doc4(file4(strings.Repeat("a", 256), "")), ErrUnsafePath, "longer than 255"},
		{"duplicate names", doc4(file4("f", "") + file4("f", "")), ErrInvalid, `file "f": name: two files have this name`},
		{"negative size", doc4(file4("f", "<size>-1</size>")), ErrInvalid, `file "f": size: "-1" is not an integer`},
		{"size not a number", doc4(file4("f", "<size>12k</size>")), ErrInvalid, `"12k" is not an integer`},
		{"size overflow", doc4(file4("f", "<size>9223372036854775808</size>")), ErrInvalid, "is not an integer in 0..9223372036854775807"},
		{"hash no type", doc4(file4("f", "<hash>"+okHash+"</hash>")), ErrHash, "hash[0]: no type attribute"},
		{"hash short", doc4(file4("f", `<hash type="sha-256">abcd</hash>`)), ErrHash, "sha-256 value has 4 hex digits, want 64"},
		{"hash not hex", doc4(file4("f", `<hash type="md5">`+strings.Repeat("g", 32)+`</hash>`)), ErrHash, "is not hexadecimal"},
		{"hash empty", doc4(file4("f", `<hash type="md5"></hash>`)), ErrHash, "is not hexadecimal"},
		{"hash type junk", doc4(file4("f", `<hash type="sha 256">abcd</hash>`)), ErrHash, "is not a hash type name"},
		{"duplicate hash type", doc4(file4("f", `<hash type="sha-256">`+okHash+`</hash><hash type="sha256">`+okHash+`</hash>`)), ErrHash, "a second sha-256 hash"},
		{"pieces zero length", doc4(file4("f", `<size>1</size><pieces length="0" type="md5"><hash>`+strings.Repeat("a", 32)+`</hash></pieces>`)), ErrInvalid, "pieces length"},
		{"pieces no hash", doc4(file4("f", `<size>1</size><pieces length="1" type="md5"></pieces>`)), ErrInvalid, "no piece hash"},
		{"pieces too few", doc4(file4("f", `<size>3</size><pieces length="2" type="md5"><hash>`+strings.Repeat("a", 32)+`</hash></pieces>`)), ErrInvalid, "1 piece hashes, but a 3-byte file in 2-byte pieces has 2 pieces"},
		{"pieces too many", doc4(file4("f", `<size>2</size><pieces length="2" type="md5"><hash>`+strings.Repeat("a", 32)+`</hash><hash>`+strings.Repeat("a", 32)+`</hash></pieces>`)), ErrInvalid, "2 piece hashes, but a 2-byte file in 2-byte pieces has 1 pieces"},
		{"piece hash bad", doc4(file4("f", `<size>2</size><pieces length="2" type="sha-1"><hash>abc</hash></pieces>`)), ErrHash, "pieces/hash[0]: sha-1 value has 3 hex digits, want 40"},
		{"two pieces same type", doc4(file4("f", `<pieces length="2" type="md5"><hash>`+strings.Repeat("a", 32)+`</hash></pieces><pieces length="2" type="MD5"><hash>`+strings.Repeat("a", 32)+`</hash></pieces>`)), ErrHash, "two <pieces> of type md5"},
		{"no url", doc4(`<file name="f"><size>1</size></file>`), ErrURL, "no url or metaurl"},
		{"relative url", doc4(file4("f", `<url>/f.iso</url>`)), ErrURL, "is not an absolute URL with a host"},
		{"file url", doc4(file4("f", `<url>file:///etc/passwd</url>`)), ErrURL, "file URLs are refused"},
		{"file url with host", doc4(file4("f", `<url>FILE://localhost/etc/passwd</url>`)), ErrURL, "file URLs are refused"},
		{"credentials", doc4(file4("f", `<url>https://alice:s3cret@mirror.example/f</url>`)), ErrURL, "carries credentials"},
		{"bad url", doc4(file4("f", `<url>http://[::1/f</url>`)), ErrURL, "does not parse"},
		{"opaque url", doc4(file4("f", `<url>mailto:a@b</url>`)), ErrURL, "not an absolute URL"},
		{"priority zero", doc4(file4("f", `<url priority="0">http://a/f</url>`)), ErrInvalid, `url[0] priority: "0" is not an integer in 1..999999`},
		{"priority big", doc4(file4("f", `<url priority="1000000">http://a/f</url>`)), ErrInvalid, "1..999999"},
		{"location long", doc4(file4("f", `<url location="deu">http://a/f</url>`)), ErrInvalid, "not an ISO 3166-1 alpha-2"},
		{"location digits", doc4(file4("f", `<url location="1a">http://a/f</url>`)), ErrInvalid, "not an ISO 3166-1 alpha-2"},
		{"metaurl no mediatype", doc4(file4("f", `<metaurl>http://a/f.torrent</metaurl>`)), ErrInvalid, "metaurl[0] mediatype"},
		{"metaurl bad name", doc4(file4("f", `<metaurl mediatype="torrent" name="../x">http://a/f.torrent</metaurl>`)), ErrUnsafePath, `metaurl[0] name`},
		{"bad date", doc4(`<published>yesterday</published>` + file4("f", "")), ErrInvalid, "not an RFC 3339 date"},
		{"wrong namespace", `<metalink xmlns="urn:example"><file name="f"/></metalink>`, ErrNotMetalink, `root element is <metalink> in namespace "urn:example"`},
		{"no namespace", `<metalink version="3.0"><files/></metalink>`, ErrNotMetalink, "want <metalink>"},
		{"html", `<html><body>not found</body></html>`, ErrNotMetalink, "root element is <html>"},
		{"empty", ``, ErrNotMetalink, "no root element"},
		{"unclosed", doc4(file4("f", ""))[:60], ErrSyntax, "line"},
		{"second root", doc4(file4("f", "")) + "<metalink/>", ErrSyntax, "after the root element"},
		{"undeclared entity", doc4(file4("f", "<description>&foo;</description>")), ErrSyntax, "invalid character entity"},
		{"v3 preference", `<metalink xmlns="http://www.metalinker.org/" version="3.0"><files><file name="f"><resources><url type="http" preference="101">http://a/f</url></resources></file></files></metalink>`, ErrInvalid, `preference: "101" is not an integer in 0..100`},
		{"v3 piece order", `<metalink xmlns="http://www.metalinker.org/" version="3.0"><files><file name="f"><size>2</size><verification><pieces length="1" type="md5"><hash piece="1">` + strings.Repeat("a", 32) + `</hash><hash piece="0">` + strings.Repeat("a", 32) + `</hash></pieces></verification><resources><url type="http">http://a/f</url></resources></file></files></metalink>`, ErrInvalid, `pieces/hash[0] piece: "1"`},
		{"v3 traversal", `<metalink xmlns="http://www.metalinker.org/" version="3.0"><files><file name="../../etc/cron.d/x"><resources><url type="http">http://a/f</url></resources></file></files></metalink>`, ErrUnsafePath, `".." segment`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := ParseBytes([]byte(c.doc))
			if c.sentinel == nil {
				if err != nil {
					t.Fatalf("valid document refused: %v", err)
				}
				if err := m.Validate(); err != nil {
					t.Fatalf("Validate of a parsed document: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", c.want)
			}
			if !errors.Is(err, c.sentinel) || !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match %v and ErrInvalid", err, c.sentinel)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if m != nil {
				t.Error("a Metalink was returned with the error")
			}
		})
	}
}

func TestParseNormalises(t *testing.T) {
	t.Parallel()
	m, err := ParseBytes([]byte(doc4(file4("f", `<hash type="SHA256">`+strings.ToUpper(okHash)+`</hash><url location="DE">http://a/f</url>`))))
	if err != nil {
		t.Fatal(err)
	}
	f := m.Files[0]
	if f.Hashes[0] != (Hash{"sha-256", okHash}) || f.URLs[0].Location != "de" || f.URLs[0].Priority != DefaultPriority {
		t.Errorf("not normalised: %+v", f)
	}
}

func TestErrorRedactsURL(t *testing.T) {
	t.Parallel()
	_, err := ParseBytes([]byte(doc4(file4("f", `<url>https://alice:s3cret@mirror.example/f</url>`))))
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v: want one that hides the password", err)
	}
}
