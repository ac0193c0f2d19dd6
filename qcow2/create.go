package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/directdl/directdl/internal/atomicfile"
)

// Options describes an image to create. The zero value (plus a Size) asks
// for what `qemu-img create -f qcow2 FILE SIZE` makes: version 3 ("1.1"),
// 64 KiB clusters, 16-bit refcounts, zlib compression, no lazy refcounts, no
// extended L2 entries, no backing file, no preallocation. Each field names
// the qemu-img option it mirrors.
type Options struct {
	// Size is the virtual size in bytes, rounded up to a multiple of 512
	// as qemu-img does. Zero with a BackingFile means "the backing file's
	// size" (read from its header for qcow2, its length for raw), which
	// needs the backing file to be readable and Unsafe to be false.
	Size int64

	// ClusterSize is cluster_size: a power of two from 512 to 2 MiB.
	// Zero means 65536.
	ClusterSize int

	// Compat is compat: "1.1" (also "v3") or "0.10" (also "v2"). Empty
	// means "1.1". Version 2 images support none of LazyRefcounts,
	// ExtendedL2, zstd compression or refcount widths other than 16.
	Compat string

	// LazyRefcounts is lazy_refcounts=on.
	LazyRefcounts bool

	// RefcountBits is refcount_bits: 1, 2, 4, 8, 16, 32 or 64. Zero means 16.
	RefcountBits int

	// ExtendedL2 is extended_l2=on (subcluster allocation); it needs
	// clusters of 16 KiB or more.
	ExtendedL2 bool

	// CompressionType is compression_type: "zlib" or "zstd". Empty means
	// "zlib".
	CompressionType string

	// BackingFile is -b: the backing file name stored in the image, as
	// given. QEMU resolves a relative name against the directory of the
	// image, not the working directory. At most 1023 bytes.
	BackingFile string

	// BackingFormat is -F: the backing file's format ("qcow2", "raw", ...).
	// Required with BackingFile, as in QEMU 6.1 and later: without it QEMU
	// and libvirt would have to probe the format, which is unsafe.
	BackingFormat string

	// Unsafe is -u: do not open the backing file. Size must then be given.
	Unsafe bool

	// Preallocation is preallocation: only "off" (or empty) is supported.
	Preallocation string
}

// QEMU 7.2's block driver names (BlockdevDriver): the values QEMU accepts
// for a backing format.
var backingFormats = []string{
	"blkdebug", "blklogwrites", "blkreplay", "blkverify", "bochs", "cloop",
	"compress", "copy-before-write", "copy-on-read", "dmg", "file", "ftp",
	"ftps", "gluster", "host_cdrom", "host_device", "http", "https",
	"iscsi", "luks", "nbd", "nfs", "null-aio", "null-co", "nvme",
	"parallels", "preallocate", "qcow", "qcow2", "qed", "quorum", "raw",
	"rbd", "replication", "snapshot-access", "ssh", "throttle", "vdi",
	"vhdx", "vmdk", "vpc", "vvfat",
}

// checkBackingFormat refuses what QEMU refuses as a backing format, and
// names that do not fit the 15 bytes QEMU keeps (a longer one makes an
// image no QEMU can open).
func checkBackingFormat(format string) error {
	if !slices.Contains(backingFormats, format) {
		return optErr("backing format %q is not a QEMU block driver (e.g. qcow2, raw)", format)
	}
	if len(format) > maxBackingFormatLen {
		return optErr("backing format %q is longer than the %d bytes a qcow2 header can hold", format, maxBackingFormatLen)
	}
	return nil
}

// settings is Options resolved to header values.
type settings struct {
	version     uint32
	clusterBits uint32
	order       uint32
	incompat    uint64
	compat      uint64
	compression uint8
}

func optErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrOptions}, args...)...)
}

