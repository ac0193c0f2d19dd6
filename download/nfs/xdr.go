package nfs

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// enc appends XDR (RFC 4506) items to a buffer.
type enc []byte

func (e enc) u32(v uint32) enc { return binary.BigEndian.AppendUint32(e, v) }
func (e enc) u64(v uint64) enc { return binary.BigEndian.AppendUint64(e, v) }

func (e enc) opaque(b []byte) enc {
	e = e.u32(uint32(len(b)))
	e = append(e, b...)
	for len(e)%4 != 0 {
		e = append(e, 0)
	}
	return e
}

func (e enc) str(s string) enc { return e.opaque([]byte(s)) }

// dec reads XDR items from a reply. The first error sticks, and every
// later read returns zero, so callers check err once at the end.
type dec struct {
	b   []byte
	err error
}

var errShort = errors.New("reply too short")

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errShort
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *dec) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *dec) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *dec) bool() bool { return d.u32() != 0 }

// opaque reads a variable-length opaque of at most max bytes.
func (d *dec) opaque(max int) []byte {
	n := d.u32()
	if d.err != nil {
		return nil
	}
	if int64(n) > int64(max) {
		d.err = fmt.Errorf("opaque of %d bytes, over the limit of %d", n, max)
		return nil
	}
	b := d.take(int(n))
	d.take((4 - int(n)%4) % 4)
	return b
}

// Sizes from RFC 1813.
const (
	fhSize3   = 64 // NFS3_FHSIZE
	nfsTime3  = 8
	fattr3Len = 84
)

// fattr3 is the part of an NFSv3 fattr3 this package uses.
type fattr3 struct {
	Type   uint32
	Size   uint64
	FSID   uint64
	FileID uint64
	Mtime  [2]uint32
	Ctime  [2]uint32
}

// File types (ftype3).
const (
	nf3Reg  = 1
	nf3Dir  = 2
	nf3Blk  = 3
	nf3Chr  = 4
	nf3Lnk  = 5
	nf3Sock = 6
	nf3Fifo = 7
)

func typeName(t uint32) string {
	switch t {
	case nf3Reg:
		return "a regular file"
	case nf3Dir:
		return "a directory"
	case nf3Blk:
		return "a block device"
	case nf3Chr:
		return "a character device"
	case nf3Lnk:
		return "a symbolic link"
	case nf3Sock:
		return "a socket"
	case nf3Fifo:
		return "a FIFO"
	}
	return fmt.Sprintf("of unknown type %d", t)
}

func (d *dec) fattr() fattr3 {
	var a fattr3
	a.Type = d.u32()
	d.take(4 * 4) // mode, nlink, uid, gid
	a.Size = d.u64()
	d.take(8 + 8) // used, rdev
	a.FSID = d.u64()
	a.FileID = d.u64()
	d.take(nfsTime3) // atime
	a.Mtime = [2]uint32{d.u32(), d.u32()}
	a.Ctime = [2]uint32{d.u32(), d.u32()}
	return a
}

// postOpAttr reads post_op_attr: whether attributes follow, and them.
func (d *dec) postOpAttr() (fattr3, bool) {
	if d.bool() {
		return d.fattr(), true
	}
	return fattr3{}, false
}
