package download_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/metalink"
	"github.com/directdl/directdl/internal/faultserver"
)

// TestReview8RedoWithOneConnection: the preferred mirror serves one bad
// piece and stays in use (one bad piece is a damaged spot); the piece is
// queued to avoid it. With one connection, every round's connection picks
// the preferred mirror again, claimRedo skips the piece for it (another
// source is usable), nothing else is left, and the round moves nothing:
// after maxRounds such rounds the download fails although the second
// mirror has the piece.
func TestReview8RedoWithOneConnection(t *testing.T) {
	const size, piece = 4 << 20, 1 << 20
	content := faultserver.Pattern(81)
	sum := patternSHA256(t, content, size)
	a := startMirror(t, "127.0.0.1", content, size, func(m *mirrorServer) { m.corruptPiece = piece })
	b := startMirror(t, "127.0.0.2", content, size, nil)
	f := metalink.File{Name: "f", Size: size, Hashes: []metalink.Hash{{Type: "sha-256", Value: sum}},
		Pieces: &metalink.Pieces{Length: piece, Type: "sha-256", Hashes: pieceHashes(t, content, size, piece)},
		URLs:   []metalink.URL{{URL: a.URL("/f"), Priority: 1}, {URL: b.URL("/f"), Priority: 2}}}
	c := newClient(t, download.WithConnections(1))
	dir := t.TempDir()
	dest := filepath.Join(dir, "f")
	res, err := c.Get(context.Background(), download.Request{Metalink: &f, Path: dest})
	if err != nil {
		t.Fatalf("Get: %v; want the bad piece fetched again from the second mirror (asked %d times)", err, len(b.requests()))
	}
	if got := fileSHA256(t, dest); got != "sha256:"+sum || res.PiecesRefetched != 1 {
		t.Errorf("file %s, %d pieces refetched; want sha256:%s, 1", got, res.PiecesRefetched, sum)
	}
}
