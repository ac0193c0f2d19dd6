package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/metalink"
)

// mirrors downloads the template as a Metalink describes it: two mirrors,
// the preferred one serving a damaged copy. The piece hashes catch every
// bad piece as it completes; the damaged mirror is dropped and its pieces
// come again from the other, and the whole-file hash is checked as usual.
func mirrors(ctx context.Context, step, say func(string, ...any), dir, tmpl, primary string) error {
	step("download it from a Metalink with two mirrors, the preferred one serving a damaged copy")
	const piece = 32 << 10
	good, err := os.ReadFile(tmpl)
	if err != nil {
		return err
	}
	bad := append([]byte(nil), good...)
	for i := range bad {
		bad[i] ^= 0x5a // every piece damaged, so the outcome does not depend on timing
	}
	damaged := filepath.Join(dir, "damaged")
	if err := os.Mkdir(damaged, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(damaged, filepath.Base(tmpl)), bad, 0o644); err != nil {
		return err
	}
	badMirror := httptest.NewServer(http.FileServer(http.Dir(damaged)))
	defer badMirror.Close()
	goodMirror := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(tmpl))))
	defer goodMirror.Close()

	whole := sha256.Sum256(good)
	f := metalink.File{
		Name: "centos-template.qcow2", Size: int64(len(good)),
		Hashes: []metalink.Hash{{Type: "sha-256", Value: hex.EncodeToString(whole[:])}},
		Pieces: &metalink.Pieces{Length: piece, Type: "sha-256"},
		URLs: []metalink.URL{
			{URL: badMirror.URL + "/" + filepath.Base(tmpl), Priority: 1},
			{URL: goodMirror.URL + "/" + filepath.Base(tmpl), Priority: 2},
		},
	}
	for off := 0; off < len(good); off += piece {
		h := sha256.Sum256(good[off:min(off+piece, len(good))])
		f.Pieces.Hashes = append(f.Pieces.Hashes, hex.EncodeToString(h[:]))
	}
	// Metalink 4 as a publisher would write it, read back as a
	// downloader does.
	doc, err := (&metalink.Metalink{Files: []metalink.File{f}}).Marshal()
	if err != nil {
		return err
	}
	parsed, err := metalink.ParseBytes(doc, metalink.RequireSize())
	if err != nil {
		return err
	}
	file, err := parsed.Pick("")
	if err != nil {
		return err
	}
	dest, err := file.SafeJoin(primary)
	if err != nil {
		return err
	}
	say("%s: %d bytes of Metalink 4, %d piece hashes, 2 mirrors", "centos-template.meta4", len(doc), len(file.Pieces.Hashes))

	dl, err := download.New(
		download.WithPolicy(download.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
		// One connection, so the preferred (damaged) mirror is asked
		// first and the story is the same on every run.
		download.WithConnections(1),
	)
	if err != nil {
		return err
	}
	defer dl.CloseIdleConnections()
	res, err := dl.Get(ctx, download.Request{Metalink: file, Path: dest})
	if err != nil {
		return err
	}
	say("%s: %d bytes, verified %v, %d bad piece(s) fetched again", filepath.Base(res.Path), res.Size, res.Verified, res.PiecesRefetched)
	for _, s := range res.Sources {
		state := "used to the end"
		if s.Dropped != "" {
			state = "dropped: " + s.Dropped
		}
		say("mirror priority %d: %d bytes, %d bad piece(s), %s", s.Priority, s.Bytes, s.BadPieces, state)
	}
	return nil
}