// Validate reports whether o describes an image qemu-img 7.2 would create.
// Errors wrap [ErrOptions] (and [ErrTooLarge] for sizes beyond the cluster
// size's limit) and name the option and the fix. Validate does not look at
// the backing file.
func (o Options) Validate() error {
	_, err := o.settings()
	return err
}

func (o Options) settings() (settings, error) {
	s := settings{version: 3, clusterBits: 16, order: 4}
	switch o.Compat {
	case "", "1.1", "v3":
	case "0.10", "v2":
		s.version = 2
	default:
		return s, optErr("compat %q: want 0.10 (v2) or 1.1 (v3)", o.Compat)
	}
	if o.ClusterSize != 0 {
		cs := o.ClusterSize
		if cs < 1<<minClusterBits || cs > 1<<maxClusterBits || cs&(cs-1) != 0 {
			return s, optErr("cluster size %d: must be a power of two from 512 to 2097152 bytes", cs)
		}
		s.clusterBits = uint32(bits.TrailingZeros(uint(cs)))
	}
	if o.RefcountBits != 0 {
		rb := o.RefcountBits
		if rb < 1 || rb > 64 || rb&(rb-1) != 0 {
			return s, optErr("refcount bits %d: must be a power of two from 1 to 64", rb)
		}
		s.order = uint32(bits.TrailingZeros(uint(rb)))
	}
	if s.version == 2 && s.order != 4 {
		return s, optErr("refcount bits %d need compat 1.1 (version 2 images have 16-bit refcounts)", o.RefcountBits)
	}
	if o.LazyRefcounts {
		if s.version == 2 {
			return s, optErr("lazy refcounts need compat 1.1")
		}
		s.compat |= CompatLazyRefcounts
	}
	if o.ExtendedL2 {
		if s.version == 2 {
			return s, optErr("extended L2 entries need compat 1.1")
		}
		if s.clusterBits < 14 {
			return s, optErr("extended L2 entries need a cluster size of at least 16384 bytes (got %d)", 1<<s.clusterBits)
		}
		s.incompat |= IncompatExtendedL2
	}
	switch o.CompressionType {
	case "", "zlib":
	case "zstd":
		if s.version == 2 {
			return s, optErr("compression type zstd needs compat 1.1")
		}
		s.compression = CompressionZstd
		s.incompat |= IncompatCompression
	default:
		return s, optErr("compression type %q: want zlib or zstd", o.CompressionType)
	}
	switch o.Preallocation {
	case "", "off":
	default:
		return s, optErr("preallocation %q is not supported (only off)", o.Preallocation)
	}
	if o.BackingFile == "" && o.BackingFormat != "" {
		return s, optErr("backing format %q given without a backing file", o.BackingFormat)
	}
	if o.BackingFile != "" {
		if len(o.BackingFile) > maxBackingNameLen {
			return s, optErr("backing file name is %d bytes; at most %d", len(o.BackingFile), maxBackingNameLen)
		}
		if strings.IndexByte(o.BackingFile, 0) >= 0 {
			return s, optErr("backing file name contains a NUL byte")
		}
		if o.BackingFormat == "" {
			return s, optErr("backing file %q given without a backing format: set BackingFormat (qemu-img -F), e.g. qcow2 or raw", o.BackingFile)
		}
		if err := checkBackingFormat(o.BackingFormat); err != nil {
			return s, err
		}
		if need := len(o.clusterZero(s)); int64(need) > int64(1)<<s.clusterBits {
			return s, optErr("backing file name of %d bytes does not fit in the first cluster (%d bytes); use a shorter name or larger clusters", len(o.BackingFile), 1<<s.clusterBits)
		}
	}
	if o.Size < 0 {
		return s, optErr("negative size %d", o.Size)
	}
	if o.Size == 0 && o.BackingFile != "" && o.Unsafe {
		return s, optErr("size required when the backing file is not opened (unsafe)")
	}
	if o.Size > int64(maxInt64-511) {
		return s, optErr("size %d: must be less than 8 EiB", o.Size)
	}
	size := roundUp512(o.Size)
	if l1 := l1Entries(uint64(size), s.clusterBits, o.ExtendedL2); l1 > maxL1Bytes/8 {
		maxSize := uint64(maxL1Bytes/8) << (2*s.clusterBits - 3 - boolToU32(o.ExtendedL2))
		return s, fmt.Errorf("%w: %d bytes with %d-byte clusters (at most %d); use a larger cluster size", ErrTooLarge, size, 1<<s.clusterBits, maxSize)
	}
	return s, nil
}

