package qcow2

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Problem codes in a [Verdict].
const (
	ProblemNotQcow2        = "not-qcow2"        // no QCOW magic
	ProblemInvalid         = "invalid"          // header breaks a QEMU rule
	ProblemUnknownFeatures = "unknown-features" // incompatible feature bits QEMU does not know
	ProblemBackingFile     = "backing-file"     // the image names a backing file
	ProblemDataFile        = "data-file"        // data lives in an external file
	ProblemEncrypted       = "encrypted"        // AES or LUKS encryption
	ProblemDirty           = "dirty"            // refcounts not up to date (lazy refcounts)
	ProblemCorrupt         = "corrupt"          // QEMU marked the image corrupt
	ProblemTooLarge        = "too-large"        // virtual size beyond the policy's limit
	ProblemTruncated       = "truncated"        // tables lie past the end of the file
)

// DefaultMaxVirtualSize is the largest virtual size [Vet] accepts when the
// policy does not say: 64 TiB, far beyond any VM template.
const DefaultMaxVirtualSize = 64 << 40

// Policy tunes [Vet]. The zero value is the strict policy for templates
// downloaded from users.
type Policy struct {
	// MaxVirtualSize is the largest acceptable virtual size in bytes.
	// Zero means DefaultMaxVirtualSize.
	MaxVirtualSize int64
	// AllowBackingFile accepts images that name a backing file, for
	// callers that check the name themselves (an overlay they made).
	AllowBackingFile bool
}

// Problem is one reason an image is unsafe.
type Problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Verdict says whether an image is safe to hand to QEMU as a template.
type Verdict struct {
	Safe        bool      `json:"safe"`
	Problems    []Problem `json:"problems"`
	VirtualSize int64     `json:"virtual-size"`
	// Image is the inspected header; nil when the header is not valid.
	Image *Image `json:"-"`
}

func (v *Verdict) add(code, format string, args ...any) {
	v.Problems = append(v.Problems, Problem{Code: code, Message: fmt.Sprintf(format, args...)})
}

// Vet inspects the image in r and judges whether it is safe to use as a VM
// template that came from an untrusted source. An image is unsafe when its
// header is invalid, when it names a backing file (QEMU would open that
// path on the hypervisor: a template pointing at /etc/shadow or another
// tenant's disk is an attack), when its data lives in an external file,
// when it has incompatible features QEMU does not know, when it is
// encrypted, dirty or marked corrupt, when its virtual size exceeds the
// policy, or when its tables lie past the end of the file (a truncated
// download). All problems of a valid header are listed; an invalid header
// is one problem, the first rule it breaks.
//
// The returned error is for read errors only; an invalid image is a
// Verdict with Safe false.
func Vet(r io.ReaderAt, p Policy) (*Verdict, error) {
	maxSize := p.MaxVirtualSize
	if maxSize == 0 {
		maxSize = DefaultMaxVirtualSize
	}
	v := &Verdict{Problems: []Problem{}}
	img, err := Inspect(r)
	switch {
	case errors.Is(err, ErrNotQcow2):
		v.add(ProblemNotQcow2, "not a qcow2 image (no QFI\\xfb magic)")
	case errors.Is(err, ErrIncompatibleFeatures):
		v.add(ProblemUnknownFeatures, "%s", strings.TrimPrefix(err.Error(), "qcow2: invalid image: "))
	case errors.Is(err, ErrInvalid):
		v.add(ProblemInvalid, "%s", strings.TrimPrefix(err.Error(), "qcow2: "))
	case err != nil:
		return nil, err
	}
	if img == nil {
		return v, nil
	}
	v.Image = img
	v.VirtualSize = int64(img.Size &^ 511)
	if img.BackingFile != "" && !p.AllowBackingFile {
		how := "a file path"
		if strings.HasPrefix(img.BackingFile, "json:") || hasProtocol(img.BackingFile) {
			how = "a QEMU protocol name"
		}
		v.add(ProblemBackingFile, "image names backing file %q (format %q), %s QEMU would open on the host; a template must be self-contained", img.BackingFile, img.BackingFormat, how)
	}
	if img.DataFile != "" || img.IncompatibleFeatures&IncompatDataFile != 0 {
		v.add(ProblemDataFile, "image keeps its data in external file %q, which QEMU would open on the host", img.DataFile)
	}
	switch img.CryptMethod {
	case CryptAES:
		v.add(ProblemEncrypted, "image is encrypted with the legacy AES method")
	case CryptLUKS:
		v.add(ProblemEncrypted, "image is LUKS-encrypted")
	}
	if img.IncompatibleFeatures&IncompatDirty != 0 {
		v.add(ProblemDirty, "dirty bit set: refcounts are not up to date; run a check with repair before use")
	}
	if img.IncompatibleFeatures&IncompatCorrupt != 0 {
		v.add(ProblemCorrupt, "corrupt bit set: QEMU found metadata corruption in this image")
	}
	if v.VirtualSize > maxSize {
		v.add(ProblemTooLarge, "virtual size %d bytes exceeds the limit of %d bytes", v.VirtualSize, maxSize)
	}
	if size := readerSize(r); size >= 0 {
		end := func(off, n uint64) bool { return n > 0 && off+n > uint64(size) }
		cs := uint64(img.ClusterSize())
		if end(img.L1TableOffset, uint64(img.L1Size)*8) {
			v.add(ProblemTruncated, "L1 table ends at %d, past the end of the file (%d bytes)", img.L1TableOffset+uint64(img.L1Size)*8, size)
		}
		if end(img.RefcountTableOffset, uint64(img.RefcountTableClusters)*cs) && img.RefcountTableOffset >= uint64(size) {
			v.add(ProblemTruncated, "refcount table at %d is past the end of the file (%d bytes)", img.RefcountTableOffset, size)
		}
	}
	v.Safe = len(v.Problems) == 0
	return v, nil
}
