package download

import "sort"

// span is the half-open byte range [Start, End).
type span struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// spans is a set of byte ranges, kept sorted, disjoint and with no two
// touching. The zero value is empty.
type spans []span

// add inserts [start, end) and merges what it touches.
func (s spans) add(start, end int64) spans {
	if start >= end {
		return s
	}
	// First range that ends at or after start.
	i := sort.Search(len(s), func(i int) bool { return s[i].End >= start })
	j := i
	for j < len(s) && s[j].Start <= end {
		start = min(start, s[j].Start)
		end = max(end, s[j].End)
		j++
	}
	if i == j {
		s = append(s, span{})
		copy(s[i+1:], s[i:])
		s[i] = span{start, end}
		return s
	}
	s[i] = span{start, end}
	return append(s[:i+1], s[j:]...)
}

// prefix is the length of the contiguous range that starts at 0.
func (s spans) prefix() int64 {
	if len(s) == 0 || s[0].Start != 0 {
		return 0
	}
	return s[0].End
}

// total is the number of bytes in the set.
func (s spans) total() int64 {
	var n int64
	for _, r := range s {
		n += r.End - r.Start
	}
	return n
}

// gaps returns the ranges of [0, size) not in the set.
func (s spans) gaps(size int64) spans {
	var g spans
	at := int64(0)
	for _, r := range s {
		if r.Start >= size {
			break
		}
		if r.Start > at {
			g = append(g, span{at, r.Start})
		}
		at = max(at, r.End)
	}
	if at < size {
		g = append(g, span{at, size})
	}
	return g
}

// valid reports whether the set is sorted, disjoint, non-touching and
// within [0, size).
func (s spans) valid(size int64) bool {
	prev := int64(-1)
	for _, r := range s {
		if r.Start <= prev || r.Start >= r.End || r.Start < 0 || r.End > size {
			return false
		}
		prev = r.End
	}
	return true
}

func (s spans) clone() spans { return append(spans(nil), s...) }

// remove takes [start, end) out of the set.
func (s spans) remove(start, end int64) spans {
	if start >= end {
		return s
	}
	var out spans
	for _, r := range s {
		if r.End <= start || r.Start >= end {
			out = append(out, r)
			continue
		}
		if r.Start < start {
			out = append(out, span{r.Start, start})
		}
		if r.End > end {
			out = append(out, span{end, r.End})
		}
	}
	return out
}

// covers reports whether [start, end) lies wholly in the set.
func (s spans) covers(start, end int64) bool {
	if start >= end {
		return true
	}
	i := sort.Search(len(s), func(i int) bool { return s[i].End > start })
	return i < len(s) && s[i].Start <= start && s[i].End >= end
}
