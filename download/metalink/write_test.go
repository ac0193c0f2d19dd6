package metalink

import (
	"bytes"
	"encoding/xml"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRoundTripSamples(t *testing.T) {
	t.Parallel()
	names, err := filepath.Glob("testdata/*.meta*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range names {
		base := filepath.Base(p)
		if strings.Contains(base, "laughs") || strings.Contains(base, "xxe") {
			continue
		}
		n++
		m := parseFile(t, base)
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("%s: Marshal: %v", base, err)
		}
		again, err := ParseBytes(out)
		if err != nil {
			t.Fatalf("%s: Parse of Marshal output: %v\n%s", base, err, out)
		}
		if !reflect.DeepEqual(m, again) {
			t.Errorf("%s: round trip differs\n got %+v\nwant %+v", base, again, m)
		}
		out2, _ := again.Marshal()
		if !bytes.Equal(out, out2) {
			t.Errorf("%s: Marshal is not deterministic", base)
		}
	}
	if n < 3 {
		t.Fatalf("only %d samples found", n)
	}
}

// TestMarshalStructure reads Marshal's output with encoding/xml, not with
// Parse, to check the RFC 5854 structure.
func TestMarshalStructure(t *testing.T) {
	t.Parallel()
	m := &Metalink{
		Generator: "g & co <1>",
		Published: time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)),
		Files: []File{{
			Name:   `dir/a "quoted" & <odd>.iso`,
			Size:   3,
			Hashes: []Hash{{"SHA-256", strings.ToUpper(okHash)}},
			Pieces: &Pieces{Length: 2, Type: "MD5", Hashes: []string{strings.Repeat("A", 32), strings.Repeat("b", 32)}},
			URLs:   []URL{{URL: "http://a.example/f?x=1&y=2", Priority: 5, Location: "DE", Preferred: true}},
		}},
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName   xml.Name `xml:"urn:ietf:params:xml:ns:metalink metalink"`
		Generator string   `xml:"generator"`
		Published string   `xml:"published"`
		File      []struct {
			Name string `xml:"name,attr"`
			Size int64  `xml:"size"`
			Hash []struct {
				Type  string `xml:"type,attr"`
				Value string `xml:",chardata"`
			} `xml:"hash"`
			Pieces struct {
				Length int64    `xml:"length,attr"`
				Type   string   `xml:"type,attr"`
				Hash   []string `xml:"hash"`
			} `xml:"pieces"`
			URL []struct {
				Location string `xml:"location,attr"`
				Priority int    `xml:"priority,attr"`
				Value    string `xml:",chardata"`
			} `xml:"url"`
		} `xml:"file"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !bytes.HasPrefix(out, []byte(xml.Header)) {
		t.Error("no XML declaration")
	}
	f := doc.File[0]
	if doc.Generator != m.Generator || doc.Published != "2024-01-02T02:04:05Z" || f.Name != m.Files[0].Name || f.Size != 3 ||
		f.Hash[0].Type != "sha-256" || f.Hash[0].Value != okHash ||
		f.Pieces.Length != 2 || f.Pieces.Type != "md5" || f.Pieces.Hash[0] != strings.Repeat("a", 32) ||
		f.URL[0].Location != "de" || f.URL[0].Priority != 5 || f.URL[0].Value != "http://a.example/f?x=1&y=2" {
		t.Errorf("unexpected structure: %+v\n%s", doc, out)
	}
	back, err := ParseBytes(out)
	if err != nil {
		t.Fatal(err)
	}
	if back.Files[0].URLs[0].Preferred {
		t.Error("Preferred survived XML, which has no place for it")
	}
	var buf bytes.Buffer
	n, err := m.WriteTo(&buf)
	if err != nil || n != int64(len(out)) || !bytes.Equal(buf.Bytes(), out) {
		t.Errorf("WriteTo wrote %d bytes (err %v), want Marshal's %d", n, err, len(out))
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	t.Parallel()
	good := func() *Metalink {
		return &Metalink{Files: []File{{Name: "f", Size: -1, URLs: []URL{{URL: "https://a/f", Priority: 1}}}}}
	}
	cases := []struct {
		name   string
		mutate func(*Metalink)
		want   string
	}{
		{"nil files", func(m *Metalink) { m.Files = nil }, "describes no file"},
		{"size -2", func(m *Metalink) { m.Files[0].Size = -2 }, "size -2 is negative"},
		{"priority 0", func(m *Metalink) { m.Files[0].URLs[0].Priority = 0 }, "priority 0 outside 1..999999"},
		{"traversal", func(m *Metalink) { m.Files[0].Name = "../x" }, `".." segment`},
		{"NUL in name", func(m *Metalink) { m.Files[0].Name = "a\x00b" }, "control character U+0000"},
		{"invalid UTF-8", func(m *Metalink) { m.Files[0].Description = "\xff" }, "not valid UTF-8"},
		{"XML-less char", func(m *Metalink) { m.Files[0].Description = "a\x01" }, "XML cannot carry"},
		{"untrimmed", func(m *Metalink) { m.Generator = " g" }, "leading or trailing white space"},
		{"year", func(m *Metalink) { m.Updated = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "year 10000"},
		{"pieces without hashes", func(m *Metalink) { m.Files[0].Pieces = &Pieces{Length: 1, Type: "md5"} }, "no piece hash"},
		{"pieces nil-length", func(m *Metalink) {
			m.Files[0].Pieces = &Pieces{Type: "md5", Hashes: []string{strings.Repeat("a", 32)}}
		}, "piece length 0"},
		{"credentials", func(m *Metalink) { m.Files[0].URLs[0].URL = "https://u:p@a/f" }, "carries credentials"},
		{"metaurl mediatype", func(m *Metalink) { m.Files[0].MetaURLs = []MetaURL{{URL: "https://a/t", Priority: 1}} }, "mediatype"},
	}
	if _, err := good().Marshal(); err != nil {
		t.Fatalf("the good document: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := good()
			c.mutate(m)
			out, err := m.Marshal()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) || out != nil {
				t.Errorf("err = %v (output %d bytes), want one containing %q and no output", err, len(out), c.want)
			}
			if err2 := m.Validate(); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("Validate = %v, Marshal = %v; want the same error", err2, err)
			}
		})
	}
	var nilM *Metalink
	if err := nilM.Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil Metalink: %v", err)
	}
}
