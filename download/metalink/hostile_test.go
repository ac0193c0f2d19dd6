package metalink

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func TestHostileEntities(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"billion-laughs.meta4", "xxe.meta4"} {
		f, err := os.Open("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(f)
		f.Close()
		if !errors.Is(err, ErrDoctype) || !strings.Contains(err.Error(), "document contains <!DOCTYPE>") {
			t.Errorf("%s: err = %v, want ErrDoctype naming the DOCTYPE", name, err)
		}
	}
	// A directive anywhere, not only in the prolog.
	_, err := ParseBytes([]byte(doc4(`<!DOCTYPE x>` + file4("f", ""))))
	if !errors.Is(err, ErrDoctype) {
		t.Errorf("inner directive: err = %v, want ErrDoctype", err)
	}
}

func TestHostileDepth(t *testing.T) {
	t.Parallel()
	const n = 10000
	doc := doc4(strings.Repeat("<x:a xmlns:x='urn:x'>", n) + strings.Repeat("</x:a>", n) + file4("f", ""))
	_, err := ParseBytes([]byte(doc))
	if !errors.Is(err, ErrTooDeep) || !strings.Contains(err.Error(), "deeper than 32") {
		t.Fatalf("err = %v, want ErrTooDeep at 32", err)
	}
	// Deep nesting inside a text element or a file is caught the same way.
	doc = doc4(file4("f", "<description>"+strings.Repeat("<b>", n)+strings.Repeat("</b>", n)+"</description>"))
	if _, err := ParseBytes([]byte(doc)); !errors.Is(err, ErrTooDeep) {
		t.Errorf("nested in description: err = %v, want ErrTooDeep", err)
	}
	// Extensions within the limit are skipped.
	doc = doc4(strings.Repeat("<x:a xmlns:x='urn:x'>", 20) + strings.Repeat("</x:a>", 20) + file4("f", ""))
	if _, err := ParseBytes([]byte(doc)); err != nil {
		t.Errorf("20-deep extension: %v", err)
	}
	if _, err := ParseBytes([]byte(doc), WithMaxDepth(10)); !errors.Is(err, ErrTooDeep) {
		t.Errorf("WithMaxDepth(10): err = %v, want ErrTooDeep", err)
	}
}

// endless yields a valid Metalink opening and then description text for
// ever, counting what was read from it.
type endless struct {
	head []byte
	read int64
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(e.head) > 0 {
			c := copy(p[n:], e.head)
			e.head = e.head[c:]
			n += c
			continue
		}
		p[n] = 'x'
		n++
	}
	e.read += int64(n)
	return n, nil
}

func TestHostileSize(t *testing.T) {
	t.Parallel()
	const fifty = 50 << 20
	r := &endless{head: []byte(`<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="f"><description>`)}
	_, err := Parse(io.LimitReader(r, fifty), WithMaxText(fifty))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "longer than 4194304 bytes") {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if r.read >= fifty/2 || r.read < DefaultMaxBytes {
		t.Errorf("read %d bytes of a 50 MiB document; want it to stop just past the 4 MiB limit", r.read)
	}
	// A document of exactly the limit passes; one byte more does not.
	doc := []byte(doc4(file4("f", "")))
	if _, err := Parse(bytes.NewReader(doc), WithMaxBytes(int64(len(doc)))); err != nil {
		t.Errorf("document of exactly the limit: %v", err)
	}
	if _, err := Parse(bytes.NewReader(doc), WithMaxBytes(int64(len(doc)-1))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("one byte over: err = %v, want ErrTooLarge", err)
	}
	if _, err := ParseBytes(doc, WithMaxBytes(int64(len(doc)-1))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ParseBytes one byte over: err = %v, want ErrTooLarge", err)
	}
}

func TestHostileCounts(t *testing.T) {
	t.Parallel()
	h := "<hash>" + strings.Repeat("a", 32) + "</hash>"
	cases := []struct {
		name string
		doc  string
		opt  Option
		want string
	}{
		{"files", doc4(file4("a", "") + file4("b", "") + file4("c", "")), WithMaxFiles(2), "more than 2 files"},
		{"urls", doc4(file4("f", `<url>http://a/f</url><metaurl mediatype="torrent">http://a/t</metaurl><url>http://b/f</url>`)), WithMaxURLs(2), "more than 2 url and metaurl"},
		{"pieces", doc4(file4("f", `<pieces length="1" type="md5">`+strings.Repeat(h, 4)+`</pieces>`)), WithMaxPieces(3), "more than 3 piece hashes"},
		{"text", doc4(file4("f", `<description>`+strings.Repeat("x", 100)+`</description>`)), WithMaxText(50), "text longer than 50 bytes"},
		{"hash text", doc4(file4("f", `<hash type="md5">`+strings.Repeat("a", DefaultMaxText+1)+`</hash>`)), nil, "text longer than 65536 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseBytes([]byte(c.doc), c.opt)
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want ErrLimit containing %q", err, c.want)
			}
		})
	}
}

type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }

func TestReadErrorIsNotInvalid(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk on fire")
	_, err := Parse(io.MultiReader(strings.NewReader(`<metalink xmlns="urn:ietf:params:xml:ns:metalink">`), failing{boom}))
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v, want the reader's error and not ErrInvalid", err)
	}
	for _, doc := range []string{`<?xml version="1.1"?><a/>`, `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`} {
		if _, err := ParseBytes([]byte(doc)); !errors.Is(err, ErrSyntax) {
			t.Errorf("%s: err = %v, want ErrSyntax", doc, err)
		}
	}
}
