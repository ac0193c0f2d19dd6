package sqlregistry

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// foldKey returns s with every rune replaced by the smallest rune of its
// Unicode simple case-folding orbit, so that foldKey(a) == foldKey(b)
// exactly when strings.EqualFold(a, b): the form a column needs for an
// equality comparison or a unique index to agree with MemoryDB. SQL's
// upper() and lower() would not: SQLite's fold ASCII only, PostgreSQL's
// depend on the database's locale. ASCII letters become upper case ("kvm"
// is stored as "KVM").
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			// 'K' and 'S' also fold with non-ASCII runes (KELVIN SIGN,
			// LONG S), which are larger, so the ASCII upper case is
			// still the smallest.
			b.WriteRune(r)
			continue
		}
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}
