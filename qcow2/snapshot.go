package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Snapshot is one entry of an image's internal snapshot table, decoded as
// QEMU's qcow2_read_snapshots decodes it (qcow2.rst, "Snapshots"). The zero
// value is an empty entry.
type Snapshot struct {
	// ID and Name are the snapshot's ID string and name. Like QEMU, which
	// keeps them as C strings, they end at the first NUL byte.
	ID, Name string

	// L1TableOffset and L1Size locate the snapshot's L1 table.
	L1TableOffset uint64
	L1Size        uint32

	// DateSec and DateNsec are the wall-clock time the snapshot was taken.
	DateSec, DateNsec uint32
	// VMClockNsec is the guest's clock when the snapshot was taken.
	VMClockNsec uint64
	// VMStateSize is the size of the saved VM state: the 64-bit field of
	// the extra data when present, else the 32-bit field of the entry.
	VMStateSize uint64
	// DiskSize is the virtual disk size when the snapshot was taken. When
	// the extra data does not hold it, it is the image's current virtual
	// size rounded down to 512 bytes, as QEMU assumes.
	DiskSize uint64
	// ICount is the guest's instruction counter, or -1 when the extra data
	// does not hold it (QEMU's value for "none").
	ICount int64

	// ExtraData is the entry's extra data as stored, known fields
	// included; at most 1024 bytes.
	ExtraData []byte
}

// Snapshot table entry layout: the fixed part, then extra data, ID, name.
const (
	snapExtraVMStateEnd = 8  // endof(QCowSnapshotExtraData, vm_state_size_large)
	snapExtraDiskEnd    = 16 // endof(QCowSnapshotExtraData, disk_size)
	snapExtraICountEnd  = 24 // endof(QCowSnapshotExtraData, icount)
)

// snapshotError is a snapshot table QEMU refuses to read. qemu is QEMU's
// own message and hint its advice, as qemu-img prints them; check.go
// reports them in those words.
type snapshotError struct {
	msg  string // this package's message, without the "qcow2: " prefix
	qemu string
	hint string
}

func (e *snapshotError) Error() string { return ErrSnapshotTable.Error() + ": " + e.msg }
func (e *snapshotError) Unwrap() error { return ErrSnapshotTable }

// errIO is QEMU's EIO for a read it refuses: beyond the largest offset
// the block layer accepts (BDRV_MAX_LENGTH).
var errIO = errors.New("input/output error")

// maxFileOffset is QEMU's BDRV_MAX_LENGTH: INT64_MAX rounded down to 1 GiB.
// The block layer fails reads that reach past it with EIO.
const maxFileOffset = uint64(1<<63-1) &^ (1<<30 - 1)

// snapshotTable is the snapshot table as QEMU reads it.
type snapshotTable struct {
	// entries are the entries read from the file. In lenient mode a tail
	// of entries that lie wholly past the end of the file, which QEMU
	// reads as zeros, is not stored: see zeros.
	entries []Snapshot
	// zeros counts the all-zero entries past the end of the file that
	// follow entries (lenient mode only).
	zeros int64
	// size is QEMU's snapshots_size: the table's length in bytes, without
	// padding after the last entry.
	size uint64
}

// ReadSnapshots reads the internal snapshot table of img, the image in r
// as returned by [Inspect], for img.NbSnapshots entries at
// img.SnapshotsOffset, in QEMU's order and with QEMU's limits: at most
// 1024 bytes of extra data per entry and 64 MiB for the whole table.
//
// Unlike QEMU, which reads bytes past the end of the file as zeros,
// ReadSnapshots refuses a table that does not lie wholly inside the file:
// a header claiming thousands of snapshots in a small file fails at the
// first missing entry instead of yielding empty ones. It reads the table
// incrementally and never allocates more than the bytes the file holds.
// Errors wrap [ErrSnapshotTable]; read errors are returned wrapped as they
// are. ReadSnapshots is safe for concurrent use if r is.
func ReadSnapshots(r io.ReaderAt, img *Image) ([]Snapshot, error) {
	t, err := readSnapshotTable(r, img, readerSize(r), true)
	if err != nil {
		return nil, err
	}
	return t.entries, nil
}

// tableWindow reads a table sequentially through a buffer, so that
// entries of a few bytes do not cost one ReadAt each.
type tableWindow struct {
	r        io.ReaderAt
	buf      []byte
	start    uint64 // file offset of buf[0]
	real     int    // bytes of buf that came from the file
	fileLen  int64  // -1 when unknown
	chunkLen int
}

// read returns n bytes at off, zero-filled past the end of the file, and
// how many of them came from the file. The slice is valid until the next
// call. It fails with errIO where QEMU's block layer would.
func (w *tableWindow) read(off uint64, n int) ([]byte, int, error) {
	if off > maxFileOffset || uint64(n) > maxFileOffset-off {
		return nil, 0, errIO
	}
	if off < w.start || off+uint64(n) > w.start+uint64(len(w.buf)) {
		size := max(n, w.chunkLen)
		if w.fileLen >= 0 {
			// Never read (or allocate) much past the end of the file.
			if avail := int64(off) + int64(n); avail <= w.fileLen {
				size = int(min(int64(size), w.fileLen-int64(off)))
			} else {
				size = n
			}
		}
		if cap(w.buf) < size {
			w.buf = make([]byte, size)
		}
		w.buf = w.buf[:size]
		got, err := readFull(w.r, w.buf, int64(off))
		if err != nil {
			return nil, 0, err
		}
		w.start, w.real = off, got
	}
	i := int(off - w.start)
	real := min(max(w.real-i, 0), n)
	return w.buf[i : i+n], real, nil
}

