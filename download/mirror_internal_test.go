package download

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

func testTransfer(t *testing.T, conns, mirrorConns int, prios ...int) *transfer {
	t.Helper()
	cfg := defaultConfig()
	cfg.mirrorConns = mirrorConns
	cfg.minSplit = 64 << 10
	tr := &transfer{c: &Client{cfg: cfg}, j: &job{conns: conns}, log: slog.New(slog.DiscardHandler)}
	for i, p := range prios {
		tr.mirrors = append(tr.mirrors, &mirror{idx: i, priority: p, safe: "m" + string(rune('0'+i))})
	}
	return tr
}

// pickAll takes connections until none is left and counts them per mirror.
func pickAll(tr *transfer) []int {
	got := make([]int, len(tr.mirrors))
	for {
		m, _ := tr.pick(time.Now())
		if m == nil {
			return got
		}
		got[m.idx]++
	}
}

func TestPickSpreadsByPriority(t *testing.T) {
	tests := []struct {
		name               string
		conns, mirrorConns int
		prios              []int
		want               []int
	}{
		{"even split, best first", 8, 0, []int{2, 1, 3}, []int{3, 3, 3}},
		{"one mirror takes all", 8, 0, []int{1}, []int{8}},
		{"explicit cap", 12, 4, []int{1, 1, 1}, []int{4, 4, 4}},
		{"explicit cap per mirror, whatever the priority", 8, 4, []int{3, 1, 2}, []int{4, 4, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := testTransfer(t, tt.conns, tt.mirrorConns, tt.prios...)
			got := pickAll(tr)
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("connections per mirror %v, want caps %v", got, tt.want)
				}
			}
		})
	}
	// With fewer connections than room, the best priorities come first.
	tr := testTransfer(t, 8, 4, 3, 1, 2)
	var order []int
	for range 8 {
		m, _ := tr.pick(time.Now())
		order = append(order, m.priority)
	}
	for i, want := range []int{1, 1, 1, 1, 2, 2, 2, 2} {
		if order[i] != want {
			t.Fatalf("priorities picked in order %v", order)
		}
	}
}

func TestFailedBacksOffThenDrops(t *testing.T) {
	tr := testTransfer(t, 4, 0, 1, 1)
	tr.c.cfg.retries = 2
	a := tr.mirrors[0]
	tr.failed(a, errors.New("reset"), false)
	if a.out != nil || !a.retryAt.After(time.Now()) {
		t.Fatalf("after one failure: out %v, retry at %v", a.out, a.retryAt)
	}
	if m, _ := tr.pick(time.Now()); m != tr.mirrors[1] {
		t.Fatal("a mirror in its backoff was picked")
	}
	tr.failed(a, errors.New("reset"), false)
	tr.failed(a, errors.New("reset"), false)
	if a.out == nil {
		t.Fatal("not dropped after more failures than the retries")
	}
	b := tr.mirrors[1]
	tr.failed(b, errors.New("404"), true)
	if b.out == nil {
		t.Fatal("a permanent failure did not drop the mirror")
	}
	if m, next := tr.pick(time.Now()); m != nil || !next.IsZero() {
		t.Fatalf("pick with every mirror dropped: %v, %v", m, next)
	}
	err := tr.noSourceError()
	if !errors.Is(err, ErrNoSource) || err.Error() == "" {
		t.Fatalf("no source error %v", err)
	}
}

func TestSlowMirrorDemoted(t *testing.T) {
	tr := testTransfer(t, 8, 0, 1, 1, 2)
	fast, slow, other := tr.mirrors[0], tr.mirrors[1], tr.mirrors[2]
	for range 2 {
		tr.sampled(fast, 8<<20, time.Second) // 8 MiB/s a connection
		tr.sampled(other, 6<<20, time.Second)
		tr.sampled(slow, 1<<20, time.Second) // 1 MiB/s: under a quarter
	}
	if !slow.demoted || fast.demoted || other.demoted {
		t.Fatalf("demoted: fast %v, slow %v, other %v", fast.demoted, slow.demoted, other.demoted)
	}
	if c := tr.capOf(slow); c != 1 {
		t.Errorf("a demoted mirror may have %d connections, want 1", c)
	}
	if !better(other, slow) {
		t.Error("a demoted mirror of better priority still comes first")
	}
	// A connection on the demoted mirror leaves it for one with room.
	slow.active = 1
	if tr.stay(slow, time.Now()) {
		t.Error("a connection stays on the demoted mirror while others have room")
	}
	// Short requests tell no rate.
	tr2 := testTransfer(t, 8, 0, 1, 1)
	for range 4 {
		tr2.sampled(tr2.mirrors[0], 8<<20, time.Second)
		tr2.sampled(tr2.mirrors[1], 1<<10, time.Second)
	}
	if tr2.mirrors[1].demoted {
		t.Error("demoted on requests too short to measure")
	}
}

