package qcow2

import (
	"fmt"
	"io"
	"os"
)

// ReaderWriterAt is what [RebaseAt] needs: the image, readable and writable
// at offsets.
type ReaderWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// Rebase changes the backing file name and format recorded in the image at
// path, like `qemu-img rebase -u -b backing -F format`: only the first
// cluster is rewritten, nothing is read from or checked in either backing
// file, and the guest-visible content changes if the new backing file does
// not hold the same data as the old one. An empty backing removes the
// backing file (format must then be empty too).
//
// Unknown header extensions and unknown header fields are kept, the feature
// name table is written as QEMU 7.2 writes it, and the result is
// byte-identical to qemu-img's. The new first cluster is built and checked
// in memory before anything is written, then written with one write and
// synced; an image whose new header would not fit is left untouched.
func Rebase(path, backing, format string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("qcow2: %w", err)
	}
	// Hold QEMU's image lock while rewriting, as qemu-img does, so a VM
	// that has the image open is never changed under its feet.
	if locked, _ := lockedByQEMU(f); locked {
		f.Close()
		return fmt.Errorf("%w: refusing to rebase %s", ErrInUse, path)
	}
	if err := lockLikeQEMU(f); err != nil {
		f.Close()
		return fmt.Errorf("%w: refusing to rebase %s (%v)", ErrInUse, path, err)
	}
	if err := RebaseAt(f, backing, format); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("qcow2: syncing %s: %w", path, err)
	}
	return f.Close()
}

// RebaseAt is [Rebase] on an open image.
func RebaseAt(rw ReaderWriterAt, backing, format string) error {
	if backing == "" && format != "" {
		return optErr("backing format %q given without a backing file", format)
	}
	if backing != "" {
		switch {
		case format == "":
			return optErr("backing file %q given without a backing format: give one (qemu-img -F), e.g. qcow2 or raw", backing)
		case checkBackingFormat(format) != nil:
			return checkBackingFormat(format)
		case len(backing) > maxBackingNameLen:
			return optErr("backing file name is %d bytes; at most %d", len(backing), maxBackingNameLen)
		}
		for i := 0; i < len(backing); i++ {
			if backing[i] == 0 {
				return optErr("backing file name contains a NUL byte")
			}
		}
	}
	img, err := Inspect(rw)
	if err != nil {
		return err
	}
	// QEMU opens the image read-write to rebase it: it refuses a corrupt
	// image and repairs a dirty one first, which this package does not do.
	if img.IncompatibleFeatures&IncompatCorrupt != 0 {
		return ErrCorrupt
	}
	if img.IncompatibleFeatures&IncompatDirty != 0 {
		return ErrDirty
	}
	c0, err := img.rewriteClusterZero(rw, backing, format)
	if err != nil {
		return err
	}
	if _, err := rw.WriteAt(c0, 0); err != nil {
		return fmt.Errorf("qcow2: writing header: %w", err)
	}
	return nil
}

// rewriteClusterZero builds the first cluster as QEMU's qcow2_update_header
// writes it after opening img read-write and changing its backing file.
func (img *Image) rewriteClusterZero(r io.ReaderAt, backing, format string) ([]byte, error) {
	cs := img.ClusterSize()
	h := img.Header
	// A read-write open clears autoclear bits QEMU does not know, and QEMU
	// keeps the size in sectors.
	h.AutoclearFeatures &= autoclearKnown
	h.Size &^= 511
	b := h.marshal()
	if h.Version >= 3 {
		// Bytes between QEMU's header and header_length are fields of a
		// newer QEMU: kept, and counted in header_length.
		var unknown []byte
		if img.HeaderLength > v3HeaderLen {
			unknown = make([]byte, img.HeaderLength-v3HeaderLen)
			if _, err := readFull(r, unknown, v3HeaderLen); err != nil {
				return nil, fmt.Errorf("qcow2: reading header: %w", err)
			}
		}
		putU32(b[100:], uint32(v3HeaderLen+len(unknown)))
		b = append(b, unknown...)
	}
	if format != "" {
		b = appendExt(b, ExtBackingFormat, []byte(format))
	}
	if img.DataFile != "" {
		b = appendExt(b, ExtDataFile, []byte(img.DataFile))
	}
	if img.CryptoOffset != 0 {
		var c [16]byte
		putU64(c[:], img.CryptoOffset)
		putU64(c[8:], img.CryptoLength)
		b = appendExt(b, ExtCrypto, c[:])
	}
	if h.Version >= 3 && cs > 4096 {
		b = appendExt(b, ExtFeatureTable, marshalFeatures(qemuFeatures))
	}
	for _, e := range img.Extensions {
		if e.Type == ExtBitmaps && h.AutoclearFeatures&AutoclearBitmaps != 0 {
			b = appendExt(b, e.Type, e.Data)
		}
	}
	// QEMU keeps unknown extensions on a list it prepends to while
	// reading, so it writes them back in reverse order.
	unknown := img.UnknownExtensions()
	for i := len(unknown) - 1; i >= 0; i-- {
		b = appendExt(b, unknown[i].Type, unknown[i].Data)
	}
	b = appendExt(b, ExtEnd, nil)
	putU64(b[8:], 0)
	putU32(b[16:], 0)
	if backing != "" {
		putU64(b[8:], uint64(len(b)))
		putU32(b[16:], uint32(len(backing)))
		b = append(b, backing...)
	}
	if int64(len(b)) > cs {
		return nil, optErr("new header (%d bytes) does not fit in the first cluster (%d bytes); use a shorter backing file name", len(b), cs)
	}
	out := make([]byte, cs)
	copy(out, b)
	return out, nil
}
