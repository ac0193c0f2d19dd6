// Package directdl is an SDK for getting virtual machine disk images from
// where they are published straight onto a hypervisor's primary storage:
// fast, verified, trusting the right TLS certificates, tracking which zones
// hold which template, and keeping virtual machines migratable after the
// template they were cloned from is gone.
//
// This package holds no code; it documents the module. Each package below is
// usable on its own, and each documents its defaults, its errors and which
// of its types are safe for concurrent use.
//
// # The direct-download problem
//
// Orchestrators such as Apache CloudStack normally stage a KVM template on
// secondary storage and copy it to primary storage from there. "Direct
// download" skips that step: the hypervisor's agent fetches the template
// from its HTTP(S), NFS or Metalink source when a virtual machine first needs
// it. That puts a download engine, a TLS trust store, a template catalogue
// and the QCOW2 format on the critical path of starting and migrating
// virtual machines, and each of them fails in practice: single-stream
// downloads without resume, checksums verified in a second full read,
// partial files left behind, "PKIX path building failed" behind a redirect
// to another host, template details lost when a template is deleted from one
// zone, and live migrations that fail once the template is deleted. directdl
// provides each piece as a Go package that gets these cases right.
//
// # Packages
//
//   - [github.com/directdl/directdl/download]: the download engine. A
//     Client fetches one file over parallel ranged connections
//     into a partial file beside the destination, verifies the checksum
//     while the bytes arrive (CloudStack's {SHA-256}hex, go-digest's
//     sha256:hex, bare MD5, go-getter's ?checksum=), resumes after a crash
//     without fetching or hashing again what it had, and renames the file
//     into place only when it is complete and verified. CloudStack's three
//     timeouts, a URL policy checked on every resolved address, retries with
//     backoff. Its sources: HTTP(S) with RFC 6249 mirrors, Metalink v3 and v4
//     (package download/metalink) with per-piece repair, and nfs:// URLs
//     through a pure-Go NFSv3 client (package download/nfs), no mount and no
//     root. download/getter, a module of its own, runs go-getter (s3, gcs,
//     git) into the same verification.
//   - [github.com/directdl/directdl/certstore]: TLS trust for downloads.
//     Probe follows every redirect hop and says which certificate is wrong
//     and what to trust instead; Complete fetches a missing intermediate
//     through AIA; a zone- and host-scoped certificate Registry syncs every
//     host's trust store and records a host synced only after reading its
//     store back (certstore/sqlregistry keeps it in SQLite or PostgreSQL);
//     JKS, PKCS12 and PEM stores compatible with keytool.
//   - [github.com/directdl/directdl/template]: zone-scoped template records
//     in memory or, with template/sqlrepo, in SQLite or PostgreSQL; deleting
//     a template from one zone never touches the other zones' details, and
//     store refs follow a download state machine with optimistic updates.
//     template/templatetest is the conformance suite every implementation
//     passes.
//   - [github.com/directdl/directdl/qcow2]: the QCOW2 image format in pure
//     Go, standard library only: create images byte for byte identical to
//     qemu-img's, inspect and validate a header with QEMU's own limits
//     without opening the backing file, give a safety verdict for a
//     downloaded template, check refcounts as qemu-img check does, and
//     rebase an image in place (like qemu-img rebase -u).
//   - [github.com/directdl/directdl/migrate]: plans KVM live migration with
//     non-shared disks from the images' real backing chains (linked, fetch
//     the template first, or full when the template was deleted), runs a
//     preflight of both hosts and prepares the destination's disks with
//     rollback; migrate/qemu carries the migration out over QMP.
//   - examples/ddctl: the command-line tool built on these packages
//     (download, probe, certs, keystore, template, qcow2 and migrate
//     commands).
//   - examples/quickstart: a tour of all of them that runs on this machine
//     only, with no network and no setup.
//   - examples/agent: a KVM-side agent on the public packages only, with
//     an authenticated HTTP JSON API (download into the pool, import and
//     revoke certificates, report the inventory, prepare a migration), and
//     its Go client, which is a certstore.TrustStore an orchestrator's
//     Registry can sync.
//
// Helpers that several packages share live under internal/, each package
// with a specific name; they are not part of the API.
//
// # Import rules
//
// So that each package can be used and reasoned about on its own:
//
//   - qcow2, download, certstore and template import no other top-level
//     package of this module, only internal packages, the standard library
//     and third-party modules.
//   - qcow2 uses only the standard library and imports no networking
//     package.
//   - migrate may import qcow2. It declares the small interfaces it needs
//     itself; template and download satisfy them without migrate importing
//     them.
//   - Only download/getter depends on hashicorp/go-getter.
//   - The examples may import anything; nothing imports them.
//
// A test in internal/importrules enforces these rules on the real import
// graph.
//
// # Where to start
//
// Run `go run ./examples/quickstart` for a tour, then read the documentation
// of the package for the part of the path you need, starting with its
// Example functions; examples/ddctl is the tool for operators and shows how
// each call is made.
package directdl
