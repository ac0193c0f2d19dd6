package download

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/bits"
	"strings"
	"time"

	"github.com/directdl/directdl/download/metalink"
)

// maxPieceAttempts bounds how often one piece is fetched before the
// download fails: a piece no source serves right is a wrong Metalink.
// maxBadPieces is how many bad pieces a source may serve before it is
// dropped.
const (
	maxPieceAttempts = 5
	maxBadPieces     = 2
)

// PieceError reports a piece of a Metalink download that failed its hash
// on every attempt. It matches ErrChecksumMismatch.
type PieceError struct {
	// Index is the piece's number from 0; Offset and Length its bytes.
	Index          int
	Offset, Length int64
	// Type is the piece hash type, e.g. "sha-256".
	Type string
	// Attempts is how often it was fetched; Sources are the sources
	// (redacted) that served the failing bytes.
	Attempts int
	Sources  []string
}

// Error names the piece, its byte range, the hash type, how often it was
// fetched and the sources that served it.
func (e *PieceError) Error() string {
	return fmt.Sprintf("download: piece %d (bytes %d-%d) failed its %s hash %d times, served by %s",
		e.Index, e.Offset, e.Offset+e.Length-1, e.Type, e.Attempts, strings.Join(e.Sources, ", "))
}

// Unwrap returns ErrChecksumMismatch.
func (e *PieceError) Unwrap() error { return ErrChecksumMismatch }

const (
	pieceMissing uint8 = iota // not all written yet
	pieceQueued               // written, waiting to be checked
	pieceGood                 // checked
)

// pieceSet is the state of the piece hashes of a download. It is guarded
// by the transfer's mu.
type pieceSet struct {
	length, size int64
	typ          string
	alg          Algorithm
	sums         [][]byte
	state        []uint8
	attempts     []uint8
	// from has a bit per source (idx mod 64) that wrote into a piece not
	// yet checked.
	from map[int]uint64
	// good is the number of pieces from the start that are all checked.
	good     int
	queue    []int
	checking int
	// redo lists bad pieces to fetch again, each avoiding the sources
	// that served it.
	redo      []redoPiece
	refetched int
	err       error // a piece that failed too often
}

type redoPiece struct {
	idx   int
	avoid uint64
	// pos is where the fetch starts: the piece's start, or where an
	// earlier fetch of it stopped.
	pos int64
}

// newPieceSet checks the Metalink piece hashes of a file of size bytes. It
// returns nil (and the reason, to log) when they cannot be used.
func newPieceSet(p *metalink.Pieces, size int64) (*pieceSet, string) {
	if p == nil || size <= 0 {
		return nil, ""
	}
	info, ok := lookup(p.Type)
	if !ok {
		return nil, fmt.Sprintf("piece hash type %q is not supported", p.Type)
	}
	n := p.Count(size)
	if n != int64(len(p.Hashes)) || p.Length <= 0 {
		return nil, fmt.Sprintf("%d piece hashes for %d pieces", len(p.Hashes), n)
	}
	ps := &pieceSet{
		length: p.Length, size: size, typ: metalink.CanonicalHashType(p.Type), alg: info.alg,
		sums: make([][]byte, n), state: make([]uint8, n), attempts: make([]uint8, n), from: map[int]uint64{},
	}
	for i, h := range p.Hashes {
		b, err := hex.DecodeString(h)
		if err != nil || len(b)*2 != info.hexLen {
			return nil, fmt.Sprintf("piece hash %d is not a %s hash", i, p.Type)
		}
		ps.sums[i] = b
	}
	return ps, ""
}

func (p *pieceSet) bounds(i int) (int64, int64) {
	a := int64(i) * p.length
	return a, min(a+p.length, p.size)
}

// verified is the length of the checked prefix of the file.
func (p *pieceSet) verified() int64 {
	return min(int64(p.good)*p.length, p.size)
}

