package migrate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/directdl/directdl/qcow2"
)

// maxChain bounds a backing chain; a longer one is almost surely a loop
// through names that differ (QEMU itself stops far later, but no template
// chain is this deep).
const maxChain = 64

// readChain reads the backing chain of the image at path opened as format,
// from the images themselves: each layer's backing name and format come
// from its qcow2 header, never from a file name or a database. The chain
// ends at a layer with no backing file, or at one named by a protocol
// ("nbd:", "json:") that cannot be followed; stop says why it ended early
// ("" when it reached a layer with no backing).
//
// Backing layers are read once per plan: cache holds them by path and
// format, since many disks share one base.
func readChain(disk, path, format string, cache map[string]layerInfo) (chain []Layer, stop string, err error) {
	seen := map[string]bool{}
	name := ""
	for depth := 0; ; depth++ {
		if depth == maxChain {
			return nil, "", specErr(disk, "backing chain of %s is deeper than %d images", chain[0].Path, maxChain)
		}
		if seen[filepath.Clean(path)] {
			return nil, "", specErr(disk, "backing chain of %s loops back to %s", chain[0].Path, path)
		}
		seen[filepath.Clean(path)] = true
		key := format + "\x00" + path
		li, ok := cache[key]
		if !ok {
			li.l, li.backing, li.backingFormat, err = readLayer(disk, path, format, depth == 0)
			if err != nil {
				return nil, "", err
			}
			if depth > 0 {
				cache[key] = li
			}
		}
		l, backing, backingFormat := li.l, li.backing, li.backingFormat
		l.Name = name
		chain = append(chain, l)
		if backing == "" {
			return chain, "", nil
		}
		// A backing file the chain cannot follow still makes the disk one
		// with a backing file: it is listed, unread, so that the disk is
		// copied whole and forces the VM's mode.
		unread := Layer{Path: backing, Name: backing, Format: backingFormat, Unread: true}
		if backingFormat == "" {
			return append(chain, unread), fmt.Sprintf("%s names its backing file %q without a backing format, so QEMU would have to probe it", path, backing), nil
		}
		if isProtocol(backing) {
			return append(chain, unread), fmt.Sprintf("%s names its backing file by protocol (%q), which cannot be followed or resolved on the destination", path, backing), nil
		}
		if backingFormat != "qcow2" && backingFormat != "raw" {
			return append(chain, unread), fmt.Sprintf("%s has a %s backing file (%q), which this planner does not read", path, backingFormat, backing), nil
		}
		name, format = backing, backingFormat
		path = qcow2.ResolveBacking(path, backing)
	}
}

// layerInfo is what readLayer learnt of one image.
type layerInfo struct {
	l                      Layer
	backing, backingFormat string
}

// readLayer reads one image of a chain. top says it is the disk itself,
// whose format the Spec gave; lower layers take the format their overlay
// recorded.
func readLayer(disk, path, format string, top bool) (l Layer, backing, backingFormat string, err error) {
	what := "backing file"
	if top {
		what = "image"
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Layer{}, "", "", &SpecError{Disk: disk, Reason: "cannot read " + what + " " + path, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return Layer{}, "", "", specErr(disk, "%s %s is not a regular file", what, path)
	}
	l = Layer{Path: path, Format: format, AllocatedBytes: allocated(fi)}
	switch format {
	case "qcow2":
		img, err := qcow2.InspectFile(path)
		if errors.Is(err, qcow2.ErrNotQcow2) {
			return Layer{}, "", "", &SpecError{Disk: disk, Reason: fmt.Sprintf("%s %s is opened as qcow2 but is not a qcow2 image; correct its format", what, path), Err: err}
		}
		if err != nil {
			return Layer{}, "", "", &SpecError{Disk: disk, Reason: what + " " + path + " cannot be used", Err: err}
		}
		if img.DataFile != "" {
			return Layer{}, "", "", specErr(disk, "%s %s keeps its data in an external file (%q), which a migration does not copy", what, path, img.DataFile)
		}
		l.VirtualSize = int64(img.Size)
		return l, img.BackingFile, img.BackingFormat, nil
	case "raw":
		// A raw layer that is in fact a qcow2 image would show the guest
		// the qcow2 metadata; QEMU refuses to guess and so do we.
		if isQcow2, err := hasQcow2Magic(path); err != nil {
			return Layer{}, "", "", &SpecError{Disk: disk, Reason: "cannot read " + what + " " + path, Err: err}
		} else if isQcow2 {
			return Layer{}, "", "", specErr(disk, "%s %s is opened as raw but holds a qcow2 header; correct its format", what, path)
		}
		l.VirtualSize = fi.Size()
		return l, "", "", nil
	default:
		return Layer{}, "", "", specErr(disk, "%s %s has format %q; only qcow2 and raw are supported", what, path, format)
	}
}

// hasQcow2Magic reports whether the file at path starts with the qcow2
// magic.
func hasQcow2Magic(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var b [4]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		return false, err
	}
	return binary.BigEndian.Uint32(b[:]) == qcow2.Magic, nil
}

// isProtocol reports whether QEMU would take a backing name as a protocol
// or a JSON description rather than a file name: a ':' before the first
// '/', as qcow2.ResolveBacking decides.
func isProtocol(name string) bool {
	i := strings.IndexAny(name, ":/")
	return i >= 0 && name[i] == ':'
}
