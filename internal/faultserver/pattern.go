package faultserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Pattern is deterministic content of unbounded length generated from a
// seed: byte i of the content depends only on the seed and i, so any range
// can be produced without generating what comes before it, and no content is
// ever held in memory. It is an [io.ReaderAt]; bound it with
// [io.NewSectionReader] to give it a size.
//
// The bytes look random (a counter-based generator: each 8-byte word is the
// SplitMix64 finalizer of the seed and the word's index) and do not
// compress. Different seeds give unrelated content. Generation runs at
// several GB/s, well above what loopback TCP carries.
//
// A Pattern is a value; it is safe for concurrent use.
type Pattern uint64

// golden is the Weyl increment of SplitMix64.
const golden = 0x9e3779b97f4a7c15

// word returns the content's 8-byte word number w.
func (p Pattern) word(w uint64) uint64 {
	z := uint64(p) + (w+1)*golden
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// ReadAt fills b with the content starting at off. It always fills b
// completely and returns a nil error, except for a negative offset.
func (p Pattern) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("faultserver: negative offset")
	}
	n := len(b)
	w := uint64(off) / 8
	// A partial first word.
	if skip := int(uint64(off) % 8); skip != 0 {
		var tmp [8]byte
		binary.LittleEndian.PutUint64(tmp[:], p.word(w))
		c := copy(b, tmp[skip:])
		b = b[c:]
		w++
	}
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, p.word(w))
		b = b[8:]
		w++
	}
	if len(b) > 0 {
		var tmp [8]byte
		binary.LittleEndian.PutUint64(tmp[:], p.word(w))
		copy(b, tmp[:])
	}
	return n, nil
}

// generation returns the pattern that replaces p after its resource has
// changed gen times.
func (p Pattern) generation(gen uint64) Pattern {
	if gen == 0 {
		return p
	}
	return Pattern(uint64(p) ^ Pattern(gen).word(1<<62))
}

// hashChunk is how much [Hash] reads at a time.
const hashChunk = 1 << 20

// Hash writes the first size bytes of r to every w (typically hashes, such
// as sha256.New() and md5.New()), in order, checking ctx between chunks of
// 1 MiB. Hashing the 2 GiB of a benchmark's content takes a few seconds,
// which is why the server never does it unasked.
func Hash(ctx context.Context, r io.ReaderAt, size int64, w ...io.Writer) error {
	dst := io.MultiWriter(w...)
	buf := make([]byte, hashChunk)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(len(buf)), size-off))
		m, err := r.ReadAt(buf[:n], off)
		if m < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("faultserver: reading content at %d: %w", off, err)
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}
