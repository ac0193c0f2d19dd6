package faultserver

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

func TestPatternReadAtMatchesFullRead(t *testing.T) {
	t.Parallel()
	const size = 1<<16 + 13
	full := make([]byte, size)
	Pattern(7).ReadAt(full, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		off := rng.Int64N(size)
		n := rng.Int64N(size - off + 1)
		got := make([]byte, n)
		if m, err := Pattern(7).ReadAt(got, off); m != int(n) || err != nil {
			t.Fatalf("ReadAt(%d bytes, %d) = %d, %v; want %d, nil", n, off, m, err, n)
		}
		if !bytes.Equal(got, full[off:off+n]) {
			t.Fatalf("ReadAt(%d bytes, %d) differs from the full read", n, off)
		}
	}
}

func TestPatternSeedsAndGenerationsDiffer(t *testing.T) {
	t.Parallel()
	read := func(p Pattern) []byte {
		b := make([]byte, 4096)
		p.ReadAt(b, 1<<40)
		return b
	}
	seen := map[string]string{}
	for name, p := range map[string]Pattern{
		"seed 1": 1, "seed 2": 2, "seed 1 gen 1": Pattern(1).generation(1), "seed 1 gen 2": Pattern(1).generation(2),
	} {
		k := string(read(p))
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s give the same content", name, other)
		}
		seen[k] = name
	}
	if Pattern(1).generation(0) != 1 {
		t.Errorf("generation 0 changed the pattern")
	}
}

func TestPatternNegativeOffset(t *testing.T) {
	t.Parallel()
	if _, err := Pattern(1).ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("ReadAt at -1: got no error")
	}
}

func TestPatternReadAtDoesNotAllocate(t *testing.T) {
	b := make([]byte, 4093)
	allocs := testing.AllocsPerRun(100, func() { Pattern(3).ReadAt(b, 8<<30-5) })
	if allocs != 0 {
		t.Errorf("ReadAt allocates %v times per call, want 0", allocs)
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	const size = 3<<20 + 5
	full := make([]byte, size)
	Pattern(9).ReadAt(full, 0)
	s, m := sha256.New(), md5.New()
	if err := Hash(context.Background(), Pattern(9), size, s, m); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Sum(nil), sha256.Sum256(full); !bytes.Equal(got, want[:]) {
		t.Errorf("sha256 = %x, want %x", got, want)
	}
	if got, want := m.Sum(nil), md5.Sum(full); !bytes.Equal(got, want[:]) {
		t.Errorf("md5 = %x, want %x", got, want)
	}

	short := bytes.NewReader(full[:10])
	if err := Hash(context.Background(), short, 20, sha256.New()); err == nil {
		t.Error("Hash of 20 bytes from a 10-byte reader: got no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Hash(ctx, Pattern(1), 1<<30); err != context.Canceled {
		t.Errorf("Hash with a canceled context = %v, want %v", err, context.Canceled)
	}
}

func BenchmarkPatternReadAt(b *testing.B) {
	buf := make([]byte, bodyChunk)
	b.SetBytes(int64(len(buf)))
	for i := 0; b.Loop(); i++ {
		Pattern(1).ReadAt(buf, int64(i)*int64(len(buf))+3)
	}
}
