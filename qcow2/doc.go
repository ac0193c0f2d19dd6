// Package qcow2 creates, inspects, checks and rebases QCOW2 disk images
// natively, with no dependency beyond the standard library and no need for
// qemu-img on the machine.
//
// Everything is measured against QEMU 7.2 (Debian 12's qemu-img): images
// are created byte for byte as `qemu-img create -f qcow2` creates them,
// headers are validated with the rules QEMU applies when it opens an image,
// [Check] counts corruptions and leaks as `qemu-img check` does, and
// [Rebase] rewrites the header as `qemu-img rebase -u` does. The tests
// compare with qemu-img itself.
//
// # Creating images
//
// [Create] writes an image atomically: to a temporary file beside the
// target, synced, then renamed into place and the directory synced, so a
// crash or an error leaves either no image or a whole one (qemu-img writes
// in place with several syncs). [Options] mirrors qemu-img's options; its
// zero value, with a Size, is qemu-img's default image. [CreateAt] writes to
// any [io.WriterAt].
//
//	err := qcow2.Create("vm.qcow2", qcow2.Options{
//		BackingFile:   "template.qcow2", // size taken from the template
//		BackingFormat: "qcow2",          // required, as in QEMU 6.1 and later
//	})
//
// # Inspecting images
//
// [Inspect] reads an image's header from an [io.ReaderAt]: it reads at most
// one cluster, never allocates what a hostile header claims, and never opens
// the backing file. Each rule QEMU enforces has its own sentinel error
// ([ErrVersion], [ErrL1Table], ...), all wrapping [ErrInvalid]. [Image.Info]
// and [InfoFile] report what `qemu-img info --output=json` reports.
//
// [Vet] gives a verdict on an image downloaded from an untrusted source:
// a QCOW2 "template" that names a backing file makes QEMU open that path on
// the hypervisor, so such images, external data files, unknown
// incompatible features, encryption, dirty or corrupt flags, absurd sizes
// and truncated files are all reported.
//
// # Checking images
//
// [Check] walks the refcount table and blocks and every L1 and L2 table,
// the active one and each snapshot's, counts the references to every
// cluster and compares them with the stored refcounts: a stored count lower
// than the references is a corruption, a higher one a leak. [CheckResult]
// has qemu-img check's JSON keys and exit codes ([CheckResult.ExitCode]);
// its memory use is bounded whatever the image claims. [ReadSnapshots]
// lists the internal snapshots.
//
// # Concurrency
//
// Functions keep no state between calls and may be called concurrently on
// different images. Two calls that write the same image (Rebase, Create of
// the same path) must not run at the same time.
package qcow2
