package faultserver

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"123", 123, true}, {"1K", 1024, true}, {"20M", 20 << 20, true},
		{"2G", 2 << 30, true}, {"2GiB", 2 << 30, true}, {"2gb", 2 << 30, true}, {"1E", 1 << 60, true},
		{"7B", 7, true}, {"15MiB", 15 << 20, true}, {"1iB", 0, false}, {"1I", 0, false}, {"8E", 0, false},
		{"", 0, false}, {"-1", 0, false}, {"1X", 0, false}, {"K", 0, false}, {"1KK", 0, false},
		{"9223372036854775807", 1<<63 - 1, true}, {"9223372036854775808", 0, false},
	} {
		got, err := ParseSize(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), strconv.Quote(tt.in)) {
			t.Errorf("ParseSize(%q): error %q does not name the value", tt.in, err)
		}
	}
}

// FuzzParseSize checks that a size either parses to a non-negative number
// that its plain decimal form gives back, or fails naming the input.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "1K", "20MiB", "2gb", "7B", "1E", "8E", "1KK", "-1", "", "iB", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if n != 0 || !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("ParseSize(%q) = %d, %v", s, n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d, negative", s, n)
		}
		if back, err := ParseSize(strconv.FormatInt(n, 10)); err != nil || back != n {
			t.Fatalf("ParseSize(%q) = %d, but its decimal form gives %d, %v", s, n, back, err)
		}
	})
}