// idle reports whether no piece is waiting for or under its check.
func (p *pieceSet) idle() bool { return len(p.queue) == 0 && p.checking == 0 }

// wrote records that m wrote [pos, pos+n) and queues the pieces that are
// now complete. Called with t.mu held, after t.done was updated.
func (t *transfer) wrote(m *mirror, pos, n int64) {
	p := t.pieces
	if p == nil {
		return
	}
	for i := int(pos / p.length); i < len(p.state) && int64(i)*p.length < pos+n; i++ {
		if p.state[i] != pieceMissing {
			continue
		}
		p.from[i] |= 1 << (m.idx % 64)
		if a, b := p.bounds(i); t.done.covers(a, b) {
			p.state[i] = pieceQueued
			p.queue = append(p.queue, i)
			poke(t.wakePiece)
		}
	}
}

// queueWritten queues every piece the part file already holds, as after a
// resume: the bytes past the hashed prefix were never checked in this
// process.
func (t *transfer) queueWritten() {
	p := t.pieces
	if p == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	hashed := t.hashed.Load()
	for i := range p.state {
		a, b := p.bounds(i)
		switch {
		case b <= hashed && t.done.covers(a, b):
			p.state[i] = pieceGood // hashed only after its check
		case p.state[i] == pieceMissing && t.done.covers(a, b):
			p.state[i] = pieceQueued
			p.queue = append(p.queue, i)
			p.from[i] = ^uint64(0) // written by an earlier run: nobody to blame
		case p.state[i] == pieceMissing && len(t.done.remove(0, a).remove(b, p.size)) > 0:
			p.from[i] = ^uint64(0) // partly written by an earlier run
		}
	}
	for p.good < len(p.state) && p.state[p.good] == pieceGood {
		p.good++
	}
	poke(t.wakePiece)
}

// checker hashes each piece once it is complete, reading it back from the
// part file (the page cache), until ctx is done.
func (t *transfer) checker(ctx context.Context) {
	p := t.pieces
	h := infoOf(p.alg).new()
	buf := make([]byte, min(p.length, hashChunk))
	for {
		t.mu.Lock()
		if len(p.queue) == 0 {
			t.mu.Unlock()
			select {
			case <-t.wakePiece:
				continue
			case <-ctx.Done():
				return
			}
		}
		i := p.queue[0]
		p.queue = p.queue[1:]
		p.checking++
		t.mu.Unlock()

		a, b := p.bounds(i)
		h.Reset()
		var rerr error
		for off := a; off < b && rerr == nil; {
			n := min(int64(len(buf)), b-off)
			_, rerr = t.part.ReadAt(buf[:n], off)
			h.Write(buf[:n])
			off += n
		}
		ok := rerr == nil && bytes.Equal(h.Sum(nil), p.sums[i])

		t.mu.Lock()
		p.checking--
		switch {
		case rerr != nil:
			p.err = &localError{fmt.Errorf("download: reading back %s: %w", t.partPath, rerr)}
		case ok:
			p.state[i] = pieceGood
			delete(p.from, i)
			for p.good < len(p.state) && p.state[p.good] == pieceGood {
				p.good++
			}
			poke(t.wakeHash)
		default:
			t.badPiece(i, a, b)
		}
		t.mu.Unlock()
		poke(t.wakeRound)
	}
}