func boolToU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func roundUp512(n int64) int64 { return (n + 511) &^ 511 }

// clusterZero returns the header, extensions and backing file name as QEMU's
// qcow2_update_header lays them out, without the tables' fields filled in
// and without padding to the cluster size.
func (o Options) clusterZero(s settings) []byte {
	h := Header{
		Version:              s.version,
		ClusterBits:          s.clusterBits,
		IncompatibleFeatures: s.incompat,
		CompatibleFeatures:   s.compat,
		RefcountOrder:        s.order,
		CompressionType:      s.compression,
	}
	return h.clusterZero(o.BackingFile, o.BackingFormat, nil)
}

// clusterZero encodes h followed by its extensions in QEMU's order:
// backing format, feature table (version 3 with clusters over 4 KiB),
// extra (unknown) extensions, end marker, backing file name. It sets
// BackingFileOffset and BackingFileSize in the encoded bytes.
func (h Header) clusterZero(backing, backingFormat string, extra []Extension) []byte {
	h.BackingFileOffset, h.BackingFileSize = 0, 0
	b := h.marshal()
	if backingFormat != "" {
		b = appendExt(b, ExtBackingFormat, []byte(backingFormat))
	}
	if h.Version >= 3 && h.ClusterSize() > 4096 {
		b = appendExt(b, ExtFeatureTable, marshalFeatures(qemuFeatures))
	}
	for _, e := range extra {
		b = appendExt(b, e.Type, e.Data)
	}
	b = appendExt(b, ExtEnd, nil)
	if backing != "" {
		binary.BigEndian.PutUint64(b[8:], uint64(len(b)))
		binary.BigEndian.PutUint32(b[16:], uint32(len(backing)))
		b = append(b, backing...)
	}
	return b
}

// layout is a created image: a sparse set of clusters and a length.
type layout struct {
	disk   *sparseDisk
	header Header
}

// build runs QEMU's creation steps for o: write a header and a one-block
// refcount table, reference the first three clusters, write the full header,
// grow the L1 table to the virtual size, set the backing file.
func (o Options) build(size int64) (*layout, error) {
	s, err := o.settings()
	if err != nil {
		return nil, err
	}
	size = roundUp512(size)
	if l1 := l1Entries(uint64(size), s.clusterBits, o.ExtendedL2); l1 > maxL1Bytes/8 {
		return nil, fmt.Errorf("%w: %d bytes with %d-byte clusters; use a larger cluster size", ErrTooLarge, size, 1<<s.clusterBits)
	}
	a := newAllocator(s.clusterBits, s.order)
	cs := a.cs
	a.disk.writeZeros(0, cs)
	a.table = make([]uint64, cs/8)
	a.table[0] = uint64(2 * cs)
	a.tableOffset = cs
	first := make([]byte, 2*cs)
	binary.BigEndian.PutUint64(first, uint64(2*cs))
	a.disk.write(cs, first)
	if off, err := a.allocClusters(3 * cs); err != nil || off != 0 {
		return nil, fmt.Errorf("qcow2: internal error: first clusters at %d: %v", off, err)
	}

	h := Header{
		Version:              s.version,
		ClusterBits:          s.clusterBits,
		Size:                 uint64(size),
		IncompatibleFeatures: s.incompat,
		CompatibleFeatures:   s.compat,
		RefcountOrder:        s.order,
		HeaderLength:         v3HeaderLen,
		CompressionType:      s.compression,
	}
	if s.version == 2 {
		h.HeaderLength = v2HeaderLen
	}
	if l1 := int64(l1Entries(uint64(size), s.clusterBits, o.ExtendedL2)); l1 > 0 {
		off, err := a.allocClusters(l1 * 8)
		if err != nil {
			return nil, fmt.Errorf("%w: %d bytes with %d-byte clusters: %v", ErrTooLarge, size, cs, err)
		}
		a.disk.writeZeros(off, l1*8)
		h.L1Size, h.L1TableOffset = uint32(l1), uint64(off)
	}
	a.flush()
	h.RefcountTableOffset = uint64(a.tableOffset)
	h.RefcountTableClusters = uint32(int64(len(a.table)) * 8 / cs)

	c0 := h.clusterZero(o.BackingFile, o.BackingFormat, nil)
	if int64(len(c0)) > cs {
		return nil, optErr("backing file name does not fit in the first cluster")
	}
	full := make([]byte, cs)
	copy(full, c0)
	a.disk.write(0, full)
	if o.BackingFile != "" {
		h.BackingFileOffset = binary.BigEndian.Uint64(c0[8:])
		h.BackingFileSize = uint32(len(o.BackingFile))
	}
	return &layout{disk: a.disk, header: h}, nil
}

