package qcow2

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// checkSeeds returns the images in testdata/check (small images with data,
// snapshots, compressed clusters and bitmaps, written by qemu-io and
// qemu-img), new images from CreateAt, and damaged copies of both.
func checkSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	paths, _ := filepath.Glob(filepath.Join("testdata", "check", "*.qcow2"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for _, o := range []Options{
		{Size: 64 << 10, ClusterSize: 512},
		{Size: 1 << 20, ClusterSize: 512, RefcountBits: 64},
		{Size: 1 << 20, ClusterSize: 4096, RefcountBits: 2, LazyRefcounts: true},
		{Size: 1 << 20, ClusterSize: 512, Compat: "0.10", BackingFile: "b", BackingFormat: "raw"},
	} {
		var w writerAtBuffer
		if _, err := CreateAt(&w, o); err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, w.b)
	}
	// Damaged copies: every 8-byte word that looks like an offset into
	// the file, shifted by half a sector, in turn in a few places.
	n := len(seeds)
	for _, b := range seeds[:n] {
		for off := 48; off+8 <= len(b) && off < 4096; off += 8 {
			v := binary.BigEndian.Uint64(b[off:])
			if v&0x00ffffffffffffff == 0 || v&0x00ffffffffffffff >= uint64(len(b)) || off%64 != 0 {
				continue
			}
			d := bytes.Clone(b)
			binary.BigEndian.PutUint64(d[off:], v+0x100)
			seeds = append(seeds, d)
		}
	}
	return seeds
}

// FuzzCheck runs Check and ReadSnapshots on arbitrary bytes. They must not
// panic, hang or allocate much more than the input, and their results
// must be consistent.
func FuzzCheck(f *testing.F) {
	for _, s := range checkSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		res, err := Check(context.Background(), r, int64(len(b)))
		var fe *CheckFailedError
		switch {
		case err == nil:
			if res == nil || res.Incomplete {
				t.Fatalf("nil error with result %+v", res)
			}
		case errors.As(err, &fe):
			if res == nil || !res.Incomplete || res.ExitCode() != 1 {
				t.Fatalf("check failure %v with result %+v", err, res)
			}
		default:
			if res != nil {
				t.Fatalf("result with error %v", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		}
		if res != nil {
			if len(res.Problems) > MaxCheckProblems {
				t.Fatalf("%d problems kept", len(res.Problems))
			}
			var c, l, e int
			for _, p := range res.Problems {
				switch p.Kind {
				case ProblemCorruption:
					c++
				case ProblemLeak:
					l++
				case ProblemCheckError:
					e++
				}
			}
			if res.ProblemsOmitted == 0 && (c > res.Corruptions || l != res.Leaks || e > res.CheckErrors) {
				t.Fatalf("lines %d/%d/%d, counters %d/%d/%d", c, l, e, res.Corruptions, res.Leaks, res.CheckErrors)
			}
		}
		img, err := Inspect(r)
		if err != nil {
			return
		}
		sn, err := ReadSnapshots(r, img)
		if err == nil && len(sn) != int(img.NbSnapshots) {
			t.Fatalf("%d snapshots, header says %d", len(sn), img.NbSnapshots)
		}
		if err != nil && !errors.Is(err, ErrSnapshotTable) {
			t.Fatalf("ReadSnapshots: %v does not wrap ErrSnapshotTable", err)
		}
	})
}

// FuzzReadSnapshots feeds ReadSnapshots a snapshot table of arbitrary
// bytes behind a valid header.
func FuzzReadSnapshots(f *testing.F) {
	var w writerAtBuffer
	if _, err := CreateAt(&w, Options{Size: 1 << 20, ClusterSize: 512}); err != nil {
		f.Fatal(err)
	}
	head := append(w.b, make([]byte, (len(w.b)+511)&^511-len(w.b))...)
	f.Add(uint32(1), snapshotEntry(Snapshot{ID: "1", Name: "s", ICount: -1}, 24))
	f.Add(uint32(2), append(snapshotEntry(Snapshot{ID: "1"}, 0), snapshotEntry(Snapshot{Name: "x"}, 1024)...))
	f.Add(uint32(65536), snapshotEntry(Snapshot{ID: "1"}, 16))
	f.Fuzz(func(t *testing.T, n uint32, table []byte) {
		b := append(bytes.Clone(head), table...)
		binary.BigEndian.PutUint32(b[60:], n)
		binary.BigEndian.PutUint64(b[64:], uint64(len(head)))
		img, err := Inspect(bytes.NewReader(b))
		if err != nil {
			return
		}
		r := &countingReader{r: bytes.NewReader(b)}
		sn, err := ReadSnapshots(r, img)
		if err != nil && !errors.Is(err, ErrSnapshotTable) {
			t.Fatalf("%v does not wrap ErrSnapshotTable", err)
		}
		if err == nil && len(sn) != int(n) {
			t.Fatalf("%d snapshots, want %d", len(sn), n)
		}
		if r.bytes > int64(len(b))+256<<10 {
			t.Fatalf("read %d bytes of a %d-byte image", r.bytes, len(b))
		}
		for _, s := range sn {
			if len(s.ExtraData) > maxSnapshotExtraData {
				t.Fatalf("%d bytes of extra data", len(s.ExtraData))
			}
		}
	})
}
