package qcow2

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// withUnknownExtensions returns img with two extensions of types QEMU does
// not know inserted before the end marker, and 8 bytes of unknown header
// fields (header_length 120), as a newer QEMU might write.
func withUnknownExtensions(t *testing.T, b []byte) []byte {
	t.Helper()
	img, err := Inspect(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	h := img.Header
	c0 := h.clusterZero(img.BackingFile, img.BackingFormat, []Extension{
		{0x12345678, []byte("first unknown")},
		{0x0badcafe, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}},
	})
	if h.Version == 3 {
		// Make room for 8 bytes of fields after the 112-byte header.
		c0 = append(c0[:112:112], append(make([]byte, 8), c0[112:]...)...)
		c0[112] = 0xee
		putU32(c0[100:], 120)
		if img.BackingFile != "" {
			putU64(c0[8:], uint64(len(c0)-len(img.BackingFile)))
		}
	}
	out := bytes.Clone(b)
	clear(out[:h.ClusterSize()])
	copy(out, c0)
	if _, err := Inspect(bytes.NewReader(out)); err != nil {
		t.Fatalf("test image: %v", err)
	}
	return out
}

func TestRebaseMatchesQemuImg(t *testing.T) {
	qemuImg(t)
	t.Parallel()
	cases := []struct {
		name            string
		o               Options
		unknown         bool
		backing, format string
	}{
		{"add", Options{Size: giB}, false, "new-base.qcow2", "qcow2"},
		{"change", Options{Size: giB, BackingFile: "old.qcow2", BackingFormat: "qcow2", Unsafe: true}, false, "/images/templates/new.raw", "raw"},
		{"remove", Options{Size: giB, BackingFile: "old.qcow2", BackingFormat: "qcow2", Unsafe: true}, false, "", ""},
		{"v2", Options{Size: giB, Compat: "0.10", BackingFile: "old.qcow2", BackingFormat: "qcow2", Unsafe: true}, false, "newer.qcow2", "qcow2"},
		{"512", Options{Size: giB, ClusterSize: 512}, false, "base.qcow2", "qcow2"},
		{"long", Options{Size: giB}, false, string(bytes.Repeat([]byte("n"), 1023)), "qcow2"},
		{"unknown-ext", Options{Size: giB, BackingFile: "old.qcow2", BackingFormat: "qcow2", Unsafe: true}, true, "new.qcow2", "qcow2"},
		{"unknown-ext-remove", Options{Size: giB, ExtendedL2: true, BackingFile: "old.qcow2", BackingFormat: "qcow2", Unsafe: true}, true, "", ""},
		{"unknown-ext-4k", Options{Size: giB, ClusterSize: 4096}, true, "b.qcow2", "qcow2"},
		{"odd-size", Options{Size: giB}, false, "b.qcow2", "qcow2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b := image(t, c.o)
			if c.unknown {
				b = withUnknownExtensions(t, b)
			}
			if c.name == "odd-size" {
				b = put64(b, 24, uint64(giB)-100) // QEMU writes it back floored
			}
			want, got := filepath.Join(dir, "want.qcow2"), filepath.Join(dir, "got.qcow2")
			for _, p := range []string{want, got} {
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"rebase", "-u", "-b", c.backing}
			if c.format != "" {
				args = append(args, "-F", c.format)
			}
			runQemu(t, dir, append(args, want)...)
			if err := Rebase(got, c.backing, c.format); err != nil {
				t.Fatalf("Rebase: %v", err)
			}
			wb, _ := os.ReadFile(want)
			gb, _ := os.ReadFile(got)
			compareImages(t, gb, wb)
			img, err := InspectFile(got)
			if err != nil {
				t.Fatal(err)
			}
			if img.BackingFile != c.backing || img.BackingFormat != c.format {
				t.Errorf("backing %q (%q), want %q (%q)", img.BackingFile, img.BackingFormat, c.backing, c.format)
			}
		})
	}
}

func TestRebaseRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "small.qcow2")
	if err := Create(p, Options{Size: giB, ClusterSize: 512}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	cases := []struct {
		name, backing, format string
		want                  error
	}{
		{"no-format", "base.qcow2", "", ErrOptions},
		{"format-without-file", "", "qcow2", ErrOptions},
		{"bad-format", "base.qcow2", "qcow3", ErrOptions},
		{"too-long", string(bytes.Repeat([]byte("x"), 1024)), "qcow2", ErrOptions},
		{"does-not-fit", string(bytes.Repeat([]byte("x"), 400)), "qcow2", ErrOptions},
		{"nul", "a\x00b", "qcow2", ErrOptions},
		{"format-too-long", "base.qcow2", "copy-before-write", ErrOptions},
		{"format-not-built", "base.qcow2", "io_uring", ErrOptions},
	}
	for _, c := range cases {
		err := Rebase(p, c.backing, c.format)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Rebase error %v, want %v", c.name, err, c.want)
		}
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(before, after) {
		t.Errorf("a refused rebase changed the image")
	}
	if err := Rebase(filepath.Join(dir, "missing.qcow2"), "", ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Rebase of a missing file: %v, want ErrNotExist", err)
	}
}

// TestRebaseRefusesCorruptAndDirty: QEMU refuses to open a corrupt image
// read-write and repairs a dirty one first; Rebase refuses both and leaves
// them untouched.
func TestRebaseRefusesCorruptAndDirty(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := image(t, Options{Size: giB})
	for _, c := range []struct {
		name string
		bit  uint64
		want error
	}{{"corrupt", IncompatCorrupt, ErrCorrupt}, {"dirty", IncompatDirty, ErrDirty}} {
		p := filepath.Join(dir, c.name+".qcow2")
		b := put64(base, 72, c.bit)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Rebase(p, "x.qcow2", "qcow2"); !errors.Is(err, c.want) {
			t.Errorf("%s: Rebase error %v, want %v", c.name, err, c.want)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, b) {
			t.Errorf("%s: refused rebase changed the image", c.name)
		}
	}
}