// writeTo writes the image to w: every cluster holding data, and the last
// byte so that the length is right. Clusters not written must read as zeros,
// as a new or truncated file does.
func (l *layout) writeTo(w io.WriterAt) error {
	idx := make([]int64, 0, len(l.disk.clusters))
	for ci := range l.disk.clusters {
		idx = append(idx, ci)
	}
	slices.Sort(idx)
	cs := l.disk.cs
	end := l.disk.length
	written := int64(0)
	for _, ci := range idx {
		c := l.disk.clusters[ci]
		n := min(cs, end-ci*cs)
		// Trailing zeros need no write: w reads as zeros there.
		for n > 0 && c[n-1] == 0 {
			n--
		}
		if n == 0 {
			continue
		}
		if _, err := w.WriteAt(c[:n], ci*cs); err != nil {
			return err
		}
		written = ci*cs + n
	}
	if end > written {
		if t, ok := w.(interface{ Truncate(int64) error }); ok {
			return t.Truncate(end)
		}
		if _, err := w.WriteAt([]byte{0}, end-1); err != nil {
			return err
		}
	}
	return nil
}

// CreateAt writes a new image described by o to w and returns its length in
// bytes. w must read as zeros wherever nothing is written (a new or freshly
// truncated file does); CreateAt writes only the clusters that hold data and
// sets the length by writing the last byte (or truncating, when w has a
// Truncate method).
//
// CreateAt never opens the backing file, so o.Size must be set when
// o.BackingFile is; [Create] can take the size from the backing file. The
// bytes are identical to what `qemu-img create -f qcow2` (QEMU 7.2) writes
// for the same options.
func CreateAt(w io.WriterAt, o Options) (int64, error) {
	if o.BackingFile != "" && o.Size == 0 {
		return 0, optErr("size required: CreateAt does not open the backing file (use Create, or BackingSize)")
	}
	l, err := o.build(o.Size)
	if err != nil {
		return 0, err
	}
	if err := l.writeTo(w); err != nil {
		return 0, fmt.Errorf("qcow2: writing image: %w", err)
	}
	return l.disk.length, nil
}

