package qcow2

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// This file is QEMU 7.2's `qemu-img check` for qcow2 without repair:
// qcow2_co_check_locked, qcow2_check_refcounts and the functions they call
// in block/qcow2-refcount.c, block/qcow2-snapshot.c and block/qcow2-bitmap.c.
// The functions keep QEMU's names where they do the same job, and the
// problems they report are QEMU's stderr lines, word for word, so the two
// can be compared line by line.
//
// Where QEMU allocates a refcount array for every cluster of the file and
// reads every L2 table twice (and once more for each snapshot sharing it),
// this reads each refcount block once and each L2 table once (an L2 table
// met again replays what its first walk did, within a memory bound), keeps
// the computed refcounts in pages allocated on first use, and defers the
// OFLAG_COPIED problems found on the way to where QEMU prints them, after
// the refcount comparison.

// ProblemKind classifies one line of a check report.
type ProblemKind string

// The kinds of [CheckProblem]. Corruption, leak and check-error lines each
// count one in the matching field of [CheckResult]; info lines (hints and
// notices that follow another line) count nothing.
const (
	ProblemCorruption ProblemKind = "corruption"
	ProblemLeak       ProblemKind = "leak"
	ProblemCheckError ProblemKind = "check-error"
	ProblemInfo       ProblemKind = "info"
)

// CheckProblem is one line qemu-img check prints on stderr, in QEMU's
// words and without qemu-img's "qemu-img: " prefix, for example
// "ERROR cluster 3 refcount=0 reference=1" or
// "Leaked cluster 4 refcount=1 reference=0".
type CheckProblem struct {
	Kind    ProblemKind
	Message string
}

// MaxCheckProblems caps [CheckResult.Problems]: a badly damaged image can
// have a problem per cluster, and the counters stay exact past the cap.
const MaxCheckProblems = 1 << 16

// CheckResult is the outcome of [Check]. Its JSON encoding has the keys
// and the omitted-when-zero rules of `qemu-img check --output=json` (QEMU
// 7.2), without "filename" and "format", which a caller adds. The zero
// value is a clean result for an image with nothing to count.
type CheckResult struct {
	CheckErrors        int   `json:"check-errors"`
	Corruptions        int   `json:"corruptions,omitempty"`
	Leaks              int   `json:"leaks,omitempty"`
	ImageEndOffset     int64 `json:"image-end-offset,omitempty"`
	TotalClusters      int64 `json:"total-clusters,omitempty"`
	AllocatedClusters  int64 `json:"allocated-clusters,omitempty"`
	FragmentedClusters int64 `json:"fragmented-clusters,omitempty"`
	CompressedClusters int64 `json:"compressed-clusters,omitempty"`

	// Problems has one entry per line qemu-img check prints on stderr,
	// in order, at most MaxCheckProblems of them.
	Problems []CheckProblem `json:"-"`
	// ProblemsOmitted counts the problems past MaxCheckProblems.
	ProblemsOmitted int `json:"-"`
	// Incomplete is set when the check stopped early; [Check] then also
	// returns a *CheckFailedError and qemu-img would print no result.
	Incomplete bool `json:"-"`
}

// Clean reports whether the check ran to the end and found nothing.
func (r *CheckResult) Clean() bool {
	return !r.Incomplete && r.CheckErrors == 0 && r.Corruptions == 0 && r.Leaks == 0
}

// ExitCode returns qemu-img check's exit status for r: 1 when the check
// could not complete or had internal errors, else 2 for corruptions, else
// 3 for leaks only, else 0.
func (r *CheckResult) ExitCode() int {
	switch {
	case r.Incomplete || r.CheckErrors > 0:
		return 1
	case r.Corruptions > 0:
		return 2
	case r.Leaks > 0:
		return 3
	}
	return 0
}

// Summary returns what qemu-img check prints on stdout in its default
// (human) output format for r.
func (r *CheckResult) Summary() string {
	var b strings.Builder
	if r.Corruptions == 0 && r.Leaks == 0 && r.CheckErrors == 0 {
		b.WriteString("No errors were found on the image.\n")
	} else {
		if r.Corruptions != 0 {
			fmt.Fprintf(&b, "\n%d errors were found on the image.\n"+
				"Data may be corrupted, or further writes to the image may corrupt it.\n", r.Corruptions)
		}
		if r.Leaks != 0 {
			fmt.Fprintf(&b, "\n%d leaked clusters were found on the image.\n"+
				"This means waste of disk space, but no harm to data.\n", r.Leaks)
		}
		if r.CheckErrors != 0 {
			fmt.Fprintf(&b, "\n%d internal errors have occurred during the check.\n", r.CheckErrors)
		}
	}
	if r.TotalClusters != 0 && r.AllocatedClusters != 0 {
		a := float64(r.AllocatedClusters)
		fmt.Fprintf(&b, "%d/%d = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
			r.AllocatedClusters, r.TotalClusters, a*100/float64(r.TotalClusters),
			float64(r.FragmentedClusters)*100/a, float64(r.CompressedClusters)*100/a)
	}
	if r.ImageEndOffset != 0 {
		fmt.Fprintf(&b, "Image end offset: %d\n", r.ImageEndOffset)
	}
	return b.String()
}

// CheckFailedError reports a check that could not run to the end: QEMU's
// check returned an error, and qemu-img prints "Check failed: " and Errno,
// no result, and exits with status 1.
type CheckFailedError struct {
	// Errno is QEMU's strerror text: "File too large",
	// "Input/output error", "Cannot allocate memory" or "Invalid argument".
	Errno string
	// Detail says what failed.
	Detail string
	// Err is the underlying error, if any (for example [ErrSnapshotTable]).
	Err error
}

// Error gives Errno, in lowercase, and Detail.
func (e *CheckFailedError) Error() string {
	return "qcow2: check failed: " + strings.ToLower(e.Errno) + ": " + e.Detail
}

// Unwrap returns Err, which may be nil.
func (e *CheckFailedError) Unwrap() error { return e.Err }

// Constants of block/qcow2.h and block/qcow2-bitmap.c not in header.go.
const (
	l2eStdReservedMask uint64 = 0x3f000000000001fe
	l2BitmapAllAlloc   uint64 = 1<<32 - 1
	maxNbClusters             = 1<<31 - 1 // INT_MAX

	maxBitmaps            = 65535
	maxBitmapDirBytes     = 1024 * maxBitmaps
	bmeMaxTableSize       = 0x8000000
	bmeMaxPhysSize        = 0x20000000
	bmeMaxGranularityBits = 31
	bmeMinGranularityBits = 9
	bmeMaxNameSize        = 1023
	bmeReservedFlags      = 0xfffffffc
	bmeFlagInUse          = 1
	bmeTableReservedMask  = 0xff000000000001fe
	bmeTableOffsetMask    = 0x00fffffffffffe00
	bmeTableAllOnes       = 1
	bitmapDirEntryLen     = 24
)

// pageBits sets the size of a page of computed refcounts: 4096 entries,
// 512 bytes for 1-bit refcounts up to 32 KiB for 64-bit ones.
const pageBits = 12

// Cluster types (QCow2ClusterType).
const (
	clusterUnallocated = iota
	clusterZeroPlain
	clusterZeroAlloc
	clusterNormal
	clusterCompressed
)

// CheckFile checks the image at path read-only, as `qemu-img check` does:
// see [Check].
func CheckFile(ctx context.Context, path string) (*CheckResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("qcow2: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("qcow2: %w", err)
	}
	res, err := Check(ctx, f, fi.Size())
	if err != nil && res == nil && !errors.Is(err, ctx.Err()) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return res, err
}

// Check checks the consistency of the qcow2 image in r, whose file is
// size bytes long (a negative size asks r for its length: *os.File,
// *bytes.Reader and *io.SectionReader know it). It never writes and never
// repairs, and reproduces QEMU 7.2's `qemu-img check`: the same counters,
// the same image end offset and cluster statistics, and the same stderr
// lines in [CheckResult.Problems].
//
// It first validates the header with [Inspect] and the persistent bitmaps
// as QEMU does when it opens the image; an image QEMU would not open
// returns (nil, error) with the error wrapping [ErrInvalid]. When the check
// cannot run to the end where QEMU's stops too (an unreadable snapshot
// table, a file of more than 2^31-1 clusters, ...), Check returns the
// partial result with Incomplete set and a *[CheckFailedError]. Read errors
// from r are returned as they are, with a nil result.
//
// Memory stays proportional to the image's metadata: the refcounts it
// computes are kept in pages allocated on first use, and L1 and L2 tables
// are read a piece at a time. ctx is checked between tables; when it is
// done, Check returns (nil, ctx.Err()). Check is safe for concurrent use if
// r is.
func Check(ctx context.Context, r io.ReaderAt, size int64) (*CheckResult, error) {
	if size < 0 {
		if size = readerSize(r); size < 0 {
			return nil, errors.New("qcow2: check: the image's length is unknown; pass it as size")
		}
	}
	sr := io.NewSectionReader(r, 0, size)
	img, err := Inspect(sr)
	if err != nil {
		return nil, err
	}
	c := newChecker(ctx, sr, img, size)
	if err := c.openBitmaps(); err != nil {
		return nil, err
	}
	err = c.run()
	var fe *CheckFailedError
	switch {
	case err == nil:
		return c.res, nil
	case errors.As(err, &fe):
		c.res.Incomplete = true
		return c.res, err
	default:
		return nil, err
	}
}

// checker is BDRVQcow2State plus the in-memory refcount table of one check.
type checker struct {
	ctx      context.Context
	r        io.ReaderAt
	img      *Image
	res      *CheckResult
	fileLen  int64
	cs       int64
	bits     uint32
	rc       refcounts
	refMax   uint64
	dataFile bool
	extL2    bool
	l2Size   int   // entries per L2 table
	l2Esize  int64 // bytes per L2 entry

	// Computed refcounts (QEMU's refcount_table): nb entries, in pages of
	// 1<<pageBits entries packed like a refcount block; nil pages are zero.
	nb    int64
	pages [][]byte

	// Stored refcounts: the refcount table (entries past its end, or past
	// the end of the file, are zero) and the refcount blocks read so far.
	reftable  []uint64
	blockBits uint32
	blocks    map[int64][]byte // by reftable index, for blocks covering the file
	lastIdx   int64
	lastBlock []byte

	signaled bool // qcow2_signal_corruption has printed its message

	// The OFLAG_COPIED problems found while walking the active L1 table,
	// printed after the refcount comparison as QEMU does.
	deferred        []deferredProblem
	deferredOmitted int // corruptions past MaxCheckProblems deferred ones

	snapshots *snapshotTable
	bitmaps   []bitmapEntry
	bmDirOff  uint64
	bmDirSize uint64

	l2buf []byte
	l1buf []byte

	// Replays of L2 tables met before (see l2Effect).
	rec         *l2Effect // recording, while walking an L2 table
	l2cache     map[uint64]*l2Effect
	cachedRefs  int
	cachedLines int
}

type deferredProblem struct {
	kind   ProblemKind
	msg    string
	signal bool // a qcow2_signal_corruption message, printed only once
}

type bitmapEntry struct {
	tableOffset uint64
	tableSize   uint32
	flags       uint32
	granBits    uint8
	name        string
}

func newChecker(ctx context.Context, r io.ReaderAt, img *Image, size int64) *checker {
	c := &checker{
		ctx:      ctx,
		r:        r,
		img:      img,
		res:      &CheckResult{},
		fileLen:  size,
		cs:       img.ClusterSize(),
		bits:     img.ClusterBits,
		rc:       refcounts{img.RefcountOrder},
		dataFile: img.IncompatibleFeatures&IncompatDataFile != 0,
		extL2:    img.ExtendedL2(),
		l2Esize:  img.l2EntrySize(),
		blocks:   map[int64][]byte{},
		lastIdx:  -1,
	}
	c.refMax = 1<<(uint(1)<<img.RefcountOrder) - 1
	if img.RefcountOrder == 6 {
		c.refMax = ^uint64(0)
	}
	c.l2Size = int(c.cs / c.l2Esize)
	c.blockBits = img.ClusterBits + 3 - img.RefcountOrder
	return c
}

func (c *checker) problem(kind ProblemKind, format string, args ...any) {
	switch kind {
	case ProblemCorruption:
		c.res.Corruptions++
	case ProblemLeak:
		c.res.Leaks++
	case ProblemCheckError:
		c.res.CheckErrors++
	}
	c.addLine(kind, format, args...)
}

func (c *checker) addLine(kind ProblemKind, format string, args ...any) {
	keep := len(c.res.Problems) < MaxCheckProblems
	rec := c.rec
	if rec != nil {
		rec.nlines++
		if kind != ProblemCorruption {
			rec.bad = true
		}
	}
	if !keep && (rec == nil || rec.bad || len(rec.lines) >= rec.maxLines) {
		c.res.ProblemsOmitted++
		return
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	if rec != nil && !rec.bad && len(rec.lines) < rec.maxLines {
		rec.lines = append(rec.lines, msg)
	}
	if keep {
		c.res.Problems = append(c.res.Problems, CheckProblem{Kind: kind, Message: msg})
	} else {
		c.res.ProblemsOmitted++
	}
}

func (c *checker) corruption(format string, args ...any) {
	c.problem(ProblemCorruption, format, args...)
}

// signal is qcow2_signal_corruption for a read-only image: the first call
// prints a notice, later ones print nothing.
func (c *checker) signal(msg string) {
	if c.signaled {
		return
	}
	c.signaled = true
	c.addLine(ProblemInfo, "qcow2: Image is corrupt: %s; further non-fatal corruption events will be suppressed", msg)
}

// hexAlt formats v as C's "%#" PRIx64: "0x..." except for zero, "0".
func hexAlt(v uint64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%#x", v)
}

func failed(errno, format string, args ...any) error {
	return &CheckFailedError{Errno: errno, Detail: fmt.Sprintf(format, args...)}
}

// readAt reads len(b) bytes at off as bdrv_pread does: zeros past the end
// of the file, errIO past BDRV_MAX_LENGTH.
func (c *checker) readAt(b []byte, off uint64) error {
	if off > maxFileOffset || uint64(len(b)) > maxFileOffset-off {
		return errIO
	}
	if int64(off) >= c.fileLen {
		clear(b)
		return nil
	}
	if _, err := readFull(c.r, b, int64(off)); err != nil {
		return fmt.Errorf("qcow2: check: reading %d bytes at %d: %w", len(b), off, err)
	}
	return nil
}

func (c *checker) run() error {
	// qcow2_check_read_snapshot_table: QEMU opens the image for a check
	// without reading the snapshot table, and reads it first thing.
	t, err := readSnapshotTable(c.r, c.img, c.fileLen, false)
	if err != nil {
		var se *snapshotError
		if !errors.As(err, &se) {
			return err
		}
		c.problem(ProblemCheckError, "ERROR failed to read the snapshot table: %s", se.qemu)
		if se.hint != "" {
			c.addLine(ProblemInfo, "%s", se.hint)
		}
		errno := "File too large"
		if strings.HasPrefix(se.qemu, "Failed to read") {
			errno = "Input/output error"
		}
		return &CheckFailedError{Errno: errno, Detail: "reading the snapshot table", Err: err}
	}
	c.snapshots = t
	// Version 3 requires 16 bytes of extra data in every entry; the
	// all-zero entries past the end of the file have none.
	if c.img.Version >= 3 {
		for i, sn := range t.entries {
			if len(sn.ExtraData) < snapExtraDiskEnd {
				c.corruption("ERROR snapshot table entry %d is incomplete", i)
			}
		}
		for i := int64(len(t.entries)); i < int64(len(t.entries))+t.zeros; i++ {
			c.corruption("ERROR snapshot table entry %d is incomplete", i)
		}
	}
	return c.checkRefcounts()
}

// checkRefcounts is qcow2_check_refcounts.
func (c *checker) checkRefcounts() error {
	c.nb = (c.fileLen + c.cs - 1) >> c.bits
	if c.nb > maxNbClusters {
		c.res.CheckErrors++
		return failed("File too large", "the file has %d clusters; QEMU checks at most %d", c.nb, maxNbClusters)
	}
	c.pages = make([][]byte, (c.nb+1<<pageBits-1)>>pageBits)
	c.res.TotalClusters = int64((c.img.Size&^511 + uint64(c.cs) - 1) >> c.bits)

	if err := c.loadReftable(); err != nil {
		return err
	}
	if err := c.calculateRefcounts(); err != nil {
		return err
	}
	highest, err := c.compareRefcounts()
	if err != nil {
		return err
	}
	// check_oflag_copied, found while walking the active L1 table.
	for _, d := range c.deferred {
		if d.signal {
			c.signal(d.msg)
			continue
		}
		c.problem(d.kind, "%s", d.msg)
	}
	c.res.Corruptions += c.deferredOmitted
	c.res.ProblemsOmitted += c.deferredOmitted
	c.res.ImageEndOffset = (highest + 1) * c.cs
	return nil
}

// loadReftable reads the part of the refcount table that lies inside the
// file; the rest reads as zeros, which QEMU treats as "no refcount block".
func (c *checker) loadReftable() error {
	n := uint64(c.img.RefcountTableClusters) * uint64(c.cs)
	off := c.img.RefcountTableOffset
	if off >= uint64(c.fileLen) {
		return nil
	}
	n = min(n, uint64(c.fileLen)-off)
	b := make([]byte, n&^7)
	if err := c.readAt(b, off); err != nil {
		if err == errIO {
			return invalid(ErrRefcountTable, "reading the table at %d: input/output error", off)
		}
		return err
	}
	c.reftable = make([]uint64, len(b)/8)
	last := 0
	for i := range c.reftable {
		c.reftable[i] = binary.BigEndian.Uint64(b[i*8:])
		if c.reftable[i] != 0 {
			last = i + 1
		}
	}
	c.reftable = c.reftable[:last]
	return nil
}

// calculateRefcounts is calculate_refcounts.
func (c *checker) calculateRefcounts() error {
	if err := c.inc(0, c.cs); err != nil {
		return err
	}
	if err := c.checkL1(c.img.L1TableOffset, c.img.L1Size, true); err != nil {
		return err
	}
	if c.dataFile && c.img.NbSnapshots != 0 {
		c.corruption("ERROR %d snapshots in image with data file", c.img.NbSnapshots)
	}
	for i := range c.snapshots.entries {
		sn := &c.snapshots.entries[i]
		if sn.L1TableOffset&uint64(c.cs-1) != 0 {
			c.corruption("ERROR snapshot %s (%s) l1_offset=%s: L1 table is not cluster aligned; snapshot table entry corrupted",
				sn.ID, sn.Name, hexAlt(sn.L1TableOffset))
			continue
		}
		if sn.L1Size > maxL1Bytes/8 {
			c.corruption("ERROR snapshot %s (%s) l1_size=%s: L1 table is too large; snapshot table entry corrupted",
				sn.ID, sn.Name, hexAlt(uint64(sn.L1Size)))
			continue
		}
		if err := c.checkL1(sn.L1TableOffset, sn.L1Size, false); err != nil {
			return err
		}
	}
	// The all-zero entries past the end of the file have no L1 table.
	if err := c.inc(int64(c.img.SnapshotsOffset), int64(c.snapshots.size)); err != nil {
		return err
	}
	if err := c.inc(int64(c.img.RefcountTableOffset), int64(c.img.RefcountTableClusters)*c.cs); err != nil {
		return err
	}
	if c.img.CryptoLength != 0 {
		if err := c.inc(int64(c.img.CryptoOffset), int64(c.img.CryptoLength)); err != nil {
			return err
		}
	}
	if err := c.checkBitmaps(); err != nil {
		return err
	}
	return c.checkRefblocks()
}

// inc is qcow2_inc_refcounts_imrt: add a reference to every cluster of
// [offset, offset+size). The arithmetic is QEMU's, in int64.
func (c *checker) inc(offset, size int64) error {
	if size <= 0 {
		return nil
	}
	if offset+size-c.fileLen >= c.cs {
		c.corruption("ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x%x size 0x%x",
			uint64(offset), uint64(size))
		return nil
	}
	mask := uint64(c.cs - 1)
	start := uint64(offset) &^ mask
	last := uint64(offset+size-1) &^ mask
	for co := start; ; co += uint64(c.cs) {
		k := co >> c.bits
		if k >= uint64(c.nb) {
			// QEMU grows its array to k+1 entries. The end-of-file test
			// above allows one cluster past the last; anything further
			// comes from an offset that overflowed int64, where QEMU's
			// allocation fails.
			if k > uint64(c.nb) {
				c.res.CheckErrors++
				return failed("Cannot allocate memory", "a refcount array for cluster %d", k)
			}
			c.grow(int64(k))
		}
		page, i := c.page(int64(k))
		v := c.rc.get(page, i)
		if v == c.refMax {
			if c.rec != nil {
				c.rec.bad = true
			}
			c.corruption("ERROR: overflow cluster offset=0x%x", co)
			c.addLine(ProblemInfo, "Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean copy if the image cannot be opened for writing")
		} else {
			c.rc.set(page, i, v+1)
			if c.rec != nil {
				c.rec.add(uint32(k))
			}
		}
		if co == last {
			break
		}
	}
	return nil
}

// grow extends the computed refcounts to cover cluster k, as QEMU's
// realloc_refcount_array does; pages are allocated on first use.
func (c *checker) grow(k int64) {
	c.nb = k + 1
	if need := (c.nb + 1<<pageBits - 1) >> pageBits; int64(len(c.pages)) < need {
		c.pages = append(c.pages, make([][]byte, need-int64(len(c.pages)))...)
	}
}

// page returns the page of computed refcounts holding cluster k, which
// must be below c.nb, and k's index in it.
func (c *checker) page(k int64) ([]byte, int64) {
	p := c.pages[k>>pageBits]
	if p == nil {
		p = make([]byte, (1<<pageBits)<<c.rc.order/8)
		c.pages[k>>pageBits] = p
	}
	return p, k & (1<<pageBits - 1)
}

// computed returns the computed refcount of cluster k.
func (c *checker) computed(k int64) uint64 {
	if k >= c.nb {
		return 0
	}
	page := c.pages[k>>pageBits]
	if page == nil {
		return 0
	}
	return c.rc.get(page, k&(1<<pageBits-1))
}

// storedBlock returns the refcount block for reftable index idx, nil for
// one that reads as zeros. A refcount block QEMU cannot read returns
// errIO; sig is then the qcow2_signal_corruption message, if QEMU prints
// one. This is qcow2_get_refcount up to reading the entry.
func (c *checker) storedBlock(idx int64) (block []byte, sig string, err error) {
	if idx == c.lastIdx {
		return c.lastBlock, "", nil
	}
	if idx >= int64(len(c.reftable)) {
		return nil, "", nil
	}
	off := c.reftable[idx] & reftOffsetMask
	if off == 0 {
		return nil, "", nil
	}
	if off&uint64(c.cs-1) != 0 {
		return nil, fmt.Sprintf("Refblock offset %s unaligned (reftable index: %s)", hexAlt(off), hexAlt(uint64(idx))), errIO
	}
	if off > maxFileOffset || uint64(c.cs) > maxFileOffset-off {
		return nil, "", errIO
	}
	if int64(off) >= c.fileLen {
		return nil, "", nil
	}
	// Blocks covering the file are kept: the comparison needs them all.
	covering := idx <= (c.nb-1)>>c.blockBits
	if b, ok := c.blocks[idx]; ok && covering {
		c.lastIdx, c.lastBlock = idx, b
		return b, "", nil
	}
	b := make([]byte, c.cs)
	if err := c.readAt(b, off); err != nil {
		return nil, "", err
	}
	if covering {
		c.blocks[idx] = b
	}
	c.lastIdx, c.lastBlock = idx, b
	return b, "", nil
}

// stored is qcow2_get_refcount.
func (c *checker) stored(k uint64) (uint64, string, error) {
	idx := k >> c.blockBits
	if idx >= uint64(len(c.reftable)) {
		return 0, "", nil
	}
	b, sig, err := c.storedBlock(int64(idx))
	if err != nil || b == nil {
		return 0, sig, err
	}
	return c.rc.get(b, int64(k&(1<<c.blockBits-1))), "", nil
}

// clusterType is qcow2_get_cluster_type.
func (c *checker) clusterType(e uint64) int {
	switch {
	case e&l2eCompressed != 0:
		return clusterCompressed
	case e&oflagZero != 0 && !c.extL2:
		if e&l2eOffsetMask != 0 {
			return clusterZeroAlloc
		}
		return clusterZeroPlain
	case e&l2eOffsetMask == 0:
		if c.dataFile && e&oflagCopied != 0 {
			return clusterNormal
		}
		return clusterUnallocated
	}
	return clusterNormal
}

// checkL1 is check_refcounts_l1; for the active table it also does the
// work of check_oflag_copied, whose problems it defers.
func (c *checker) checkL1(l1Off uint64, l1Size uint32, active bool) error {
	if l1Size == 0 {
		return nil
	}
	n := uint64(l1Size) * 8
	if err := c.inc(int64(l1Off), int64(n)); err != nil {
		return err
	}
	if l1Off > maxFileOffset || n > maxFileOffset-l1Off {
		c.problem(ProblemCheckError, "ERROR: I/O error in check_refcounts_l1")
		return failed("Input/output error", "reading the L1 table at %d", l1Off)
	}
	if c.l1buf == nil {
		c.l1buf = make([]byte, 64<<10)
	}
	for done := uint64(0); done < n; done += uint64(len(c.l1buf)) {
		if l1Off+done >= uint64(c.fileLen) {
			break // zeros to the end
		}
		if err := c.ctx.Err(); err != nil {
			return err
		}
		chunk := c.l1buf[:min(uint64(len(c.l1buf)), n-done)]
		if err := c.readAt(chunk, l1Off+done); err != nil {
			return err
		}
		for j := 0; j < len(chunk); j += 8 {
			e := binary.BigEndian.Uint64(chunk[j:])
			if e == 0 {
				continue
			}
			if err := c.checkL1Entry(e, int((done+uint64(j))/8), active); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *checker) checkL1Entry(e uint64, index int, active bool) error {
	if e&l1eReservedMask != 0 {
		c.corruption("ERROR found L1 entry with reserved bits set: %x", e)
	}
	l2Off := e & l1eOffsetMask
	if err := c.inc(int64(l2Off), c.cs); err != nil {
		return err
	}
	if l2Off&uint64(c.cs-1) != 0 {
		c.corruption("ERROR l2_offset=%x: Table is not cluster aligned; L1 entry corrupted", l2Off)
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if !active {
		if eff := c.l2cache[l2Off]; eff != nil && c.replay(eff) {
			return nil
		}
	}
	l2, err := c.readL2(l2Off)
	if err != nil {
		return err
	}
	// The active table's effect is kept only for snapshots to replay.
	record := !active || len(c.snapshots.entries) > 0
	if record {
		c.rec = &l2Effect{maxLines: MaxCheckProblems - len(c.res.Problems), monotonic: true}
	}
	err = c.checkL2(l2, active)
	rec := c.rec
	c.rec = nil
	if err != nil {
		return err
	}
	if record {
		c.remember(l2Off, rec)
	}
	if active && l2Off != 0 {
		return c.checkCopied(e, index, l2)
	}
	return nil
}

// l2Effect is what check_refcounts_l2 did for one L2 table, apart from
// the cluster statistics of the active table: the problems it reported
// (all corruptions) and the references it added. Snapshots share most of
// their L2 tables with each other and with the active table; replaying
// the effect saves reading and walking the table again, and bounds the
// work on an image whose L1 tables point many times at the same table.
type l2Effect struct {
	lines     []string // the first maxLines problems
	maxLines  int      // the room left in Problems when recorded
	nlines    int      // problems in all
	refs      []clusterRefs
	monotonic bool // refs are in increasing cluster order
	bad       bool // not replayable: a refcount overflowed, or too big
}

// clusterRefs is n references to cluster k.
type clusterRefs struct{ k, n uint32 }

// maxCachedRefs bounds the references kept for replays (8 bytes each).
const maxCachedRefs = 1 << 21

func (e *l2Effect) add(k uint32) {
	if e.bad {
		return
	}
	if n := len(e.refs); n > 0 {
		if last := &e.refs[n-1]; last.k == k {
			last.n++
			return
		} else if last.k > k {
			e.monotonic = false
		}
	}
	e.refs = append(e.refs, clusterRefs{k, 1})
}

// remember keeps rec for replays of the L2 table at off, if it can be
// replayed exactly and the cache has room.
func (c *checker) remember(off uint64, rec *l2Effect) {
	if rec.bad || c.cachedRefs+len(rec.refs) > maxCachedRefs || c.cachedLines+len(rec.lines) > 2*MaxCheckProblems {
		return
	}
	if !rec.monotonic {
		slices.SortFunc(rec.refs, func(a, b clusterRefs) int { return cmp.Compare(a.k, b.k) })
		out := rec.refs[:0]
		for _, r := range rec.refs {
			if n := len(out); n > 0 && out[n-1].k == r.k {
				out[n-1].n += r.n
				continue
			}
			out = append(out, r)
		}
		rec.refs = out
	}
	if c.l2cache == nil {
		c.l2cache = map[uint64]*l2Effect{}
	}
	c.l2cache[off] = rec
	c.cachedRefs += len(rec.refs)
	c.cachedLines += len(rec.lines)
}

// replay applies eff as check_refcounts_l2 would, unless a refcount would
// overflow on the way, which only walking the table reports in order.
func (c *checker) replay(eff *l2Effect) bool {
	for _, r := range eff.refs {
		if uint64(r.n) > c.refMax-c.computed(int64(r.k)) {
			return false
		}
	}
	for i := 0; i < eff.nlines; i++ {
		c.res.Corruptions++
		if i < len(eff.lines) && len(c.res.Problems) < MaxCheckProblems {
			c.res.Problems = append(c.res.Problems, CheckProblem{Kind: ProblemCorruption, Message: eff.lines[i]})
		} else {
			c.res.ProblemsOmitted++
		}
	}
	for _, r := range eff.refs {
		k := int64(r.k)
		if k >= c.nb {
			c.grow(k)
		}
		page, i := c.page(k)
		c.rc.set(page, i, c.rc.get(page, i)+uint64(r.n))
	}
	return true
}

// readL2 reads the L2 table at off with one read. Entries past the end of
// the file read as zeros, which are unallocated and change nothing, so
// the returned slice stops at the last entry the file holds.
func (c *checker) readL2(off uint64) ([]byte, error) {
	if int64(off) >= c.fileLen {
		return nil, nil
	}
	n := min(c.cs, c.fileLen-int64(off))
	n = (n + c.l2Esize - 1) / c.l2Esize * c.l2Esize
	if c.l2buf == nil {
		c.l2buf = make([]byte, c.cs)
	}
	b := c.l2buf[:n]
	if err := c.readAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

// checkL2 is check_refcounts_l2 for the entries in l2.
func (c *checker) checkL2(l2 []byte, active bool) error {
	var nextContiguous uint64
	be := binary.BigEndian
	mask := uint64(c.cs - 1)
	for i := 0; i < len(l2)/int(c.l2Esize); i++ {
		p := i * int(c.l2Esize)
		e := be.Uint64(l2[p:])
		var bm uint64
		if c.extL2 {
			bm = be.Uint64(l2[p+8:])
		}
		if e == 0 && bm == 0 {
			continue
		}
		typ := c.clusterType(e)
		if typ != clusterCompressed && e&l2eStdReservedMask != 0 {
			c.corruption("ERROR found l2 entry with reserved bits set: %x", e)
		}
		switch typ {
		case clusterCompressed:
			shift := 62 - (c.bits - 8)
			offMask := uint64(1)<<shift - 1
			if e&oflagCopied != 0 {
				c.corruption("ERROR: coffset=0x%x: copied flag must never be set for compressed clusters", e&offMask)
				e &^= oflagCopied
			}
			if c.dataFile {
				c.corruption("ERROR compressed cluster %d with data file, entry=0x%x", i, e)
				continue
			}
			if bm != 0 {
				c.corruption("ERROR compressed cluster %d with non-zero subcluster allocation bitmap, entry=0x%x", i, e)
				continue
			}
			coff := e & offMask
			sectors := (e>>shift)&(uint64(1)<<(c.bits-8)-1) + 1
			csize := int64(sectors*512) - int64(coff&511)
			if err := c.inc(int64(coff), csize); err != nil {
				return err
			}
			if active {
				c.res.AllocatedClusters++
				c.res.CompressedClusters++
				c.res.FragmentedClusters++
			}
		case clusterZeroAlloc, clusterNormal:
			off := e & l2eOffsetMask
			if (bm>>32)&bm != 0 {
				c.corruption("ERROR offset=%x: Allocated cluster has corrupted subcluster allocation bitmap", off)
			}
			if off&mask != 0 {
				data := e&oflagZero == 0
				if c.extL2 {
					data = bm&l2BitmapAllAlloc != 0
				}
				if data {
					c.corruption("ERROR offset=%x: Data cluster is not properly aligned; L2 entry corrupted.", off)
				} else {
					c.corruption("ERROR offset=%x: Preallocated cluster is not properly aligned; L2 entry corrupted.", off)
				}
			}
			if active {
				c.res.AllocatedClusters++
				if nextContiguous != 0 && off != nextContiguous {
					c.res.FragmentedClusters++
				}
				nextContiguous = off + uint64(c.cs)
			}
			if !c.dataFile {
				if err := c.inc(int64(off), c.cs); err != nil {
					return err
				}
			}
		case clusterUnallocated:
			if bm&l2BitmapAllAlloc != 0 {
				c.corruption("ERROR: Unallocated cluster has non-zero subcluster allocation map")
			}
		}
	}
	return nil
}

// checkCopied is check_oflag_copied for one active L1 entry and its L2
// table; the problems are deferred.
func (c *checker) checkCopied(l1e uint64, index int, l2 []byte) error {
	l2Off := l1e & l1eOffsetMask
	rc, sig, err := c.stored(l2Off >> c.bits)
	if sig != "" {
		c.deferred = append(c.deferred, deferredProblem{signal: true, msg: sig})
	}
	if err != nil {
		if err == errIO {
			return nil // QEMU skips the whole L2 table silently
		}
		return err
	}
	if (rc == 1) != (l1e&oflagCopied != 0) {
		c.deferCopied("ERROR OFLAG_COPIED L2 cluster: l1_index=%d l1_entry=%x refcount=%d", index, l1e, rc)
	}
	be := binary.BigEndian
	for i := 0; i < len(l2)/int(c.l2Esize); i++ {
		e := be.Uint64(l2[i*int(c.l2Esize):])
		if e == 0 {
			continue
		}
		typ := c.clusterType(e)
		if typ != clusterNormal && typ != clusterZeroAlloc {
			continue
		}
		rc := uint64(1)
		if !c.dataFile {
			var sig string
			rc, sig, err = c.stored((e & l2eOffsetMask) >> c.bits)
			if sig != "" {
				c.deferred = append(c.deferred, deferredProblem{signal: true, msg: sig})
			}
			if err == errIO {
				continue
			}
			if err != nil {
				return err
			}
		}
		if (rc == 1) != (e&oflagCopied != 0) {
			c.deferCopied("ERROR OFLAG_COPIED data cluster: l2_entry=%x refcount=%d", e, rc)
		}
	}
	return nil
}

func (c *checker) deferCopied(format string, args ...any) {
	if len(c.deferred) >= MaxCheckProblems {
		c.deferredOmitted++
		return
	}
	c.deferred = append(c.deferred, deferredProblem{kind: ProblemCorruption, msg: fmt.Sprintf(format, args...)})
}

// checkRefblocks is check_refblocks.
func (c *checker) checkRefblocks() error {
	for i, e := range c.reftable {
		off := e & reftOffsetMask
		cl := off >> c.bits
		if e&reftReservedMask != 0 {
			c.corruption("ERROR refcount table entry %d has reserved bits set", i)
			continue
		}
		if off&uint64(c.cs-1) != 0 {
			c.corruption("ERROR refcount block %d is not cluster aligned; refcount table entry corrupted", i)
			continue
		}
		if cl >= uint64(c.nb) {
			c.corruption("ERROR refcount block %d is outside image", i)
			continue
		}
		if off != 0 {
			if err := c.inc(int64(off), c.cs); err != nil {
				return err
			}
			if v := c.computed(int64(cl)); v != 1 {
				c.corruption("ERROR refcount block %d refcount=%d", i, v)
			}
		}
	}
	return nil
}

// compareRefcounts is compare_refcounts; it returns highest_cluster. It
// compares a chunk of entries at a time, byte for byte, and looks at
// single entries only where the chunk differs.
func (c *checker) compareRefcounts() (int64, error) {
	var highest int64
	chunkBits := min(uint32(pageBits), c.blockBits)
	chunk := int64(1) << chunkBits
	for start, n := int64(0), 0; start < c.nb; start, n = start+chunk, n+1 {
		if n&1023 == 1023 {
			if err := c.ctx.Err(); err != nil {
				return 0, err
			}
		}
		end := min(start+chunk, c.nb)
		block, sig, err := c.storedBlock(start >> c.blockBits)
		if err != nil {
			if err != errIO {
				return 0, err
			}
			if sig != "" {
				c.signal(sig)
			}
			for k := start; k < end; k++ {
				c.problem(ProblemCheckError, "Can't get refcount for cluster %d: Input/output error", k)
			}
			continue
		}
		page := c.pages[start>>pageBits]
		if block == nil && page == nil {
			continue
		}
		// Whole-chunk comparison when the chunk is full.
		if end-start == chunk {
			var s, p []byte
			width := chunk << c.rc.order / 8
			if block != nil {
				o := (start & (1<<c.blockBits - 1)) << c.rc.order / 8
				s = block[o : o+width]
			}
			if page != nil {
				o := (start & (1<<pageBits - 1)) << c.rc.order / 8
				p = page[o : o+width]
			}
			if equalOrZero(s, p) {
				if last := c.lastNonzero(s, p); last >= 0 {
					highest = start + last
				}
				continue
			}
		}
		for k := start; k < end; k++ {
			var r1 uint64
			if block != nil {
				r1 = c.rc.get(block, k&(1<<c.blockBits-1))
			}
			r2 := c.computed(k)
			if r1 > 0 || r2 > 0 {
				highest = k
			}
			if r1 < r2 {
				c.corruption("ERROR cluster %d refcount=%d reference=%d", k, r1, r2)
			} else if r1 > r2 {
				c.problem(ProblemLeak, "Leaked cluster %d refcount=%d reference=%d", k, r1, r2)
			}
		}
	}
	return highest, nil
}

// equalOrZero compares two packed chunks where nil stands for zeros.
func equalOrZero(a, b []byte) bool {
	switch {
	case a != nil && b != nil:
		return bytes.Equal(a, b)
	case a != nil:
		return isZero(a)
	case b != nil:
		return isZero(b)
	}
	return true
}

// lastNonzero returns the index of the last nonzero entry of a packed
// chunk (either of two equal ones; nil is zeros), or -1.
func (c *checker) lastNonzero(a, b []byte) int64 {
	if a == nil {
		a = b
	}
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] == 0 {
			continue
		}
		perByte := int64(1)
		if c.rc.order < 3 {
			perByte = 8 >> c.rc.order
		}
		if c.rc.order > 3 {
			return int64(i) >> (c.rc.order - 3)
		}
		for j := perByte - 1; j >= 0; j-- {
			if c.rc.get(a, int64(i)*perByte+j) != 0 {
				return int64(i)*perByte + j
			}
		}
	}
	return -1
}

// openBitmaps validates the bitmaps extension and the bitmap directory as
// QEMU does when it opens the image (qcow2_read_extensions and
// qcow2_load_dirty_bitmaps). An image QEMU would not open returns an error
// wrapping [ErrBitmaps].
func (c *checker) openBitmaps() error {
	nb, dirSize, dirOff, ok, err := c.img.bitmapsExt()
	if err != nil || !ok {
		return err
	}
	list, err := c.bitmapListLoad(nb, dirOff, dirSize)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, bm := range list {
		if seen[bm.name] {
			if bm.flags&bmeFlagInUse != 0 {
				continue
			}
			return invalid(ErrBitmaps, "bitmap %q appears twice", bm.name)
		}
		seen[bm.name] = true
		if bm.flags&bmeFlagInUse != 0 {
			continue // QEMU does not load the data of a bitmap in use
		}
		if err := c.bitmapTableLoad(bm, nil); err != nil {
			if errors.Is(err, ErrInvalid) || err == errIO {
				return invalid(ErrBitmaps, "could not read the bitmap table of bitmap %q", bm.name)
			}
			return err
		}
		// load_bitmap_data: the table must have exactly the clusters the
		// bitmap's serialization needs.
		var ser uint64
		if size := c.img.Size &^ 511; size > 0 {
			ser = (((size-1)>>bm.granBits)>>6 + 1) * 8
		}
		if need := (ser + uint64(c.cs) - 1) >> c.bits; need != uint64(bm.tableSize) {
			return invalid(ErrBitmaps, "bitmap %q has a table of %d entries; its size needs %d", bm.name, bm.tableSize, need)
		}
	}
	c.bitmaps, c.bmDirOff, c.bmDirSize = list, dirOff, dirSize
	return nil
}

// bitmapListLoad is bitmap_list_load.
func (c *checker) bitmapListLoad(nb uint32, off, size uint64) ([]bitmapEntry, error) {
	if size == 0 {
		return nil, invalid(ErrBitmaps, "bitmap directory size is zero")
	}
	if off > maxFileOffset || size > maxFileOffset-off {
		return nil, invalid(ErrBitmaps, "failed to read the bitmap directory: input/output error")
	}
	// Only the part inside the file is read; the rest is zeros, and the
	// walk stops at the first zero entry anyway.
	var dir []byte
	if int64(off) < c.fileLen {
		dir = make([]byte, min(size, uint64(c.fileLen)-off))
		if err := c.readAt(dir, off); err != nil {
			return nil, err
		}
	}
	byteAt := func(i uint64) []byte {
		var b [bitmapDirEntryLen]byte
		if i < uint64(len(dir)) {
			copy(b[:], dir[i:])
		}
		return b[:]
	}
	var list []bitmapEntry
	var p uint64
	count := uint32(0)
	for p < size {
		if p+bitmapDirEntryLen > size {
			return nil, invalid(ErrBitmaps, "broken bitmap directory")
		}
		count++
		if count > nb {
			return nil, invalid(ErrBitmaps, "more bitmaps found than specified in the header extension")
		}
		h := byteAt(p)
		be := binary.BigEndian
		e := bitmapEntry{
			tableOffset: be.Uint64(h),
			tableSize:   be.Uint32(h[8:]),
			flags:       be.Uint32(h[12:]),
			granBits:    h[17],
		}
		typ := h[16]
		nameSize := uint64(be.Uint16(h[18:]))
		extraSize := uint64(be.Uint32(h[20:]))
		next := p + (bitmapDirEntryLen+nameSize+extraSize+7)&^7
		if next > size {
			return nil, invalid(ErrBitmaps, "broken bitmap directory")
		}
		if extraSize != 0 {
			return nil, invalid(ErrBitmaps, "bitmap extra data is not supported")
		}
		name := make([]byte, nameSize)
		for i := range name {
			if q := p + bitmapDirEntryLen + uint64(i); q < uint64(len(dir)) {
				name[i] = dir[q]
			}
		}
		e.name = cString(name)
		if !c.checkDirEntry(e, typ, nameSize) {
			return nil, invalid(ErrBitmaps, "bitmap %q doesn't satisfy the constraints", e.name)
		}
		list = append(list, e)
		p = next
	}
	if count != nb {
		return nil, invalid(ErrBitmaps, "less bitmaps found than specified in the header extension")
	}
	if p != size {
		return nil, invalid(ErrBitmaps, "broken bitmap directory")
	}
	return list, nil
}

// checkDirEntry is check_dir_entry.
func (c *checker) checkDirEntry(e bitmapEntry, typ uint8, nameSize uint64) bool {
	if e.tableSize == 0 || e.tableOffset == 0 || e.tableOffset&uint64(c.cs-1) != 0 ||
		e.tableSize > bmeMaxTableSize || e.granBits > bmeMaxGranularityBits ||
		e.granBits < bmeMinGranularityBits || e.flags&bmeReservedFlags != 0 ||
		nameSize > bmeMaxNameSize || typ != 1 {
		return false
	}
	phys := uint64(e.tableSize) * uint64(c.cs)
	if phys > bmeMaxPhysSize {
		return false
	}
	return e.flags&bmeFlagInUse != 0 || c.img.Size&^511 <= (phys*8)<<e.granBits
}

// bitmapTableLoad is bitmap_table_load followed, when fn is not nil, by a
// call of fn for each nonzero entry. It reads the table a piece at a time.
func (c *checker) bitmapTableLoad(bm bitmapEntry, fn func(offset uint64) error) error {
	n := uint64(bm.tableSize) * 8
	if bm.tableOffset > maxFileOffset || n > maxFileOffset-bm.tableOffset {
		return errIO
	}
	// Entries past the end of the file are zero, which is valid; a table
	// wholly inside the file is checked as it is read.
	if c.l1buf == nil {
		c.l1buf = make([]byte, 64<<10)
	}
	for done := uint64(0); done < n; done += uint64(len(c.l1buf)) {
		if bm.tableOffset+done >= uint64(c.fileLen) {
			break
		}
		chunk := c.l1buf[:min(uint64(len(c.l1buf)), n-done)]
		if err := c.readAt(chunk, bm.tableOffset+done); err != nil {
			return err
		}
		for j := 0; j < len(chunk); j += 8 {
			e := binary.BigEndian.Uint64(chunk[j:])
			off := e & bmeTableOffsetMask
			if e&bmeTableReservedMask != 0 || (off != 0 && (e&bmeTableAllOnes != 0 || off&uint64(c.cs-1) != 0)) {
				return invalid(ErrBitmaps, "bitmap %q: bad bitmap table entry %#x", bm.name, e)
			}
		}
		if fn == nil {
			continue
		}
		for j := 0; j < len(chunk); j += 8 {
			if off := binary.BigEndian.Uint64(chunk[j:]) & bmeTableOffsetMask; off != 0 {
				if err := fn(off); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkBitmaps is qcow2_check_bitmaps_refcounts.
func (c *checker) checkBitmaps() error {
	if len(c.bitmaps) == 0 {
		return nil
	}
	if err := c.inc(int64(c.bmDirOff), int64(c.bmDirSize)); err != nil {
		return err
	}
	for _, bm := range c.bitmaps {
		if err := c.inc(int64(bm.tableOffset), int64(bm.tableSize)*8); err != nil {
			return err
		}
		// QEMU checks every entry before counting any: a bad entry
		// anywhere fails the check, and no data cluster of this bitmap
		// is counted.
		if err := c.bitmapTableLoad(bm, nil); err != nil {
			if err == errIO || errors.Is(err, ErrBitmaps) {
				c.res.Corruptions++
				errno := "Invalid argument"
				if err == errIO {
					errno = "Input/output error"
				}
				return &CheckFailedError{Errno: errno, Detail: fmt.Sprintf("loading the table of bitmap %q", bm.name), Err: err}
			}
			return err
		}
		err := c.bitmapTableLoad(bm, func(off uint64) error {
			return c.inc(int64(off), c.cs)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
