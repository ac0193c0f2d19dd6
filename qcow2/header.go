package qcow2

import (
	"encoding/binary"
	"fmt"
)

// Magic is the four bytes every QCOW image starts with ("QFI\xfb").
const Magic uint32 = 0x514649fb

// Header extension types (qcow2.rst, "Header extensions").
const (
	ExtEnd           uint32 = 0x00000000
	ExtBackingFormat uint32 = 0xe2792aca
	ExtFeatureTable  uint32 = 0x6803f857
	ExtBitmaps       uint32 = 0x23852875
	ExtCrypto        uint32 = 0x0537be77
	ExtDataFile      uint32 = 0x44415441
)

// Incompatible feature bits.
const (
	IncompatDirty       uint64 = 1 << 0
	IncompatCorrupt     uint64 = 1 << 1
	IncompatDataFile    uint64 = 1 << 2
	IncompatCompression uint64 = 1 << 3
	IncompatExtendedL2  uint64 = 1 << 4

	incompatKnown = IncompatDirty | IncompatCorrupt | IncompatDataFile |
		IncompatCompression | IncompatExtendedL2
)

// Compatible and autoclear feature bits.
const (
	CompatLazyRefcounts uint64 = 1 << 0

	AutoclearBitmaps       uint64 = 1 << 0
	AutoclearDataFileRaw   uint64 = 1 << 1
	compatKnown                   = CompatLazyRefcounts
	autoclearKnown                = AutoclearBitmaps | AutoclearDataFileRaw
	featureNameLen                = 46
	featureEntryLen               = 48
	v2HeaderLen                   = 72
	v3HeaderMinLen                = 104
	v3HeaderLen                   = 112 // what QEMU 7.2 writes: 104 + compression_type + padding
	extHeaderLen                  = 8
	maxBackingNameLen             = 1023
	maxBackingFormatLen           = 15 // QEMU keeps it in char[16]
	minClusterBits                = 9
	maxClusterBits                = 21
	maxL1Bytes                    = 32 << 20 // QCOW_MAX_L1_SIZE
	maxRefcountTableBytes         = 8 << 20  // QCOW_MAX_REFTABLE_SIZE
	maxSnapshots                  = 65536    // QCOW_MAX_SNAPSHOTS
	maxSnapshotsTableBytes        = 1024 * maxSnapshots
	maxSnapshotExtraData          = 1024
	snapshotHeaderLen             = 40 // fixed part of a snapshot table entry
	l1eOffsetMask          uint64 = 0x00fffffffffffe00
	l1eReservedMask        uint64 = 0x7f000000000001ff
	l2eOffsetMask          uint64 = 0x00fffffffffffe00
	l2eCompressed          uint64 = 1 << 62
	oflagCopied            uint64 = 1 << 63
	oflagZero              uint64 = 1 << 0
	reftOffsetMask         uint64 = 0xfffffffffffffe00
	reftReservedMask       uint64 = 0x1ff
	maxInt64               uint64 = 1<<63 - 1
	maxRequestEnd          uint64 = 1<<63 - 1<<30 // BDRV_MAX_LENGTH
)

// Compression types (header byte 104).
const (
	CompressionZlib uint8 = 0
	CompressionZstd uint8 = 1
)

// Encryption methods (crypt_method).
const (
	CryptNone uint32 = 0
	CryptAES  uint32 = 1
	CryptLUKS uint32 = 2
)

// Header is the fixed part of a QCOW2 header, field by field, as stored on
// disk (qcow2.rst, "Header"). Version 2 headers leave the version 3 fields
// zero except RefcountOrder (4) and HeaderLength (72).
type Header struct {
	Version               uint32
	BackingFileOffset     uint64
	BackingFileSize       uint32
	ClusterBits           uint32
	Size                  uint64 // virtual size in bytes
	CryptMethod           uint32
	L1Size                uint32
	L1TableOffset         uint64
	RefcountTableOffset   uint64
	RefcountTableClusters uint32
	NbSnapshots           uint32
	SnapshotsOffset       uint64
	IncompatibleFeatures  uint64
	CompatibleFeatures    uint64
	AutoclearFeatures     uint64
	RefcountOrder         uint32
	HeaderLength          uint32
	CompressionType       uint8
}

// ClusterSize returns 1<<ClusterBits.
func (h *Header) ClusterSize() int64 { return int64(1) << h.ClusterBits }

// RefcountBits returns 1<<RefcountOrder.
func (h *Header) RefcountBits() int { return 1 << h.RefcountOrder }

// ExtendedL2 reports whether L2 entries carry a subcluster bitmap.
func (h *Header) ExtendedL2() bool { return h.IncompatibleFeatures&IncompatExtendedL2 != 0 }

// l2EntrySize is 8, or 16 with extended L2 entries.
func (h *Header) l2EntrySize() int64 {
	if h.ExtendedL2() {
		return 16
	}
	return 8
}

// Compat returns "0.10" for version 2 images and "1.1" for version 3, as
// qemu-img info names them.
func (h *Header) Compat() string {
	if h.Version == 2 {
		return "0.10"
	}
	return "1.1"
}

