package qcow2

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzInspect feeds Inspect, Info, Vet and the header rewrite arbitrary
// bytes. They must never panic or allocate more than a cluster; an image
// Inspect accepts must keep its meaning when its header is rewritten.
func FuzzInspect(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "inspect", "*.qcow2"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, o := range []Options{
		{Size: 1 << 20, ClusterSize: 512},
		{Size: 1 << 20, ClusterSize: 512, Compat: "0.10", BackingFile: "b", BackingFormat: "raw"},
		{Size: 1 << 30, ClusterSize: 4096, RefcountBits: 1},
	} {
		var w writerAtBuffer
		if _, err := CreateAt(&w, o); err != nil {
			f.Fatal(err)
		}
		f.Add(w.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		img, err := Inspect(r)
		v, verr := Vet(r, Policy{})
		if verr != nil {
			t.Fatalf("Vet: %v", verr)
		}
		if err != nil {
			if img != nil {
				t.Fatalf("image returned with error %v", err)
			}
			if v.Safe {
				t.Fatalf("Vet says safe, Inspect says %v", err)
			}
			return
		}
		if img.ClusterBits < minClusterBits || img.ClusterBits > maxClusterBits {
			t.Fatalf("accepted cluster bits %d", img.ClusterBits)
		}
		if len(img.BackingFile) > maxBackingNameLen || len(img.BackingFormat) > maxBackingFormatLen {
			t.Fatalf("accepted backing %q format %q", img.BackingFile, img.BackingFormat)
		}
		_ = img.Info("fuzz.qcow2")

		// Rewrite the header with the same backing file, as a rebase to
		// the same name does, and inspect it again.
		if img.BackingFile != "" && !slices.Contains(backingFormats, img.BackingFormat) {
			return
		}
		w := &writerAtBuffer{b: bytes.Clone(b)}
		if err := RebaseAt(w, img.BackingFile, img.BackingFormat); err != nil {
			return // e.g. the rewritten header does not fit
		}
		img2, err := Inspect(bytes.NewReader(w.b))
		if err != nil {
			t.Fatalf("rewritten header does not inspect: %v", err)
		}
		a, b2 := img.Header, img2.Header
		a.AutoclearFeatures &= autoclearKnown
		a.Size &^= 511
		for _, h := range []*Header{&a, &b2} {
			// The name is compared below; QEMU ignores the size when
			// there is no offset, and a rewrite writes 0.
			h.BackingFileOffset, h.BackingFileSize, h.HeaderLength = 0, 0, 0
		}
		if a != b2 {
			t.Fatalf("header changed by rewrite:\n%+v\n%+v", a, b2)
		}
		if img2.BackingFile != img.BackingFile || img2.BackingFormat != img.BackingFormat || img2.DataFile != img.DataFile {
			t.Fatalf("backing changed by rewrite: %q/%q -> %q/%q", img.BackingFile, img.BackingFormat, img2.BackingFile, img2.BackingFormat)
		}
		if len(img2.UnknownExtensions()) != len(img.UnknownExtensions()) {
			t.Fatalf("unknown extensions %d -> %d", len(img.UnknownExtensions()), len(img2.UnknownExtensions()))
		}
	})
}
