package qcow2

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64
		ok   bool
		qemu bool // qemu-img accepts the same spelling
	}{
		{"0", 0, true, true},
		{"1000", 1000, true, true},
		{"1000B", 1000, true, true},
		{"64k", 64 << 10, true, true},
		{"64K", 64 << 10, true, true},
		{"1M", 1 << 20, true, true},
		{"1G", 1 << 30, true, true},
		{"1.5G", 3 << 29, true, true},
		{"1.1K", 1126, true, true},
		{"1T", 1 << 40, true, true},
		{"2P", 2 << 50, true, true},
		{"7E", 7 << 60, true, false},
		{"10GiB", 10 << 30, true, false},
		{"10GB", 10 << 30, true, false},
		{"10gib", 10 << 30, true, false},
		{"8E", 0, false, false},
		{"99999999999999999999", 0, false, false},
		{"", 0, false, false},
		{"G", 0, false, false},
		{"-1", 0, false, false},
		{"1.5", 0, false, false},
		{"1e3", 0, false, false},
		{"1X", 0, false, false},
		{"0x10", 0, false, false},
		{"1 G", 0, false, false},
		{" 1G", 0, false, false},
		{"1G ", 0, false, false},
		{".5G", 0, false, false},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), c.in) {
			t.Errorf("ParseSize(%q) error %q does not name the input", c.in, err)
		}
	}
	qemuImg(t)
	dir := t.TempDir()
	for _, c := range cases {
		if !c.qemu {
			continue
		}
		p := filepath.Join(dir, "s.qcow2")
		runQemu(t, dir, "create", "-q", "-f", "qcow2", p, c.in)
		img, err := InspectFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(roundUp512(c.want)); img.Size != want {
			t.Errorf("qemu-img took %q as %d, we as %d", c.in, img.Size, want)
		}
		os.Remove(p)
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	o, err := ParseOptions("cluster_size=4k,compat=v2,lazy_refcounts=off,refcount_bits=16,extended_l2=off,compression_type=zlib,preallocation=off,backing_file=a,,b.qcow2,backing_fmt=qcow2,size=1G")
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Size: 1 << 30, ClusterSize: 4096, Compat: "v2", RefcountBits: 16, CompressionType: "zlib", Preallocation: "off", BackingFile: "a,b.qcow2", BackingFormat: "qcow2"}
	if o != want {
		t.Errorf("got %+v\nwant %+v", o, want)
	}
	for _, bad := range []string{"nonsense", "cluster_size", "color=red", "lazy_refcounts=maybe", "refcount_bits=x", "cluster_size=1Q", "data_file=x.raw", "encryption=on", "refcount_bits=300"} {
		if _, err := ParseOptions(bad); err == nil {
			t.Errorf("ParseOptions(%q) accepted", bad)
		} else if !strings.HasPrefix(err.Error(), "qcow2: ") {
			t.Errorf("ParseOptions(%q) error %q lacks the prefix", bad, err)
		}
	}
	if o, err := ParseOptions(""); err != nil || o != (Options{}) {
		t.Errorf("empty list: %+v, %v", o, err)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "1G", "1.5G", "64k", "10GiB", "8E", "1e3", ".5K", "1.", "99999999999999999999E"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}

func FuzzParseOptions(f *testing.F) {
	for _, s := range []string{"cluster_size=4k,compat=v2", "backing_file=a,,b,backing_fmt=raw", "size=1G,,", "=", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOptions(s)
		if err != nil {
			return
		}
		// Whatever parses either validates or is refused with ErrOptions.
		if err := o.Validate(); err != nil && !errors.Is(err, ErrOptions) {
			t.Fatalf("Validate(%+v) = %v, not ErrOptions", o, err)
		}
	})
}