// readSnapshotTable follows qcow2_do_read_snapshots (without repair). In
// strict mode any entry not wholly inside the file is an error; otherwise
// bytes past the end read as zeros, as in QEMU, and the entries wholly
// past it are counted rather than stored. fileLen is the file's length, or
// -1 when unknown (strict mode only).
func readSnapshotTable(r io.ReaderAt, img *Image, fileLen int64, strict bool) (*snapshotTable, error) {
	t := &snapshotTable{}
	n := int64(img.NbSnapshots)
	if n == 0 {
		return t, nil
	}
	w := &tableWindow{r: r, fileLen: fileLen, chunkLen: 64 << 10}
	base := img.SnapshotsOffset
	off := base
	var tableLen uint64
	readErr := func(err error) error {
		if err == errIO {
			return &snapshotError{
				msg:  fmt.Sprintf("reading the table at %d: input/output error", base),
				qemu: "Failed to read snapshot table: Input/output error",
			}
		}
		return fmt.Errorf("qcow2: reading the snapshot table: %w", err)
	}
	tooBig := func(i int64) error {
		return &snapshotError{
			msg:  fmt.Sprintf("table is larger than %d bytes at entry %d", maxSnapshotsTableBytes, i),
			qemu: "Snapshot table is too big",
			hint: fmt.Sprintf("You can force-remove all %d overhanging snapshots with qemu-img check -r all", n-i),
		}
	}
	missing := func(i int64, at uint64) error {
		return &snapshotError{
			msg: fmt.Sprintf("entry %d at offset %d is past the end of the file (the header claims %d snapshots at offset %d)",
				i, at, n, base),
		}
	}
	for i := int64(0); i < n; i++ {
		tableLen = (tableLen + 7) &^ 7
		off = (off + 7) &^ 7
		if !strict && fileLen >= 0 && off >= uint64(fileLen) {
			// The rest are all-zero entries: 40 bytes each, no L1
			// table, no names. Account for them without reading.
			rest := uint64(n - i)
			if tableLen+rest*snapshotHeaderLen > maxSnapshotsTableBytes {
				k := (maxSnapshotsTableBytes-tableLen)/snapshotHeaderLen + 1
				return nil, tooBig(i + int64(k) - 1)
			}
			if off > maxFileOffset || rest*snapshotHeaderLen > maxFileOffset-off {
				return nil, readErr(errIO)
			}
			t.zeros = int64(rest)
			off += rest * snapshotHeaderLen
			break
		}
		h, got, err := w.read(off, snapshotHeaderLen)
		if err != nil {
			return nil, readErr(err)
		}
		if strict && got < snapshotHeaderLen {
			return nil, missing(i, off)
		}
		be := binary.BigEndian
		sn := Snapshot{
			L1TableOffset: be.Uint64(h[0:]),
			L1Size:        be.Uint32(h[8:]),
			DateSec:       be.Uint32(h[16:]),
			DateNsec:      be.Uint32(h[20:]),
			VMClockNsec:   be.Uint64(h[24:]),
			VMStateSize:   uint64(be.Uint32(h[32:])),
			DiskSize:      img.Size &^ 511,
			ICount:        -1,
		}
		idLen := int(be.Uint16(h[12:]))
		nameLen := int(be.Uint16(h[14:]))
		extraLen := be.Uint32(h[36:])
		off += snapshotHeaderLen
		if extraLen > maxSnapshotExtraData {
			return nil, &snapshotError{
				msg:  fmt.Sprintf("entry %d has %d bytes of extra data (at most %d)", i, extraLen, maxSnapshotExtraData),
				qemu: fmt.Sprintf("Too much extra metadata in snapshot table entry %d", i),
				hint: "You can force-remove this extra metadata with qemu-img check -r all",
			}
		}
		rest := int(extraLen) + idLen + nameLen
		b, got, err := w.read(off, rest)
		if err != nil {
			return nil, readErr(err)
		}
		if strict && got < rest {
			return nil, missing(i, off-snapshotHeaderLen)
		}
		extra := b[:extraLen]
		if extraLen >= snapExtraVMStateEnd {
			sn.VMStateSize = be.Uint64(extra)
		}
		if extraLen >= snapExtraDiskEnd {
			sn.DiskSize = be.Uint64(extra[8:])
		}
		if extraLen >= snapExtraICountEnd {
			sn.ICount = int64(be.Uint64(extra[16:]))
		}
		if extraLen > 0 {
			sn.ExtraData = bytes.Clone(extra)
		}
		sn.ID = cString(b[extraLen : int(extraLen)+idLen])
		sn.Name = cString(b[int(extraLen)+idLen:])
		off += uint64(rest)
		tableLen += snapshotHeaderLen + uint64(rest)
		if tableLen > maxSnapshotsTableBytes {
			return nil, tooBig(i)
		}
		t.entries = append(t.entries, sn)
	}
	t.size = off - base
	return t, nil
}

// cString returns b up to its first NUL byte, as C reads it.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