// Create creates the image described by o at path, replacing any file there,
// as `qemu-img create -f qcow2` does, but atomically: the image is written to
// a temporary file in the same directory, synced, and renamed to path, and
// the directory is synced. If anything fails, nothing is left behind and an
// existing file at path is untouched.
//
// Unless o.Unsafe is set, a backing file is opened (read-only, resolved
// against path's directory as QEMU does) to check that it exists and has the
// stated format, and to take the size from it when o.Size is zero.
func Create(path string, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	size := o.Size
	if o.BackingFile != "" {
		if o.BackingFile == path || sameFile(ResolveBacking(path, o.BackingFile), path) {
			return optErr("backing file %q is the image being created", o.BackingFile)
		}
		if !o.Unsafe {
			bpath := ResolveBacking(path, o.BackingFile)
			if size == 0 {
				bsize, err := BackingSize(bpath, o.BackingFormat)
				if err != nil {
					return fmt.Errorf("qcow2: could not open backing image (use Unsafe to skip): %w", err)
				}
				size = bsize
			} else if err := checkBacking(bpath, o.BackingFormat); err != nil {
				return fmt.Errorf("qcow2: could not open backing image (use Unsafe to skip): %w", err)
			}
		}
	}
	l, err := o.build(size)
	if err != nil {
		return err
	}
	if err := checkNotInUse(path); err != nil {
		return err
	}
	err = atomicfile.Write(path, 0o644, func(f *os.File) error { return l.writeTo(f) })
	if err != nil {
		return fmt.Errorf("qcow2: creating %s: %w", path, err)
	}
	return nil
}

// checkNotInUse refuses to replace an existing image that a running QEMU
// holds open, as qemu-img create does ("Failed to get write lock").
func checkNotInUse(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // nothing there to protect, or Create will say why
	}
	defer f.Close()
	locked, err := lockedByQEMU(f)
	if err != nil || !locked {
		return nil
	}
	return fmt.Errorf("%w: refusing to replace %s", ErrInUse, path)
}

// ResolveBacking returns the path QEMU opens for backing file name backing
// of the image at image: backing itself when it is absolute or names a
// protocol ("json:", "nbd:", ...), otherwise backing joined to image's
// directory. Like QEMU, it does not clean the result ("sub/../base.qcow2").
func ResolveBacking(image, backing string) string {
	if backing == "" || filepath.IsAbs(backing) || hasProtocol(backing) {
		return backing
	}
	i := strings.LastIndexByte(image, '/')
	if i < 0 {
		return backing
	}
	return image[:i+1] + backing
}

// hasProtocol reports whether QEMU would parse name as "protocol:rest": a
// colon before any slash.
func hasProtocol(name string) bool {
	i := strings.IndexAny(name, ":/")
	return i >= 0 && name[i] == ':'
}

// sameFile reports whether a and b name the same file: the same inode when
// both exist, the same cleaned absolute path otherwise.
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// checkBacking opens the backing file as QEMU would before creating an
// overlay with an explicit size: a qcow2 header must be valid, a raw one
// must be a regular file. Other formats cannot be checked here.
func checkBacking(path, format string) error {
	switch format {
	case "qcow2":
		_, err := InspectFile(path)
		return err
	case "raw", "file":
		_, err := BackingSize(path, format)
		return err
	}
	return fmt.Errorf("qcow2: cannot check a %s backing file; set Unsafe (qemu-img -u) to skip opening it", format)
}

// BackingSize returns the virtual size QEMU would take from the backing
// file at path opened with format: the header's size for qcow2 (floored to
// 512 bytes, after validating the header), the file's length for raw.
// Other formats are not read; give the size explicitly.
func BackingSize(path, format string) (int64, error) {
	switch format {
	case "qcow2":
		img, err := InspectFile(path)
		if err != nil {
			return 0, err
		}
		return int64(img.Size &^ 511), nil
	case "raw", "file":
		fi, err := os.Stat(path)
		if err != nil {
			return 0, fmt.Errorf("qcow2: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return 0, fmt.Errorf("qcow2: backing file %s is not a regular file; give the size explicitly", path)
		}
		return fi.Size(), nil
	case "":
		return 0, errors.New("qcow2: backing format required")
	default:
		return 0, fmt.Errorf("qcow2: cannot read the size of a %s backing file %s; give the size explicitly", format, path)
	}
}
