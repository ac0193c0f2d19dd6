package agent

import (
	"time"

	"github.com/directdl/directdl/migrate"
)

// The JSON documents of the API. Keys are snake_case, except an inventory
// file's, which are migrate.File's own ("virtual-size"), so that the
// "files" list of an inventory decodes straight into []migrate.File.

// DownloadRequest is the body of POST /v1/downloads: download URL into the
// pool under Name.
type DownloadRequest struct {
	// URL is the http, https or nfs URL of the template. Required.
	URL string `json:"url"`
	// Checksum is the template's checksum in any form download.ParseChecksum
	// reads ("{SHA-256}hex", "sha256:hex", bare hex for MD5). Optional:
	// without it the file's SHA-256 is computed and reported, but the job
	// is not Verified.
	Checksum string `json:"checksum,omitempty"`
	// Name is the file name in the pool: letters, digits, '.', '_', '-'
	// and '+', at most 255 bytes, not starting with '.'. Required.
	Name string `json:"name"`
	// Size, when positive, is the size the file must have.
	Size int64 `json:"size,omitempty"`
	// Format is "qcow2", "raw" or empty (taken from the file's first bytes).
	// A qcow2 file is vetted with qcow2.Vet; a file that is not what Format
	// says fails the job.
	Format string `json:"format,omitempty"`
}

// State is where a job is in its life: Queued, then Running, then one of
// Done, Failed and Canceled.
type State string

// The states of a job.
const (
	Queued   State = "queued"   // waiting for a download slot (-parallel)
	Running  State = "running"  // downloading or vetting
	Done     State = "done"     // in the pool, verified and vetted
	Failed   State = "failed"   // Error says why; nothing new is in the pool
	Canceled State = "canceled" // stopped; what was fetched is kept for a resume
)

// Final reports whether s is a state a job never leaves.
func (s State) Final() bool { return s == Done || s == Failed || s == Canceled }

// Job is a download job as the API reports it.
type Job struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// URL is the requested URL with passwords and signatures redacted.
	URL string `json:"url"`
	// Path is the file's path on the agent's host once Done.
	Path  string `json:"path"`
	State State  `json:"state"`
	// Done and Total are bytes of the file written and its size (-1 while
	// unknown); Rate is the recent rate in bytes per second; Percent is
	// Done over Total, 0 to 100.
	Done    int64   `json:"done"`
	Total   int64   `json:"total"`
	Rate    float64 `json:"rate"`
	Percent float64 `json:"percent"`
	// Created is when the job was accepted; Started when its download
	// began; Finished when it reached a final state.
	Created  time.Time  `json:"created"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	// Error says why a job Failed or was Canceled.
	Error string `json:"error,omitempty"`
	// Digest is the file's checksum as "alg:hex" (the requested algorithm,
	// or SHA-256), and Verified whether a requested checksum matched.
	Digest   string `json:"digest,omitempty"`
	Verified bool   `json:"verified"`
	// ResumedFrom is how many bytes an earlier, interrupted job for the
	// same name had already fetched.
	ResumedFrom int64 `json:"resumed_from"`
	// Format and VirtualSize describe the file once Done.
	Format      string `json:"format,omitempty"`
	VirtualSize int64  `json:"virtual_size,omitempty"`
}

// Event is what the agent POSTs to its callback URL when a job changes.
type Event struct {
	// Type is "queued", "running", "progress", "done", "failed" or
	// "canceled".
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Job  Job       `json:"job"`
}

// JobList is the body of GET /v1/downloads, oldest job first.
type JobList struct {
	Jobs []Job `json:"jobs"`
}

// Inventory is the body of GET /v1/inventory: what the pool holds.
type Inventory struct {
	// Pool is the pool's directory on the agent's host.
	Pool string `json:"pool"`
	// FreeBytes is the free space in Pool for unprivileged users; 0 when
	// unknown.
	FreeBytes int64 `json:"free_bytes"`
	// QEMU is the first line of `qemu-img --version`, when qemu-img is
	// installed; empty otherwise.
	QEMU  string `json:"qemu,omitempty"`
	Files []File `json:"files"`
}

// File is one image in the pool. Its first four fields are migrate.File's,
// under the same JSON keys.
type File struct {
	// Path is the file's name, relative to the pool.
	Path string `json:"path"`
	// Format is "qcow2" or "raw".
	Format string `json:"format"`
	// VirtualSize is the guest-visible size: a qcow2 header's size, or a
	// raw file's length.
	VirtualSize int64 `json:"virtual-size"`
	// Digest is the file's checksum: recorded when the agent downloaded
	// and verified it (or migrate.Prepare fetched it), or computed when
	// the inventory was asked for digests; empty when neither.
	Digest string `json:"digest,omitempty"`
	// DigestSource says where Digest came from: "download", "prepare" or
	// "computed".
	DigestSource string `json:"digest_source,omitempty"`
	// Size is the file's length in bytes.
	Size int64 `json:"size"`
	// Modified is the file's modification time.
	Modified time.Time `json:"modified"`
	// BackingFile and BackingFormat are a qcow2 image's backing file as
	// named in its header, never opened.
	BackingFile   string `json:"backing_file,omitempty"`
	BackingFormat string `json:"backing_format,omitempty"`
	// Problem says why a file named like an image could not be read as
	// one (a qcow2 header that breaks QEMU's rules).
	Problem string `json:"problem,omitempty"`
}

// MigrateFiles returns the inventory as migrate.Destination.Files takes
// it: paths relative to the pool, format, virtual size and digest.
func (inv *Inventory) MigrateFiles() []migrate.File {
	out := make([]migrate.File, 0, len(inv.Files))
	for _, f := range inv.Files {
		out = append(out, migrate.File{Path: f.Path, Format: f.Format, VirtualSize: f.VirtualSize, Digest: f.Digest})
	}
	return out
}

// Destination returns what migrate.Spec.Destination needs to know of this
// agent's host: the pool as Dir, its free space, the QEMU version and the
// files. The caller adds Libvirt and URI.
func (inv *Inventory) Destination() migrate.Destination {
	return migrate.Destination{
		Host:      migrate.Host{QEMU: inv.QEMU, Files: inv.MigrateFiles()},
		Dir:       inv.Pool,
		FreeBytes: inv.FreeBytes,
	}
}

// CertEntry is one trusted certificate of the agent's trust store.
type CertEntry struct {
	Alias     string    `json:"alias"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// SHA256 is the fingerprint of the certificate's DER, lowercase hex.
	SHA256 string `json:"sha256"`
	IsCA   bool   `json:"is_ca"`
	// PEM is the certificate itself.
	PEM string `json:"pem"`
}

// CertList is the body of GET /v1/truststore, sorted by alias.
type CertList struct {
	Entries []CertEntry `json:"entries"`
}

// ImportRequest is the body of PUT /v1/truststore/{alias}: one certificate
// as PEM (base64 DER is accepted too).
type ImportRequest struct {
	PEM string `json:"pem"`
}

// Health is the body of GET /v1/health.
type Health struct {
	OK      bool   `json:"ok"`
	Version string `json:"version"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	// Step, Disk and Path locate a failed migrate.Prepare.
	Step string `json:"step,omitempty"`
	Disk string `json:"disk,omitempty"`
	Path string `json:"path,omitempty"`
	// NoEndpoint marks a 404 for a path the API does not have (not an
	// absent job or alias): a client pointed at the wrong URL must not
	// take it for "already deleted".
	NoEndpoint bool `json:"no-endpoint,omitempty"`
}
