package faultserver

import (
	"net/http"
	"strings"
	"time"
)

// rangeKind is what a Range header asks of a resource of known size.
type rangeKind int

const (
	// rangeNone: no Range header, or one the server ignores (another unit,
	// bad syntax); the answer is 200 with the whole content.
	rangeNone rangeKind = iota
	// rangeOne: a single satisfiable range; the answer is 206.
	rangeOne
	// rangeMulti: several ranges, at least one satisfiable. The server does
	// not send multipart/byteranges; it ignores the header and answers 200,
	// as RFC 9110 section 14.2 allows.
	rangeMulti
	// rangeUnsatisfiable: no range overlaps the content; the answer is 416.
	rangeUnsatisfiable
)

// byteRange is a satisfiable range of a resource: length bytes from start.
type byteRange struct {
	start, length int64
}

// parseRange reads a Range header value (RFC 9110 section 14.1.2) for a
// resource of size bytes. The unit is matched case-insensitively and
// whitespace around commas is allowed. A syntactically invalid header, or
// one with a unit other than bytes, is ignored (rangeNone), as the RFC
// allows. Only for rangeOne is the byteRange meaningful; its end is clamped
// to the content.
func parseRange(h string, size int64) (byteRange, rangeKind) {
	unit, set, ok := strings.Cut(h, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return byteRange{}, rangeNone
	}
	var first byteRange
	specs, satisfiable := 0, 0
	for spec := range strings.SplitSeq(set, ",") {
		spec = strings.Trim(spec, " \t")
		if spec == "" {
			// RFC 9110 allows empty list elements; a list needs at least
			// one real one, checked below.
			continue
		}
		specs++
		r, ok, valid := parseSpec(spec, size)
		if !valid {
			return byteRange{}, rangeNone
		}
		if ok {
			if satisfiable == 0 {
				first = r
			}
			satisfiable++
		}
	}
	switch {
	case specs == 0:
		return byteRange{}, rangeNone
	case satisfiable == 0:
		return byteRange{}, rangeUnsatisfiable
	case specs == 1:
		return first, rangeOne
	default:
		return byteRange{}, rangeMulti
	}
}

// parseSpec reads one range-spec: "a-b", "a-" or "-n". valid reports the
// syntax; ok whether the range is satisfiable for size bytes.
func parseSpec(spec string, size int64) (r byteRange, ok, valid bool) {
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return byteRange{}, false, false
	}
	if a == "" {
		// A suffix range: the last n bytes.
		n, valid := parseDigits(b)
		if !valid {
			return byteRange{}, false, false
		}
		if n == 0 || size == 0 {
			return byteRange{}, false, true
		}
		n = min(n, size)
		return byteRange{start: size - n, length: n}, true, true
	}
	start, valid := parseDigits(a)
	if !valid {
		return byteRange{}, false, false
	}
	end := int64(-1)
	if b != "" {
		if end, valid = parseDigits(b); !valid || end < start {
			return byteRange{}, false, false
		}
	}
	if start >= size {
		return byteRange{}, false, true
	}
	if end < 0 || end >= size {
		end = size - 1
	}
	return byteRange{start: start, length: end - start + 1}, true, true
}

// parseDigits reads a non-empty run of ASCII digits that fits an int64.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// ifRangeMatches reports whether an If-Range value (RFC 9110 section 13.1.5)
// still names the representation with the given strong ETag and
// modification time. An entity tag must match strongly (a weak tag never
// matches); a date must equal the Last-Modified date exactly.
func ifRangeMatches(v, etag string, modTime time.Time) bool {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "W/") {
		return v == etag
	}
	t, err := http.ParseTime(v)
	return err == nil && t.Equal(modTime.Truncate(time.Second))
}