func TestSpansRemoveCovers(t *testing.T) {
	var s spans
	s = s.add(0, 100).add(200, 300)
	s = s.remove(50, 250)
	if len(s) != 2 || s[0] != (span{0, 50}) || s[1] != (span{250, 300}) {
		t.Fatalf("after remove: %v", s)
	}
	for _, tt := range []struct {
		a, b int64
		want bool
	}{{0, 50, true}, {10, 20, true}, {40, 60, false}, {250, 300, true}, {50, 250, false}, {5, 5, true}, {300, 301, false}} {
		if got := s.covers(tt.a, tt.b); got != tt.want {
			t.Errorf("covers(%d, %d) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	if !s.valid(300) {
		t.Errorf("%v is not a valid set", s)
	}
}

// TestRedoGivenBackStaysARedo: a bad piece fetched again from a second
// source whose connection then fails must go back to the bad pieces, still
// avoiding the source that served it bad. As an ordinary range (as it once
// did), the next connection to claim it could be on that source, which
// served it bad again (TestMetalinkThreeMirrors failed about one run in
// ten so).
func TestRedoGivenBackStaysARedo(t *testing.T) {
	const piece = 1 << 20
	tr := testTransfer(t, 4, 0, 1, 1, 1)
	good, bad, dying := tr.mirrors[0], tr.mirrors[1], tr.mirrors[2]
	tr.pieces = &pieceSet{length: piece, size: 4 * piece, state: make([]uint8, 4), attempts: make([]uint8, 4), from: map[int]uint64{}}
	tr.done = tr.done.add(0, 4*piece)
	tr.pieces.from[1] = 1 << bad.idx
	tr.badPiece(1, piece, 2*piece)
	if len(tr.pieces.redo) != 1 || bad.bad != 1 {
		t.Fatalf("after a bad piece: redo %+v, source blamed %d times", tr.pieces.redo, bad.bad)
	}
	if seg := tr.claim(bad); seg != nil {
		t.Fatalf("the source that served piece 1 bad was given %d-%d", seg.pos, seg.end)
	}

	// The dying source takes it, writes a quarter, and fails.
	seg := tr.claim(dying)
	if seg == nil || seg.pos != piece || seg.end != 2*piece {
		t.Fatalf("dying source claimed %+v, want the bad piece", seg)
	}
	seg.pos += piece / 4
	tr.done = tr.done.add(piece, seg.pos)
	tr.failed(dying, errors.New("connection reset"), false)
	tr.giveBack(seg)
	if len(tr.pending) != 0 {
		t.Fatalf("the rest of the bad piece became ordinary ranges %v", tr.pending)
	}
	if got := tr.claim(bad); got != nil {
		t.Fatalf("after the give-back, the source that served it bad was given %d-%d", got.pos, got.end)
	}
	got := tr.claim(good)
	if got == nil || got.pos != piece+piece/4 || got.end != 2*piece || got.redo == nil {
		t.Fatalf("good source claimed %+v, want the rest of piece 1 (from %d), marked as a redo", got, piece+piece/4)
	}

	// Nor is it split off to the source that served it bad: splits are on
	// piece boundaries.
	got.reqFrom, got.reqAt = got.pos, time.Now().Add(-time.Hour) // an hour without a byte
	if n := tr.claim(bad); n != nil {
		t.Fatalf("a redo in flight was split off to the source that served it bad: %d-%d", n.pos, n.end)
	}
}
