package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/directdl/directdl/qcow2"
)

// makeTemplate creates a qcow2 image of the given virtual size at path and
// fills its first data bytes (a multiple of the cluster size) with
// pseudo-random content that is the same on every run.
//
// Package qcow2 creates empty images, as qemu-img create does; a real
// template holds an installed system. writeData stands in for the
// installer, so that the template has real data clusters to download.
func makeTemplate(path string, virtual, data int64) error {
	if err := qcow2.Create(path, qcow2.Options{Size: virtual}); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := writeData(f, data); err != nil {
		f.Close()
		return fmt.Errorf("writing data into %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeData maps guest bytes [0, n) of the fresh image in f to new
// clusters appended to the file: one L2 table, then the data clusters. It
// sets the L1 and L2 entries (with the COPIED flag, as each cluster is
// referenced once) and the refcount of every new cluster, so that
// qemu-img check finds the image clean. It handles what a new image of
// qcow2.Create's defaults needs (16-bit refcounts, one refcount block and
// one L2 table covering everything) and refuses anything else.
func writeData(f *os.File, n int64) error {
	img, err := qcow2.Inspect(f)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	cs := img.ClusterSize()
	const copied = uint64(1) << 63
	clusters := n / cs
	first := (st.Size() + cs - 1) / cs // the first cluster after the image's end
	last := first + clusters           // the L2 table, then the data clusters
	switch {
	case n <= 0 || n%cs != 0:
		return fmt.Errorf("data size %d is not a positive multiple of the %d-byte cluster", n, cs)
	case img.RefcountOrder != 4 || img.NbSnapshots != 0:
		return errors.New("not a fresh image with 16-bit refcounts")
	case clusters > cs/8 || uint64(n) > img.Size:
		return fmt.Errorf("%d bytes need more than one L2 table or exceed the virtual size", n)
	case (last+1)*2 > cs:
		return errors.New("the new clusters need a second refcount block")
	}
	be := binary.BigEndian
	ref := make([]byte, 8)
	if _, err := f.ReadAt(ref, int64(img.RefcountTableOffset)); err != nil {
		return err
	}
	block := int64(be.Uint64(ref))
	if block == 0 {
		return errors.New("no refcount block")
	}

	// Data first, metadata after: until the L1 entry is written, the image
	// is still the empty one plus unreferenced clusters.
	rng := rand.New(rand.NewChaCha8([32]byte{'d', 'i', 'r', 'e', 'c', 't', 'd', 'l'}))
	buf := make([]byte, cs)
	l2 := make([]byte, cs)
	for i := range clusters {
		for j := 0; j < len(buf); j += 8 {
			be.PutUint64(buf[j:], rng.Uint64())
		}
		off := (first + 1 + i) * cs
		if _, err := f.WriteAt(buf, off); err != nil {
			return err
		}
		be.PutUint64(l2[i*8:], uint64(off)|copied)
	}
	if _, err := f.WriteAt(l2, first*cs); err != nil {
		return err
	}
	refs := make([]byte, (last-first+1)*2)
	for i := 0; i < len(refs); i += 2 {
		be.PutUint16(refs[i:], 1)
	}
	if _, err := f.WriteAt(refs, block+first*2); err != nil {
		return err
	}
	be.PutUint64(ref, uint64(first*cs)|copied)
	_, err = f.WriteAt(ref, int64(img.L1TableOffset))
	return err
}