// CompressionName returns "zlib" or "zstd" as qemu-img info does.
func (h *Header) CompressionName() string {
	switch h.CompressionType {
	case CompressionZlib:
		return "zlib"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("unknown(%d)", h.CompressionType)
}

// fixedLen returns the length of the fixed header as written: 72 for
// version 2, HeaderLength for version 3.
func (h *Header) fixedLen() int {
	if h.Version == 2 {
		return v2HeaderLen
	}
	return int(h.HeaderLength)
}

// marshal encodes h as QEMU does: 72 bytes for version 2, 112 bytes
// (HeaderLength is ignored and taken as 112) for version 3.
func (h *Header) marshal() []byte {
	b := make([]byte, v3HeaderLen)
	be := binary.BigEndian
	be.PutUint32(b[0:], Magic)
	be.PutUint32(b[4:], h.Version)
	be.PutUint64(b[8:], h.BackingFileOffset)
	be.PutUint32(b[16:], h.BackingFileSize)
	be.PutUint32(b[20:], h.ClusterBits)
	be.PutUint64(b[24:], h.Size)
	be.PutUint32(b[32:], h.CryptMethod)
	be.PutUint32(b[36:], h.L1Size)
	be.PutUint64(b[40:], h.L1TableOffset)
	be.PutUint64(b[48:], h.RefcountTableOffset)
	be.PutUint32(b[56:], h.RefcountTableClusters)
	be.PutUint32(b[60:], h.NbSnapshots)
	be.PutUint64(b[64:], h.SnapshotsOffset)
	if h.Version == 2 {
		return b[:v2HeaderLen]
	}
	be.PutUint64(b[72:], h.IncompatibleFeatures)
	be.PutUint64(b[80:], h.CompatibleFeatures)
	be.PutUint64(b[88:], h.AutoclearFeatures)
	be.PutUint32(b[96:], h.RefcountOrder)
	be.PutUint32(b[100:], v3HeaderLen)
	b[104] = h.CompressionType
	return b
}

// unmarshalHeader decodes the fixed header fields from b, which must hold at
// least 72 bytes (104 for version 3). It does not validate anything but the
// length; see validateHeader.
func unmarshalHeader(b []byte) Header {
	be := binary.BigEndian
	h := Header{
		Version:               be.Uint32(b[4:]),
		BackingFileOffset:     be.Uint64(b[8:]),
		BackingFileSize:       be.Uint32(b[16:]),
		ClusterBits:           be.Uint32(b[20:]),
		Size:                  be.Uint64(b[24:]),
		CryptMethod:           be.Uint32(b[32:]),
		L1Size:                be.Uint32(b[36:]),
		L1TableOffset:         be.Uint64(b[40:]),
		RefcountTableOffset:   be.Uint64(b[48:]),
		RefcountTableClusters: be.Uint32(b[56:]),
		NbSnapshots:           be.Uint32(b[60:]),
		SnapshotsOffset:       be.Uint64(b[64:]),
		RefcountOrder:         4,
		HeaderLength:          v2HeaderLen,
	}
	if h.Version >= 3 && len(b) >= v3HeaderMinLen {
		h.IncompatibleFeatures = be.Uint64(b[72:])
		h.CompatibleFeatures = be.Uint64(b[80:])
		h.AutoclearFeatures = be.Uint64(b[88:])
		h.RefcountOrder = be.Uint32(b[96:])
		h.HeaderLength = be.Uint32(b[100:])
		if h.HeaderLength > v3HeaderMinLen && len(b) > v3HeaderMinLen {
			h.CompressionType = b[104]
		}
	}
	return h
}

// Extension is one header extension as stored: its type and its data
// (without the 8-byte type/length prefix and without padding).
type Extension struct {
	Type uint32 `json:"type"`
	Data []byte `json:"data"`
}

// appendExt appends an extension record, padded to 8 bytes, to b.
func appendExt(b []byte, typ uint32, data []byte) []byte {
	var hdr [extHeaderLen]byte
	binary.BigEndian.PutUint32(hdr[0:], typ)
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(data)))
	b = append(b, hdr[:]...)
	b = append(b, data...)
	return append(b, make([]byte, pad8(len(data))-len(data))...)
}

// pad8 rounds n up to a multiple of 8.
func pad8(n int) int { return (n + 7) &^ 7 }

// Feature is one entry of the feature name table.
type Feature struct {
	Type uint8  `json:"type"` // 0 incompatible, 1 compatible, 2 autoclear
	Bit  uint8  `json:"bit"`
	Name string `json:"name"`
}

// qemuFeatures is the table QEMU 5.2+ writes in every version 3 image with
// clusters larger than 4 KiB.
var qemuFeatures = []Feature{
	{0, 0, "dirty bit"},
	{0, 1, "corrupt bit"},
	{0, 2, "external data file"},
	{0, 3, "compression type"},
	{0, 4, "extended L2 entries"},
	{1, 0, "lazy refcounts"},
	{2, 0, "bitmaps"},
	{2, 1, "raw external data"},
}

func marshalFeatures(fs []Feature) []byte {
	b := make([]byte, 0, len(fs)*featureEntryLen)
	for _, f := range fs {
		var e [featureEntryLen]byte
		e[0], e[1] = f.Type, f.Bit
		copy(e[2:], f.Name)
		b = append(b, e[:]...)
	}
	return b
}

func unmarshalFeatures(b []byte) []Feature {
	var fs []Feature
	for len(b) >= featureEntryLen {
		name := b[2:featureEntryLen]
		n := 0
		for n < len(name) && name[n] != 0 {
			n++
		}
		fs = append(fs, Feature{Type: b[0], Bit: b[1], Name: string(name[:n])})
		b = b[featureEntryLen:]
	}
	return fs
}

func putU32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
func putU64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }
