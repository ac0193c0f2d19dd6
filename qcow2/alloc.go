package qcow2

import (
	"encoding/binary"
	"errors"
	"sort"
)

// This file reproduces, step by step, what QEMU 7.2's cluster allocator
// (block/qcow2-refcount.c) does while qemu-img creates an image, so that the
// refcount blocks, the refcount table and the L1 table land at exactly the
// offsets QEMU picks. A closed-form layout agrees with QEMU only while one
// refcount block suffices; beyond that QEMU allocates refcount blocks lazily,
// restarts allocations (-EAGAIN) and, when the refcount table fills up,
// moves it (qcow2_refcount_area), leaving the old table's bytes behind. The
// functions below keep QEMU's names so they can be read side by side.

var errAgain = errors.New("qcow2: allocation restarted") // QEMU's -EAGAIN

// sparseDisk records the bytes written to the image, cluster by cluster.
// Clusters never written, or written with zeros only, are absent.
type sparseDisk struct {
	cs       int64
	clusters map[int64][]byte
	length   int64
}

func (d *sparseDisk) write(off int64, b []byte) {
	for len(b) > 0 {
		ci, in := off/d.cs, off%d.cs
		n := min(int64(len(b)), d.cs-in)
		c, ok := d.clusters[ci]
		if !ok && isZero(b[:n]) {
			// A zero write over nothing changes nothing but the length.
		} else {
			if !ok {
				c = make([]byte, d.cs)
				d.clusters[ci] = c
			}
			copy(c[in:], b[:n])
		}
		off += n
		b = b[n:]
		d.length = max(d.length, off)
	}
}

// writeZeros extends the disk as a write of n zero bytes at off would,
// zeroing clusters that held data.
func (d *sparseDisk) writeZeros(off, n int64) {
	end := off + n
	for ci := off / d.cs; ci*d.cs < end; ci++ {
		if c, ok := d.clusters[ci]; ok {
			lo := max(off, ci*d.cs) - ci*d.cs
			hi := min(end, (ci+1)*d.cs) - ci*d.cs
			clear(c[lo:hi])
		}
	}
	d.length = max(d.length, end)
}

func (d *sparseDisk) read(off int64) []byte {
	c := make([]byte, d.cs)
	if src, ok := d.clusters[off/d.cs]; ok {
		copy(c, src)
	}
	return c
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// refcounts reads and writes entries of 1<<order bits in a refcount block:
// sub-byte widths are packed from the least significant bit, wider ones are
// big-endian.
type refcounts struct{ order uint32 }

func (r refcounts) get(b []byte, i int64) uint64 {
	switch r.order {
	case 0, 1, 2:
		bits := int64(1) << r.order
		shift := (i * bits) % 8
		return uint64(b[i*bits/8]>>shift) & (1<<bits - 1)
	case 3:
		return uint64(b[i])
	case 4:
		return uint64(binary.BigEndian.Uint16(b[2*i:]))
	case 5:
		return uint64(binary.BigEndian.Uint32(b[4*i:]))
	default:
		return binary.BigEndian.Uint64(b[8*i:])
	}
}

func (r refcounts) set(b []byte, i int64, v uint64) {
	switch r.order {
	case 0, 1, 2:
		bits := int64(1) << r.order
		shift := (i * bits) % 8
		mask := byte(1<<bits-1) << shift
		b[i*bits/8] = b[i*bits/8]&^mask | byte(v)<<shift&mask
	case 3:
		b[i] = byte(v)
	case 4:
		binary.BigEndian.PutUint16(b[2*i:], uint16(v))
	case 5:
		binary.BigEndian.PutUint32(b[4*i:], uint32(v))
	default:
		binary.BigEndian.PutUint64(b[8*i:], v)
	}
}

// allocator is the part of BDRVQcow2State the allocator touches.
type allocator struct {
	disk        *sparseDisk
	rc          refcounts
	clusterBits uint32
	cs          int64
	blockBits   uint32 // refcount_block_bits: log2 of entries per block
	blockSize   int64  // refcount_block_size: entries per block
	table       []uint64
	tableOffset int64
	maxTableIdx int64
	freeIndex   int64
	cache       map[int64][]byte // refcount blocks by offset; never evicted

	// The last block looked up: allocation scans touch one block for
	// thousands of clusters in a row.
	lastOff   int64
	lastBlock []byte
}

func newAllocator(clusterBits, order uint32) *allocator {
	cs := int64(1) << clusterBits
	a := &allocator{
		disk:        &sparseDisk{cs: cs, clusters: map[int64][]byte{}},
		rc:          refcounts{order},
		clusterBits: clusterBits,
		cs:          cs,
		blockBits:   clusterBits + 3 - order,
		cache:       map[int64][]byte{},
	}
	a.blockSize = int64(1) << a.blockBits
	return a
}

func (a *allocator) loadBlock(off int64) []byte {
	if off == a.lastOff && a.lastBlock != nil {
		return a.lastBlock
	}
	b, ok := a.cache[off]
	if !ok {
		b = a.disk.read(off)
		a.cache[off] = b
	}
	a.lastOff, a.lastBlock = off, b
	return b
}

func (a *allocator) emptyBlock(off int64) []byte {
	b := make([]byte, a.cs)
	a.cache[off] = b
	a.lastOff, a.lastBlock = off, b
	return b
}

// flush writes every cached refcount block to the disk (qcow2_cache_flush).
func (a *allocator) flush() {
	offs := make([]int64, 0, len(a.cache))
	for off := range a.cache {
		offs = append(offs, off)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	for _, off := range offs {
		a.disk.write(off, a.cache[off])
	}
}

func (a *allocator) getRefcount(ci int64) uint64 {
	ti := ci >> a.blockBits
	if ti >= int64(len(a.table)) {
		return 0
	}
	off := int64(a.table[ti] & reftOffsetMask)
	if off == 0 {
		return 0
	}
	return a.rc.get(a.loadBlock(off), ci&(a.blockSize-1))
}

// allocClustersNoref finds size bytes of free clusters from freeIndex on,
// without taking a reference (alloc_clusters_noref).
func (a *allocator) allocClustersNoref(size int64) int64 {
	n := (size + a.cs - 1) >> a.clusterBits
retry:
	for i := int64(0); i < n; i++ {
		next := a.freeIndex
		a.freeIndex++
		if a.getRefcount(next) != 0 {
			goto retry
		}
	}
	return (a.freeIndex - n) << a.clusterBits
}

// allocClusters is qcow2_alloc_clusters.
func (a *allocator) allocClusters(size int64) (int64, error) {
	for {
		off := a.allocClustersNoref(size)
		err := a.updateRefcount(off, size, 1, false)
		if err == errAgain {
			continue
		}
		return off, err
	}
}

// updateRefcount is update_refcount: add or remove addend references to
// every cluster in [offset, offset+length), allocating refcount blocks as
// needed and undoing its partial work when it fails.
func (a *allocator) updateRefcount(offset, length int64, addend uint64, decrease bool) error {
	if length <= 0 {
		return nil
	}
	start := offset &^ (a.cs - 1)
	last := (offset + length - 1) &^ (a.cs - 1)
	oldTableIdx := int64(-1)
	var block []byte
	co := start
	var err error
	for ; co <= last; co += a.cs {
		ci := co >> a.clusterBits
		ti := ci >> a.blockBits
		if ti != oldTableIdx {
			block, err = a.allocRefcountBlock(ci)
			if err == errAgain && a.freeIndex > start>>a.clusterBits {
				a.freeIndex = start >> a.clusterBits
			}
			if err != nil {
				break
			}
		}
		oldTableIdx = ti
		bi := ci & (a.blockSize - 1)
		rc := a.rc.get(block, bi)
		if decrease {
			rc -= addend
		} else {
			rc += addend
		}
		if rc == 0 && ci < a.freeIndex {
			a.freeIndex = ci
		}
		a.rc.set(block, bi, rc)
	}
	if err != nil {
		_ = a.updateRefcount(offset, co-offset, addend, !decrease)
	}
	return err
}

func (a *allocator) sameBlock(off1, off2 int64) bool {
	shift := a.clusterBits + a.blockBits
	return off1>>shift == off2>>shift
}

// allocRefcountBlock is alloc_refcount_block: it returns the refcount block
// covering cluster ci, or creates one and returns errAgain so the caller
// restarts its search for free clusters.
func (a *allocator) allocRefcountBlock(ci int64) ([]byte, error) {
	ti := ci >> a.blockBits
	if ti < int64(len(a.table)) {
		if off := int64(a.table[ti] & reftOffsetMask); off != 0 {
			return a.loadBlock(off), nil
		}
	}
	newBlock := a.allocClustersNoref(a.cs)
	if a.sameBlock(newBlock, ci<<a.clusterBits) {
		b := a.emptyBlock(newBlock)
		a.rc.set(b, (newBlock>>a.clusterBits)&(a.blockSize-1), 1)
	} else {
		if err := a.updateRefcount(newBlock, a.cs, 1, false); err != nil {
			return nil, err
		}
		a.emptyBlock(newBlock)
	}
	a.disk.write(newBlock, a.cache[newBlock])

	if ti < int64(len(a.table)) {
		var e [8]byte
		binary.BigEndian.PutUint64(e[:], uint64(newBlock))
		a.disk.write(a.tableOffset+ti*8, e[:])
		a.table[ti] = uint64(newBlock)
		a.maxTableIdx = max(a.maxTableIdx, ti)
		return nil, errAgain
	}

	// The refcount table is full: build a new, larger one together with the
	// refcount blocks that describe it, in an area at the end of the image.
	used := max(ci+1, newBlock>>a.clusterBits+1)
	blocksUsed := (used + a.blockSize - 1) / a.blockSize
	meta := blocksUsed * a.blockSize * a.cs
	if err := a.refcountArea(meta, 0, false, ti, newBlock); err != nil {
		return nil, err
	}
	return nil, errAgain
}

// metadataSize is qcow2_refcount_metadata_size; it returns the number of
// refcount blocks needed to describe clusters clusters and themselves.
func (a *allocator) metadataSize(clusters int64, generous bool) int64 {
	perTableCluster := a.cs / 8
	var table, blocks, n, last int64
	for {
		last = n
		blocks = (clusters + table + blocks + a.blockSize - 1) / a.blockSize
		table = (blocks + perTableCluster - 1) / perTableCluster
		n = clusters + blocks + table
		if n == last && generous {
			clusters += (table + 1) / 2
			n = 0
			generous = false
		}
		if n == last {
			return blocks
		}
	}
}

// refcountArea is qcow2_refcount_area: it writes a new refcount table and
// the refcount blocks needed from start on, switches to the new table and
// frees the old one.
func (a *allocator) refcountArea(start, additional int64, exact bool, newIdx, newOff int64) error {
	total := a.metadataSize(start/a.cs+additional, !exact)
	if total > maxRefcountTableBytes {
		return ErrTooLarge
	}
	areaIdx := (start / a.cs) / a.blockSize
	size := total
	if !exact {
		size += (total + 1) / 2
	}
	perCluster := a.cs / 8
	size = (size + perCluster - 1) / perCluster * perCluster
	tableClusters := size * 8 / a.cs
	if size*8 > maxRefcountTableBytes {
		return ErrTooLarge
	}
	table := make([]uint64, size)
	if size > a.maxTableIdx {
		copy(table, a.table[:a.maxTableIdx+1])
	} else {
		copy(table, a.table[:size])
	}
	if newOff != 0 {
		table[newIdx] = uint64(newOff)
	}
	var extra int64
	for i := areaIdx; i < total; i++ {
		if table[i] == 0 {
			extra++
		}
	}
	tableOffset := start + extra*a.cs
	end := tableOffset + tableClusters*a.cs
	blockOffset := start
	for i := areaIdx; i < total; i++ {
		var b []byte
		if table[i] != 0 {
			b = a.loadBlock(int64(table[i]))
		} else {
			b = a.emptyBlock(blockOffset)
			table[i] = uint64(blockOffset)
			blockOffset += a.cs
		}
		first := i * a.blockSize * a.cs
		if first < end {
			j := int64(0)
			if first < start {
				j = (start - first) / a.cs
			}
			endIdx := min((end-first)/a.cs, a.blockSize)
			for ; j < endIdx; j++ {
				a.rc.set(b, j, 1)
			}
		}
	}
	a.flush()
	raw := make([]byte, size*8)
	for i, e := range table {
		binary.BigEndian.PutUint64(raw[i*8:], e)
	}
	a.disk.write(tableOffset, raw)

	oldOffset, oldSize := a.tableOffset, int64(len(a.table))
	a.table, a.tableOffset = table, tableOffset
	a.maxTableIdx = 0
	for i := len(table) - 1; i > 0; i-- {
		if table[i]&reftOffsetMask != 0 {
			a.maxTableIdx = int64(i)
			break
		}
	}
	return a.updateRefcount(oldOffset, oldSize*8, 1, true)
}
