package qcow2

import (
	"errors"
	"fmt"
)

// ErrInvalid is the parent of every error about a malformed or unsupported
// image: test with errors.Is(err, ErrInvalid). Each rule QEMU enforces when it
// opens an image has its own sentinel wrapped in ErrInvalid, so callers can
// tell, for example, a bad magic from a table that is too large.
var ErrInvalid = errors.New("qcow2: invalid image")

// Sentinels for the header rules (reference: QEMU's qcow2_do_open). Each
// wraps [ErrInvalid]; the error returned by [Inspect] wraps one of them and
// adds the offending value.
var (
	ErrNotQcow2             = fmt.Errorf("%w: not in qcow2 format", ErrInvalid)
	ErrTruncated            = fmt.Errorf("%w: header truncated", ErrInvalid)
	ErrVersion              = fmt.Errorf("%w: unsupported qcow2 version", ErrInvalid)
	ErrClusterSize          = fmt.Errorf("%w: unsupported cluster size", ErrInvalid)
	ErrHeaderLength         = fmt.Errorf("%w: bad header length", ErrInvalid)
	ErrBackingFileOffset    = fmt.Errorf("%w: invalid backing file offset", ErrInvalid)
	ErrBackingFileName      = fmt.Errorf("%w: invalid backing file name", ErrInvalid)
	ErrIncompatibleFeatures = fmt.Errorf("%w: unsupported incompatible features", ErrInvalid)
	ErrRefcountOrder        = fmt.Errorf("%w: reference count width too large", ErrInvalid)
	ErrCompressionType      = fmt.Errorf("%w: bad compression type", ErrInvalid)
	ErrSubclusterSize       = fmt.Errorf("%w: unsupported subcluster size", ErrInvalid)
	ErrEncryption           = fmt.Errorf("%w: bad encryption settings", ErrInvalid)
	ErrRefcountTable        = fmt.Errorf("%w: bad reference count table", ErrInvalid)
	ErrSnapshotTable        = fmt.Errorf("%w: bad snapshot table", ErrInvalid)
	ErrL1Table              = fmt.Errorf("%w: bad L1 table", ErrInvalid)
	ErrImageTooBig          = fmt.Errorf("%w: image is too big", ErrInvalid)
	ErrExtension            = fmt.Errorf("%w: bad header extension", ErrInvalid)
	ErrBackingFormat        = fmt.Errorf("%w: bad backing format extension", ErrInvalid)
	ErrDataFile             = fmt.Errorf("%w: bad external data file settings", ErrInvalid)
	// ErrBitmaps reports a persistent bitmap directory that QEMU refuses
	// when it opens the image (qcow2_load_dirty_bitmaps); [Check] returns
	// it.
	ErrBitmaps = fmt.Errorf("%w: bad persistent bitmaps", ErrInvalid)
)

// ErrCorrupt and ErrDirty refuse to modify an image whose header says QEMU
// found it corrupt, or whose refcounts are not up to date (dirty, with lazy
// refcounts): QEMU refuses the first and repairs the second when it opens
// the image read-write. Run `qemu-img check -r all` first.
var (
	ErrCorrupt = errors.New("qcow2: image is marked corrupt; refusing to modify it (repair it with qemu-img check -r all)")
	ErrDirty   = errors.New("qcow2: image is dirty (lazy refcounts not written back); refusing to modify it (repair it with qemu-img check -r all)")
)

// ErrInUse refuses to replace or rewrite an image that a running QEMU
// (or qemu-img, or anything using QEMU's image locks) has open: doing so
// under a running VM destroys its disk. Stop the VM first.
var ErrInUse = errors.New("qcow2: image is in use by a QEMU process (it holds QEMU's image lock)")

// ErrOptions is the parent of every error returned by [Options.Validate]:
// the requested image cannot be created as asked. The message names the
// option and, where there is one, the fix.
var ErrOptions = errors.New("qcow2: invalid options")

// ErrTooLarge reports a virtual size beyond what QEMU accepts for the
// cluster size (the L1 table would exceed 32 MiB). It wraps [ErrOptions].
var ErrTooLarge = fmt.Errorf("%w: image size too large for the cluster size", ErrOptions)

func invalid(parent error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{parent}, args...)...)
}