// badPiece forgets piece i, queues it to be fetched again from another
// source, and blames the source that served it. Called with t.mu held.
func (t *transfer) badPiece(i int, a, b int64) {
	p := t.pieces
	from := p.from[i]
	delete(p.from, i)
	p.state[i] = pieceMissing
	p.attempts[i]++
	t.done = t.done.remove(a, b)
	var names []string
	var culprits []*mirror
	for _, m := range t.mirrors {
		if from&(1<<(m.idx%64)) != 0 {
			names = append(names, m.safe)
			culprits = append(culprits, m)
		}
	}
	t.log.Warn("piece failed its hash; fetching it again from another source", slog.Int("piece", i),
		slog.Int64("offset", a), slog.Int64("length", b-a), slog.Any("sources", names))
	if int(p.attempts[i]) >= maxPieceAttempts {
		if p.err == nil {
			p.err = &PieceError{Index: i, Offset: a, Length: b - a, Type: p.typ, Attempts: int(p.attempts[i]), Sources: names}
		}
		return
	}
	p.refetched++
	p.redo = append(p.redo, redoPiece{idx: i, avoid: from, pos: a})
	if len(culprits) != 1 {
		return // several wrote it: none can be blamed for sure
	}
	m := culprits[0]
	m.bad++
	if m.bad < maxBadPieces {
		// One bad piece may be a damaged spot: m stays in use, with
		// its bandwidth, and only that piece comes from another.
		return
	}
	// More say m's file is wrong: drop it (unless it is the last source)
	// and forget its part of pieces under way.
	if t.othersUsable(m) {
		t.drop(m, fmt.Errorf("served %d pieces that failed their %s hash, the last piece %d (bytes %d-%d)", m.bad, p.typ, i, a, b-1))
	}
	t.distrust(m)
}

// distrust forgets what m wrote into pieces that are not complete yet: m
// serves bad bytes, so its part of a piece would only make that piece fail
// too, and the source that completes it share the blame. The bytes of
// such a piece that are written go back to be fetched; the rest is waiting
// or in flight already. Called with t.mu held.
func (t *transfer) distrust(m *mirror) {
	p := t.pieces
	bit := uint64(1) << (m.idx % 64)
	for i, from := range p.from {
		if from&bit == 0 || p.state[i] != pieceMissing {
			continue
		}
		a, b := p.bounds(i)
		for _, r := range t.done {
			if r.End <= a || r.Start >= b {
				continue
			}
			s, e := max(r.Start, a), min(r.End, b)
			t.done = t.done.remove(s, e)
			t.pending = t.pending.add(s, e)
		}
		delete(p.from, i)
	}
}

// usableNow has the bit of every source that can work now. Only those
// count when choosing who fetches a bad piece again: a piece waiting for
// one in a backoff would wait while the others, which wrote it, stand
// idle. Called with t.mu held.
func (t *transfer) usableNow(now time.Time) uint64 {
	var usable uint64
	for _, o := range t.mirrors {
		if ok, _ := o.usable(now); ok {
			usable |= 1 << (o.idx % 64)
		}
	}
	return usable
}

// mayRedo reports whether m may fetch bad piece r again: it did not serve
// it, or every source usable now did.
func mayRedo(m *mirror, r redoPiece, usable uint64) bool {
	return r.avoid&(1<<(m.idx%64)) == 0 || bits.OnesCount64(usable&^r.avoid) == 0
}

// canRedo reports whether m may fetch any bad piece waiting. Called with
// t.mu held.
func (t *transfer) canRedo(m *mirror, now time.Time) bool {
	usable := t.usableNow(now)
	for _, r := range t.pieces.redo {
		if mayRedo(m, r, usable) {
			return true
		}
	}
	return false
}

// claimRedo gives m a bad piece to fetch again, preferring pieces that m
// did not serve; a piece every usable source served goes to any. Called
// with t.mu held.
func (t *transfer) claimRedo(m *mirror) *segment {
	p := t.pieces
	if p == nil || len(p.redo) == 0 {
		return nil
	}
	now := time.Now()
	usable := t.usableNow(now)
	for k, r := range p.redo {
		if !mayRedo(m, r, usable) {
			continue
		}
		p.redo = append(p.redo[:k], p.redo[k+1:]...)
		_, b := p.bounds(r.idx)
		seg := &segment{pos: r.pos, end: b, redo: &r}
		t.segs = append(t.segs, seg)
		return seg
	}
	return nil
}
