// Command mkmetalink writes a Metalink 4 document describing the content a
// faultserver serves (Pattern(SEED), SIZE bytes), with its whole-file and
// piece SHA-256 hashes and the given URLs as mirrors, for benchmark scripts
// that download one file from several faultserver mirrors at once.
//
// Usage:
//
//	mkmetalink [-seed S] [-size BYTES] [-piece BYTES] [-name NAME] [-same-priority] -o FILE URL...
//
// The URLs get priorities 1, 2, 3, ... in the order given (1 is the most
// preferred); with -same-priority they all get 1, leaving the choice to
// the client. Sizes take plain bytes or the suffixes K, M, G, T, P, E
// (powers of 1024), optionally followed by B or iB, as faultserver's
// flags do. -name defaults to the last segment of the first URL's path.
//
// The content is hashed as it is generated, never held in memory: 1 GiB
// takes a few seconds. FILE is written atomically (a temporary file beside
// it, synced and renamed), so an interrupted run leaves no half-written
// document. Errors print one line "mkmetalink: MESSAGE" on stderr; usage
// errors exit with status 2, other failures with 1.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path"
	"strconv"
	"syscall"

	"github.com/directdl/directdl/download/metalink"
	"github.com/directdl/directdl/internal/atomicfile"
	"github.com/directdl/directdl/internal/faultserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// sizeFlag is a flag.Value for a size in bytes.
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *sizeFlag) Set(v string) error {
	n, err := faultserver.ParseSize(v)
	*s = sizeFlag(n)
	return err
}

// run is the program; it returns the exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("mkmetalink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		size  = sizeFlag(1 << 30)
		piece = sizeFlag(4 << 20)
		seed  = fs.Uint64("seed", 1, "`seed` of the content, as given to faultserver -seed")
		name  = fs.String("name", "", "file `name` in the metalink (default: the last segment of the first URL's path)")
		out   = fs.String("o", "", "write the metalink to `file` (required)")
		same  = fs.Bool("same-priority", false, "give every URL priority 1 instead of 1, 2, 3, ... in order")
	)
	fs.Var(&size, "size", "`size` of the content, as given to faultserver -size")
	fs.Var(&piece, "piece", "piece `length` of the piece hashes")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mkmetalink: "+format+"\n", a...)
		return 2
	}
	switch {
	case *out == "":
		return usage("-o FILE is required")
	case fs.NArg() == 0:
		return usage("give at least one mirror URL")
	case piece <= 0:
		return usage("-piece must be more than 0 bytes")
	}
	if *name == "" {
		u, err := url.Parse(fs.Arg(0))
		if err != nil || path.Base(u.Path) == "/" || path.Base(u.Path) == "." {
			return usage("cannot take a file name from %q; give -name", fs.Arg(0))
		}
		*name = path.Base(u.Path)
	}

	f := metalink.File{Name: *name, Size: int64(size)}
	for i, u := range fs.Args() {
		prio := i + 1
		if *same {
			prio = 1
		}
		f.URLs = append(f.URLs, metalink.URL{URL: u, Priority: prio})
	}
	m := &metalink.Metalink{Files: []metalink.File{f}, Generator: "directdl bench/mkmetalink"}
	// Checked before hashing, which takes seconds per GiB.
	if err := m.Validate(metalink.RequireSize()); err != nil {
		return usage("%v", err)
	}
	whole, pieces, err := digests(ctx, faultserver.Pattern(*seed), int64(size), int64(piece))
	if err != nil {
		fmt.Fprintf(stderr, "mkmetalink: hashing the content: %v\n", err)
		return 1
	}
	m.Files[0].Hashes = []metalink.Hash{{Type: "sha-256", Value: whole}}
	if len(pieces) > 0 { // empty content has no pieces
		m.Files[0].Pieces = &metalink.Pieces{Length: int64(piece), Type: "sha-256", Hashes: pieces}
	}
	doc, err := m.Marshal(metalink.RequireSize(), metalink.WithMaxPieces(len(pieces)))
	if err != nil {
		fmt.Fprintf(stderr, "mkmetalink: %v\n", err)
		return 1
	}
	if err := atomicfile.Write(*out, 0o644, func(fh *os.File) error {
		_, err := fh.Write(doc)
		return err
	}); err != nil {
		fmt.Fprintf(stderr, "mkmetalink: writing %s: %v\n", *out, err)
		return 1
	}
	return 0
}

// digests returns the hex SHA-256 of the first size bytes of content and
// of each piece of them, reading the content once.
func digests(ctx context.Context, content io.ReaderAt, size, piece int64) (string, []string, error) {
	whole := sha256.New()
	var pieces []string
	for off := int64(0); off < size; off += piece {
		n := min(piece, size-off)
		h := sha256.New()
		if err := faultserver.Hash(ctx, io.NewSectionReader(content, off, n), n, whole, h); err != nil {
			return "", nil, err
		}
		pieces = append(pieces, hex.EncodeToString(h.Sum(nil)))
	}
	return hex.EncodeToString(whole.Sum(nil)), pieces, nil
}
