package faultserver

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize reads a size in bytes as the standalone server and the
// benchmark tools take it on their command lines: a decimal number with an
// optional K, M, G, T, P or E suffix (powers of 1024, any case), itself
// optionally followed by B or iB: "1000", "4K", "20MiB", "2gb". "7B" is 7
// bytes. Negative numbers, unknown suffixes and sizes beyond int64 are
// errors naming the value. It is safe for concurrent use.
func ParseSize(v string) (int64, error) {
	num := strings.TrimRight(v, "KMGTPEkmgtpeiBb")
	suffix := strings.ToUpper(v[len(num):])
	switch {
	case len(suffix) == 3 && strings.HasSuffix(suffix, "IB"), len(suffix) == 2 && suffix[1] == 'B':
		suffix = suffix[:1]
	case suffix == "B":
		suffix = ""
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q: want bytes, optionally with K, M, G, T, P or E", v)
	}
	shift := 0
	switch suffix {
	case "":
	case "K", "M", "G", "T", "P", "E":
		shift = 10 * (1 + strings.Index("KMGTPE", suffix))
	default:
		return 0, fmt.Errorf("bad size %q: unknown suffix %q", v, suffix)
	}
	if shift > 0 && n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("bad size %q: too large", v)
	}
	return n << shift, nil
}
