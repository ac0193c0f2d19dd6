package faultserver

import (
	"fmt"
	"testing"
	"time"
)

var rangeTests = []struct {
	h    string
	size int64
	want byteRange
	kind rangeKind
}{
	{"bytes=0-99", 1000, byteRange{0, 100}, rangeOne},
	{"bytes=100-", 1000, byteRange{100, 900}, rangeOne},
	{"bytes=-100", 1000, byteRange{900, 100}, rangeOne},
	{"bytes=-5000", 1000, byteRange{0, 1000}, rangeOne},
	{"bytes=990-5000", 1000, byteRange{990, 10}, rangeOne},
	{"bytes=999-999", 1000, byteRange{999, 1}, rangeOne},
	{"BYTES = 5-6", 1000, byteRange{5, 2}, rangeOne},
	{"bytes= , 5-6 ,", 1000, byteRange{5, 2}, rangeOne},
	{"bytes=8589934491-", 8 << 30, byteRange{8589934491, 101}, rangeOne},
	{"bytes=1000-", 1000, byteRange{}, rangeUnsatisfiable},
	{"bytes=-0", 1000, byteRange{}, rangeUnsatisfiable},
	{"bytes=0-", 0, byteRange{}, rangeUnsatisfiable},
	{"bytes=-5", 0, byteRange{}, rangeUnsatisfiable},
	{"bytes=2000-3000, 4000-", 1000, byteRange{}, rangeUnsatisfiable},
	{"bytes=0-1,5-6", 1000, byteRange{}, rangeMulti},
	{"bytes=2000-3000,5-6", 1000, byteRange{}, rangeMulti},
	{"", 1000, byteRange{}, rangeNone},
	{"bytes=", 1000, byteRange{}, rangeNone},
	{"bytes=,", 1000, byteRange{}, rangeNone},
	{"bytes=-", 1000, byteRange{}, rangeNone},
	{"bytes=5", 1000, byteRange{}, rangeNone},
	{"bytes=6-5", 1000, byteRange{}, rangeNone},
	{"bytes=a-5", 1000, byteRange{}, rangeNone},
	{"bytes=+5-6", 1000, byteRange{}, rangeNone},
	{"bytes=5 - 6", 1000, byteRange{}, rangeNone},
	{"bytes=0-1,x", 1000, byteRange{}, rangeNone},
	{"bytes=99999999999999999999-", 1000, byteRange{}, rangeNone},
	{"items=0-5", 1000, byteRange{}, rangeNone},
	{"0-5", 1000, byteRange{}, rangeNone},
}

func TestParseRange(t *testing.T) {
	t.Parallel()
	for _, tt := range rangeTests {
		got, kind := parseRange(tt.h, tt.size)
		if got != tt.want || kind != tt.kind {
			t.Errorf("parseRange(%q, %d) = %v, %v; want %v, %v", tt.h, tt.size, got, kind, tt.want, tt.kind)
		}
	}
}

func TestIfRangeMatches(t *testing.T) {
	t.Parallel()
	mod := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{`"abc"`, true},
		{` "abc" `, true},
		{`"abd"`, false},
		{`W/"abc"`, false},
		{"Tue, 02 Jan 2024 03:04:05 GMT", true},
		{"Tue, 02 Jan 2024 03:04:06 GMT", false},
		{"Tuesday, 02-Jan-24 03:04:05 GMT", true},
		{"yesterday", false},
	} {
		if got := ifRangeMatches(tt.v, `"abc"`, mod); got != tt.want {
			t.Errorf("ifRangeMatches(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

// FuzzRangeHeader checks that parseRange never panics, that a single range
// lies inside the content, and that writing it back parses to the same.
func FuzzRangeHeader(f *testing.F) {
	for _, tt := range rangeTests {
		f.Add(tt.h, tt.size)
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		r, kind := parseRange(h, size)
		switch kind {
		case rangeOne:
			if r.start < 0 || r.length < 1 || r.start > size-r.length {
				t.Fatalf("parseRange(%q, %d) = %v: outside the content", h, size, r)
			}
			again := fmt.Sprintf("bytes=%d-%d", r.start, r.start+r.length-1)
			if r2, k2 := parseRange(again, size); r2 != r || k2 != rangeOne {
				t.Fatalf("parseRange(%q, %d) = %v, but %q gives %v, %v", h, size, r, again, r2, k2)
			}
		case rangeNone, rangeMulti, rangeUnsatisfiable:
			if r != (byteRange{}) {
				t.Fatalf("parseRange(%q, %d) = %v with kind %v", h, size, r, kind)
			}
		default:
			t.Fatalf("parseRange(%q, %d): kind %v", h, size, kind)
		}
	})
}
