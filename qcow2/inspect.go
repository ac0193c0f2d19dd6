package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Image is what [Inspect] learns from an image's first cluster: the header,
// every header extension in on-disk order (unknown ones included, so a
// rewrite can keep them), and the values QEMU derives from them. It never
// describes the backing file's own content: the backing file is never
// opened.
type Image struct {
	Header

	// Extensions lists every header extension before the end marker, in
	// on-disk order, known types included.
	Extensions []Extension
	// Features is the feature name table, if the image has one.
	Features []Feature

	BackingFile   string // backing file name as stored; "" when none
	BackingFormat string // backing format extension; "" when absent
	DataFile      string // external data file name; "" when none

	// CryptoOffset and CryptoLength locate the LUKS header (crypt method 2).
	CryptoOffset, CryptoLength uint64

	// extEnd is the offset just past the end-of-extensions marker, or the
	// extension area's limit when no marker was found.
	extEnd int
}

// sizer is implemented by readers that know their length, such as
// *io.SectionReader and *bytes.Reader.
type sizer interface{ Size() int64 }

// readerSize returns the length of r when it can be learned without reading,
// and -1 otherwise.
func readerSize(r io.ReaderAt) int64 {
	switch v := r.(type) {
	case sizer:
		return v.Size()
	case *os.File:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	return -1
}

// readFull reads len(b) bytes at off. Bytes past the end of the input read
// as zeros, as QEMU's file driver does; only n==0 at off==0 and real I/O
// errors are errors.
func readFull(r io.ReaderAt, b []byte, off int64) (int, error) {
	n, err := r.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	clear(b[n:])
	return n, nil
}

// Inspect reads and validates the header of the QCOW2 image in r. It reads
// at most one cluster (2 MiB at most, and only after the cluster size has
// been checked), never the L1, L2 or refcount tables, and never opens the
// backing file or the external data file.
//
// Validation applies QEMU's own rules in QEMU's order; a violation returns
// an error wrapping one of the rule sentinels ([ErrNotQcow2], [ErrVersion],
// ...), all of which wrap [ErrInvalid]. A read error is returned wrapped as
// it is. An image that passes may still be unsafe to use as a template:
// see [Vet].
//
// Inspect is stricter than QEMU 7.2 where the specification is and QEMU is
// not, so that two readers cannot disagree about an image: a version 3
// header_length must be a multiple of 8, each extension type may appear
// once (QEMU takes the last), and backing file, backing format and data
// file names may not contain NUL bytes (QEMU cuts them there). Tables past
// the end of the file are accepted, as QEMU reads zeros there; Vet reports
// them.
func Inspect(r io.ReaderAt) (*Image, error) {
	var fixed [v3HeaderLen]byte
	n, err := readFull(r, fixed[:], 0)
	if err != nil {
		return nil, fmt.Errorf("qcow2: reading header: %w", err)
	}
	if n < 4 || binary.BigEndian.Uint32(fixed[:4]) != Magic {
		return nil, ErrNotQcow2
	}
	if n < v2HeaderLen {
		return nil, invalid(ErrTruncated, "%d bytes, need at least %d", n, v2HeaderLen)
	}
	h := unmarshalHeader(fixed[:])
	if h.Version < 2 || h.Version > 3 {
		return nil, invalid(ErrVersion, "%d (want 2 or 3)", h.Version)
	}
	if h.Version == 3 && n < v3HeaderMinLen {
		return nil, invalid(ErrTruncated, "%d bytes, version 3 needs at least %d", n, v3HeaderMinLen)
	}
	if h.ClusterBits < minClusterBits || h.ClusterBits > maxClusterBits {
		return nil, invalid(ErrClusterSize, "2^%d (QEMU supports 2^9 to 2^21)", h.ClusterBits)
	}
	cs := uint64(1) << h.ClusterBits
	if h.Version == 3 {
		if h.HeaderLength < v3HeaderMinLen {
			return nil, invalid(ErrHeaderLength, "%d: header too short (minimum 104)", h.HeaderLength)
		}
		if h.HeaderLength%8 != 0 {
			return nil, invalid(ErrHeaderLength, "%d is not a multiple of 8", h.HeaderLength)
		}
	}
	if uint64(h.HeaderLength) > cs {
		return nil, invalid(ErrHeaderLength, "%d exceeds the cluster size %d", h.HeaderLength, cs)
	}
	if h.BackingFileOffset > cs {
		return nil, invalid(ErrBackingFileOffset, "%d is beyond the first cluster (%d bytes)", h.BackingFileOffset, cs)
	}

	// The whole first cluster: header, extensions and backing file name.
	c0 := make([]byte, cs)
	if _, err := readFull(r, c0, 0); err != nil {
		return nil, fmt.Errorf("qcow2: reading header cluster: %w", err)
	}
	img := &Image{Header: h}
	if h.Version == 3 && h.HeaderLength <= v3HeaderMinLen {
		img.CompressionType = CompressionZlib
	}
	extStart := h.fixedLen()
	extLimit := int(cs)
	if h.BackingFileOffset != 0 {
		extLimit = int(h.BackingFileOffset)
	}
	// QEMU parses the extensions early only to name unknown incompatible
	// features; otherwise it checks the fields below first.
	extErr := img.readExtensions(c0, extStart, extLimit)
	if unknown := h.IncompatibleFeatures &^ incompatKnown; unknown != 0 {
		if extErr != nil {
			return nil, extErr
		}
		return nil, invalid(ErrIncompatibleFeatures, "%s", img.featureNames(0, unknown))
	}
	if h.RefcountOrder > 6 {
		return nil, invalid(ErrRefcountOrder, "order %d; may not exceed 64 bits (order 6)", h.RefcountOrder)
	}
	switch img.CompressionType {
	case CompressionZlib:
		if h.IncompatibleFeatures&IncompatCompression != 0 {
			return nil, invalid(ErrCompressionType, "compression type feature bit set for zlib")
		}
	case CompressionZstd:
		if h.IncompatibleFeatures&IncompatCompression == 0 {
			return nil, invalid(ErrCompressionType, "zstd without the compression type feature bit")
		}
	default:
		return nil, invalid(ErrCompressionType, "unknown compression type %d", img.CompressionType)
	}
	if img.ExtendedL2() && h.ClusterBits < 14 {
		return nil, invalid(ErrSubclusterSize, "%d bytes (extended L2 needs clusters of 16 KiB or more)", cs/32)
	}
	if h.CryptMethod > CryptLUKS {
		return nil, invalid(ErrEncryption, "unsupported encryption method %d", h.CryptMethod)
	}

	if h.RefcountTableClusters == 0 {
		return nil, invalid(ErrRefcountTable, "image does not contain a reference count table")
	}
	if err := validateTable(h.RefcountTableOffset, uint64(h.RefcountTableClusters)*cs, 1, maxRefcountTableBytes, cs); err != nil {
		return nil, invalid(ErrRefcountTable, "%v", err)
	}
	if h.NbSnapshots > maxSnapshots {
		return nil, invalid(ErrSnapshotTable, "%d snapshots (QEMU allows %d)", h.NbSnapshots, maxSnapshots)
	}
	if err := validateTable(h.SnapshotsOffset, uint64(h.NbSnapshots), snapshotHeaderLen, maxSnapshotsTableBytes, cs); err != nil {
		return nil, invalid(ErrSnapshotTable, "%v", err)
	}
	if err := validateTable(h.L1TableOffset, uint64(h.L1Size), 8, maxL1Bytes, cs); err != nil {
		return nil, invalid(ErrL1Table, "active L1 table: %v", err)
	}
	if h.Size > maxInt64 {
		return nil, invalid(ErrImageTooBig, "virtual size %d", h.Size)
	}
	// QEMU sizes the L1 table from the size as stored, not floored to 512.
	need := l1Entries(h.Size, h.ClusterBits, img.ExtendedL2())
	if need > 1<<31-1 {
		return nil, invalid(ErrImageTooBig, "virtual size %d needs %d L1 entries", h.Size, need)
	}
	if uint64(h.L1Size) < need {
		return nil, invalid(ErrL1Table, "L1 table is too small: %d entries, virtual size %d needs %d", h.L1Size, h.Size, need)
	}

	if extErr != nil {
		return nil, extErr
	}
	if _, _, _, _, err := img.bitmapsExt(); err != nil {
		return nil, err
	}
	if h.CryptMethod == CryptLUKS && img.CryptoLength == 0 {
		return nil, invalid(ErrEncryption, "missing crypto header for LUKS encryption")
	}
	if h.IncompatibleFeatures&IncompatDataFile != 0 && img.DataFile == "" {
		return nil, invalid(ErrDataFile, "external data file feature set but no data file name")
	}

	if h.BackingFileOffset != 0 {
		maxLen := min(uint64(maxBackingNameLen), cs-h.BackingFileOffset)
		if uint64(h.BackingFileSize) > maxLen {
			return nil, invalid(ErrBackingFileName, "%d bytes (at most %d fit)", h.BackingFileSize, maxLen)
		}
		name := c0[h.BackingFileOffset : h.BackingFileOffset+uint64(h.BackingFileSize)]
		if bytes.IndexByte(name, 0) >= 0 {
			return nil, invalid(ErrBackingFileName, "name contains a NUL byte")
		}
		img.BackingFile = string(name)
	}
	return img, nil
}

// InspectFile opens path read-only and calls [Inspect].
func InspectFile(path string) (*Image, error) {
	f, img, err := openImage(path)
	if err != nil {
		return nil, err
	}
	f.Close()
	return img, nil
}

// openImage opens path read-only and inspects it; the caller closes the
// file. Errors name the path.
func openImage(path string) (*os.File, *Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("qcow2: %w", err)
	}
	img, err := Inspect(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, img, nil
}

// validateTable applies QEMU's validate_table_offset: the table of entries
// of entryLen bytes must be at most maxBytes, start on a cluster boundary,
// and end below 2^63.
func validateTable(off, entries, entryLen, maxBytes, cs uint64) error {
	if entries > maxBytes/entryLen {
		return fmt.Errorf("table too large (%d bytes, at most %d)", entries*entryLen, maxBytes)
	}
	if maxInt64-entries*entryLen < off {
		return fmt.Errorf("table offset %d too large", off)
	}
	// QEMU reads the table when it opens the image; its block layer
	// refuses requests ending past BDRV_MAX_LENGTH.
	if entries > 0 && off+entries*entryLen > maxRequestEnd {
		return fmt.Errorf("table at offset %d cannot be read (ends past 2^63-2^30)", off)
	}
	if off%cs != 0 {
		return fmt.Errorf("table offset %#x is not cluster aligned", off)
	}
	return nil
}

// l1Entries is QEMU's size_to_l1: the number of L1 entries needed to map
// size bytes.
func l1Entries(size uint64, clusterBits uint32, extendedL2 bool) uint64 {
	l2Bits := clusterBits - 3
	if extendedL2 {
		l2Bits--
	}
	shift := clusterBits + l2Bits
	return (size >> shift) + boolToU64(size&(1<<shift-1) != 0)
}

func boolToU64(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// readExtensions parses the header extensions in c0[start:limit] as QEMU's
// qcow2_read_extensions does: it stops at the end marker or at limit.
func (img *Image) readExtensions(c0 []byte, start, limit int) error {
	seen := map[uint32]bool{}
	off := start
	img.extEnd = limit
	for off < limit {
		if off+extHeaderLen > limit {
			return invalid(ErrExtension, "extension header at %d crosses the end of the extension area (%d)", off, limit)
		}
		typ := binary.BigEndian.Uint32(c0[off:])
		n := uint64(binary.BigEndian.Uint32(c0[off+4:]))
		off += extHeaderLen
		if n > uint64(limit-off) {
			return invalid(ErrExtension, "extension %#08x of %d bytes at %d is too large (area ends at %d)", typ, n, off-extHeaderLen, limit)
		}
		if typ == ExtEnd {
			img.extEnd = off
			return nil
		}
		data := c0[off : off+int(n)]
		// The specification allows each type once; QEMU would silently
		// take the last one, which lets two readers disagree.
		if seen[typ] {
			return invalid(ErrExtension, "extension %#08x appears twice", typ)
		}
		seen[typ] = true
		img.Extensions = append(img.Extensions, Extension{Type: typ, Data: bytes.Clone(data)})
		switch typ {
		case ExtBackingFormat:
			if n > maxBackingFormatLen {
				return invalid(ErrBackingFormat, "%d bytes (at most %d)", n, maxBackingFormatLen)
			}
			if bytes.IndexByte(data, 0) >= 0 {
				return invalid(ErrBackingFormat, "name contains a NUL byte")
			}
			img.BackingFormat = string(data)
		case ExtFeatureTable:
			img.Features = unmarshalFeatures(data)
		case ExtDataFile:
			if bytes.IndexByte(data, 0) >= 0 {
				return invalid(ErrDataFile, "name contains a NUL byte")
			}
			img.DataFile = string(data)
		case ExtCrypto:
			if img.CryptMethod != CryptLUKS {
				return invalid(ErrEncryption, "crypto header extension without LUKS encryption")
			}
			if n != 16 {
				return invalid(ErrEncryption, "crypto header extension of %d bytes (want 16)", n)
			}
			img.CryptoOffset = binary.BigEndian.Uint64(data)
			img.CryptoLength = binary.BigEndian.Uint64(data[8:])
		}
		off += pad8(int(n))
	}
	return nil
}

// featureNames names the bits of mask of the given type (0 incompatible, 1
// compatible, 2 autoclear) from the image's feature name table, or as
// "unknown ... feature: N" when the table has no name for a bit.
func (img *Image) featureNames(typ uint8, mask uint64) string {
	var names []string
	kind := [...]string{"incompatible", "compatible", "autoclear"}[typ]
	for bit := uint8(0); bit < 64; bit++ {
		if mask&(1<<bit) == 0 {
			continue
		}
		name := ""
		for _, f := range img.Features {
			if f.Type == typ && f.Bit == bit {
				name = f.Name
			}
		}
		if name == "" {
			name = fmt.Sprintf("unknown %s feature: %d", kind, bit)
		} else {
			// The name comes from the image: quote it so that control
			// characters cannot reach a terminal.
			name = strconv.Quote(name)
		}
		names = append(names, name)
	}
	return strings.Join(names, ", ")
}

// UnknownExtensions returns the extensions whose type this package does not
// interpret, in on-disk order.
func (img *Image) UnknownExtensions() []Extension {
	var u []Extension
	for _, e := range img.Extensions {
		switch e.Type {
		case ExtBackingFormat, ExtFeatureTable, ExtBitmaps, ExtCrypto, ExtDataFile:
		default:
			u = append(u, e)
		}
	}
	return u
}

// bitmapsExt validates the persistent bitmaps extension as QEMU does when
// it reads the header: its length always, and, when the autoclear bitmaps
// bit says the bitmaps are valid, its reserved field, bitmap count,
// directory size and alignment. ok is false when there is no extension or
// QEMU ignores it (bit clear). Errors wrap [ErrBitmaps].
func (img *Image) bitmapsExt() (nb uint32, dirSize, dirOff uint64, ok bool, err error) {
	var data []byte
	found := false
	for _, e := range img.Extensions {
		if e.Type == ExtBitmaps {
			data, found = e.Data, true
		}
	}
	if !found {
		return 0, 0, 0, false, nil
	}
	if len(data) != 24 {
		return 0, 0, 0, false, invalid(ErrBitmaps, "bitmaps extension of %d bytes (want 24)", len(data))
	}
	if img.AutoclearFeatures&AutoclearBitmaps == 0 {
		return 0, 0, 0, false, nil // QEMU warns and ignores the bitmaps
	}
	be := binary.BigEndian
	nb = be.Uint32(data)
	dirSize = be.Uint64(data[8:])
	dirOff = be.Uint64(data[16:])
	switch {
	case be.Uint32(data[4:]) != 0:
		err = invalid(ErrBitmaps, "bitmaps extension: reserved field is not zero")
	case nb > maxBitmaps:
		err = invalid(ErrBitmaps, "%d bitmaps, exceeding QEMU's maximum of %d", nb, maxBitmaps)
	case nb == 0:
		err = invalid(ErrBitmaps, "bitmaps extension with zero bitmaps")
	case dirOff%uint64(img.ClusterSize()) != 0:
		err = invalid(ErrBitmaps, "bitmap directory offset %#x is not cluster aligned", dirOff)
	case dirSize > maxBitmapDirBytes:
		err = invalid(ErrBitmaps, "bitmap directory of %d bytes (at most %d)", dirSize, maxBitmapDirBytes)
	}
	return nb, dirSize, dirOff, err == nil, err
}
