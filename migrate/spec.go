package migrate

import (
	"context"
	"errors"
	"fmt"
)

// Spec is what the planner is told about one VM's migration: its disks on
// the source host, the destination's storage and what it already holds, and
// the facts about both hosts that preflight compares. A Spec is plain data
// and JSON-serialisable (ddctl migrate reads one from a file).
type Spec struct {
	// VM names the VM in messages and in the virsh command line; optional.
	VM string `json:"vm,omitempty"`
	// Disks are the VM's disks, in the order the VM has them. At least one.
	Disks []Disk `json:"disks"`
	// Source describes the source host. Its Files, when given, are digests
	// recorded for the source's backing files, so that the planner need not
	// read them to learn their content identity.
	Source Host `json:"source"`
	// Destination describes the destination host and its storage.
	Destination Destination `json:"destination"`
	// Policy says which strategies the planner may choose.
	Policy Policy `json:"policy"`
}

// Disk is one disk of the VM as the source host has it.
type Disk struct {
	// Label is the disk's target name ("vda"), which libvirt's
	// --migrate-disks and the QEMU device id use. Required and unique.
	Label string `json:"label"`
	// Path is the source image, readable where the planner runs: its
	// backing chain is read from it, never taken from its name.
	Path string `json:"path"`
	// Format is the image format the VM opens Path with: "qcow2" or "raw".
	// Empty means "qcow2". A qcow2 Path that does not parse as qcow2, or a
	// raw one that does, is refused: the VM's definition disagrees with
	// the disk.
	Format string `json:"format,omitempty"`
	// Template is the UUID of the template the disk was cloned from, if
	// the orchestrator knows it; it is looked up with the TemplateLookup
	// to fetch a base the destination lacks. Empty for disks without one.
	Template string `json:"template,omitempty"`
	// Destination is the path the disk gets on the destination host.
	// Empty means the destination directory joined with Path's file name,
	// which is what libvirt assumes when the domain XML is not rewritten.
	Destination string `json:"destination,omitempty"`
}

// Host is what preflight compares between the two hosts, and what the
// planner knows of the files on one of them.
type Host struct {
	// QEMU and Libvirt are the versions of QEMU and libvirt, as
	// "7.2.0" or "QEMU emulator version 7.2.19 (Debian ...)": the first
	// dotted number is taken. Empty means unknown, and preflight then
	// warns instead of comparing.
	QEMU    string `json:"qemu,omitempty"`
	Libvirt string `json:"libvirt,omitempty"`
	// Files are images on the host with what is known of them: the
	// destination's inventory, or digests recorded for the source's
	// backing files.
	Files []File `json:"files,omitempty"`
}

// Destination is the destination host and its storage directory.
type Destination struct {
	Host
	// Dir is the storage directory (the primary storage pool's path) on
	// the destination host. Required, absolute.
	Dir string `json:"dir"`
	// FreeBytes is the free space in Dir, in bytes. Zero means unknown:
	// when Local is set it is measured, otherwise preflight warns.
	FreeBytes int64 `json:"free-bytes,omitempty"`
	// URI is the destination's libvirt URI, for the virsh command line;
	// empty puts DEST_URI there.
	URI string `json:"uri,omitempty"`
	// Local says the destination's storage is reachable at the same paths
	// where the planner runs (the planner runs on the destination host, or
	// the storage is shared with it): the planner then inspects and hashes
	// the destination's files itself, measures the free space and checks
	// that Dir is writable. Without it the planner knows of the
	// destination only what Files says.
	Local bool `json:"local,omitempty"`
}

// File is one image on a host, as an inventory records it.
type File struct {
	// Path is the file's absolute path, or a path relative to the
	// destination directory (in Destination.Files).
	Path string `json:"path"`
	// Format is "qcow2" or "raw"; empty when unknown.
	Format string `json:"format,omitempty"`
	// VirtualSize is the guest-visible size in bytes; 0 when unknown.
	VirtualSize int64 `json:"virtual-size,omitempty"`
	// Digest is the content identity: a checksum of the whole file in any
	// form the template repository uses ("sha256:HEX", "{SHA-256}HEX",
	// bare hex for MD5), as recorded when the file was downloaded and
	// verified. A file without a digest is never taken for a base the
	// source has: equal names and sizes prove nothing.
	Digest string `json:"digest,omitempty"`
}

// Policy limits the planner's choices. The zero value allows every
// strategy.
type Policy struct {
	// NoLinked forces full copies: every disk gets a destination image
	// with no backing file and the whole content is copied.
	NoLinked bool `json:"no-linked,omitempty"`
	// NoFetch forbids fetching a base the destination lacks, so such
	// disks are copied in full.
	NoFetch bool `json:"no-fetch,omitempty"`
	// NoHash forbids reading source backing files to learn their digest;
	// only digests in Spec.Source.Files are then used. Hashing reads each
	// backing file once per plan.
	NoHash bool `json:"no-hash,omitempty"`
}

// TemplateLookup finds the template a disk was cloned from. A
// template.Repository satisfies it: it looks up active templates only, so
// a deleted template is not found.
type TemplateLookup interface {
	// TemplateSource returns where the active template with this UUID can
	// be downloaded from and its registered checksum. found is false, with
	// a nil error, when no active template has the UUID: never registered,
	// or deleted. An error means the lookup itself failed.
	TemplateSource(ctx context.Context, uuid string) (url, checksum string, found bool, err error)
}

// Fetcher downloads a file and verifies it. A download.Client satisfies it.
type Fetcher interface {
	// Fetch downloads url to path, which it creates atomically: on success
	// the file is complete and matches checksum (in any form the template
	// repository uses); on failure nothing is left at path.
	Fetch(ctx context.Context, url, path, checksum string) error
}

// Templates is a TemplateLookup over a list, for callers that have no
// repository (ddctl's JSON list, tests). Removed templates are not found.
type Templates []TemplateRecord

// TemplateRecord is one template in a Templates list.
type TemplateRecord struct {
	UUID     string `json:"uuid"`
	URL      string `json:"url"`
	Checksum string `json:"checksum"`
	Removed  bool   `json:"removed,omitempty"`
}

// TemplateSource implements TemplateLookup.
func (t Templates) TemplateSource(ctx context.Context, uuid string) (url, checksum string, found bool, err error) {
	for _, r := range t {
		if r.UUID == uuid && !r.Removed {
			return r.URL, r.Checksum, true, nil
		}
	}
	return "", "", false, nil
}

var _ TemplateLookup = Templates(nil)

// ErrSpec is wrapped by every error about a Spec that cannot be planned as
// given: a missing or duplicate label, a relative directory, a source image
// that cannot be read or whose format disagrees with the Spec.
var ErrSpec = errors.New("migrate: invalid spec")

// SpecError names the disk (or field) at fault and what to fix.
type SpecError struct {
	Disk   string // the disk's label, "" for a VM-wide field
	Reason string
	Err    error // the underlying error, if any
}

// Error names the disk, when the problem is one disk's, and the reason.
func (e *SpecError) Error() string {
	s := "migrate: "
	if e.Disk != "" {
		s += "disk " + e.Disk + ": "
	}
	s += e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrSpec and the underlying error.
func (e *SpecError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrSpec, e.Err}
	}
	return []error{ErrSpec}
}

func specErr(disk, format string, args ...any) error {
	return &SpecError{Disk: disk, Reason: fmt.Sprintf(format, args...)}
}
