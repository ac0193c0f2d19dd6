package checksum

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse either refuses a string with a *FormatError or
// returns a Sum that is well formed and reads back the same from both of
// its printed forms. Seeds: the test vectors, and every line of the files
// in testdata/seeds (checksums as operators write them, good and bad).
func FuzzParse(f *testing.F) {
	for _, v := range abc {
		f.Add(v, false)
		f.Add(v, true)
		f.Add("{SHA-256}"+v, true)
		f.Add("sha256:"+v, false)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "seeds", "*.txt"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files in testdata/seeds: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			line = strings.TrimSuffix(line, "\n")
			f.Add(line, false)
			f.Add(line, true)
		}
	}
	f.Fuzz(func(t *testing.T, s string, infer bool) {
		sum, err := Parse(s, infer)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Input != s || fe.Reason == "" {
				t.Fatalf("Parse(%q) error %#v is not a *FormatError with the input and a reason", s, err)
			}
			if !errors.Is(err, ErrAlgorithm) && !errors.Is(err, ErrLength) && !errors.Is(err, ErrHex) && !errors.Is(err, ErrForm) {
				t.Fatalf("Parse(%q) error %v wraps no sentinel", s, err)
			}
			if !sum.IsZero() {
				t.Fatalf("Parse(%q) = %+v with error %v", s, sum, err)
			}
			return
		}
		if sum.IsZero() {
			if strings.TrimSpace(s) != "" {
				t.Fatalf("Parse(%q) gave no checksum for a non-blank string", s)
			}
			return
		}
		a, ok := Lookup(sum.Alg)
		if !ok || a.Name != sum.Alg {
			t.Fatalf("Parse(%q) = %+v, an algorithm not in its canonical spelling", s, sum)
		}
		if len(sum.Hex) != a.HexLen || strings.Trim(sum.Hex, "0123456789abcdef") != "" {
			t.Fatalf("Parse(%q) = %+v, not %d lowercase hex digits", s, sum, a.HexLen)
		}
		if len(sum.Hex) != 2*sum.NewHash().Size() {
			t.Fatalf("Parse(%q): %d hex digits for a %d-byte %s", s, len(sum.Hex), sum.NewHash().Size(), sum.Alg)
		}
		for _, form := range []string{sum.String(), sum.CloudStack()} {
			back, err := Parse(form, false)
			if err != nil || back != sum || !back.Equal(sum) {
				t.Fatalf("Parse(%q) = %+v, %v; the round trip of %q gave %+v", form, back, err, s, sum)
			}
		}
	})
}
