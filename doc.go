// Package directdl is an SDK for getting virtual machine disk images from
// where they are published straight onto a hypervisor's primary storage:
// fast, verified, trusting the right TLS certificates, tracking which zones
// hold which template, and keeping virtual machines migratable after the
// template they were cloned from is gone.
//
// This package holds no code; it documents the module. Each package below is
// usable on its own.
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
// Available today:
//
//   - [github.com/directdl/directdl/qcow2]: the QCOW2 image format in pure
//     Go, standard library only: create images (including ones with a
//     backing file) byte for byte identical to qemu-img's, inspect and
//     validate a header from an io.ReaderAt with QEMU's own limits and
//     without opening the backing file, give a safety verdict for a
//     downloaded template, check refcounts and L1/L2 tables as qemu-img
//     check does, and rebase an image in place (like qemu-img rebase -u).
//   - examples/ddctl: the command-line tool built on the SDK; today its
//     qcow2 subcommands (create, info, check, rebase, inspect).
//   - examples/quickstart: a tour that runs on this machine only, with no
//     network and no setup; today it covers qcow2.
//
// In progress or planned, following the same design:
//
//   - [github.com/directdl/directdl/download] (in progress): today the
//     checksum value type (CloudStack's {SHA-256}hex, go-digest's
//     sha256:hex, bare MD5, go-getter's ?checksum=); next, a parallel,
//     resumable download engine that verifies the checksum while downloading and only renames a fully
//     verified file into place, with CloudStack's three timeouts, a URL
//     policy checked at dial time, and bounded, deduplicated concurrency.
//     Its subpackages: download/metalink (planned), a Metalink v3 and v4
//     parser with a mirror and piece model; download/nfs (planned), an NFS
//     source through a pure-Go NFSv3 client, with no mount and no root; and
//     download/getter (planned), an adapter for hashicorp/go-getter sources
//     with safe settings.
//   - certstore (planned): a redirect-aware TLS probe that tells which hop
//     and which certificate is the problem, completion of missing
//     intermediates, a zone and host trust registry with sync, JKS, PKCS12,
//     PEM and x509.CertPool outputs, and expiry reports.
//   - template (planned): a zone-scoped template model and Repository
//     interface, in memory and on SQL (embedded SQLite by default, or
//     PostgreSQL), where deleting a template from one zone leaves the other
//     zones intact. Its subpackage template/templatetest (planned) is the
//     conformance suite every Repository implementation runs.
//   - migrate (planned): plans and prepares storage for KVM live migration
//     with non-shared disks, including disks whose template was deleted, and
//     drives QEMU to carry it out.
//   - examples/agent (planned): a minimal custom KVM agent built on the SDK.
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
// Run `go run ./examples/quickstart` for a tour, then read the qcow2 package
// documentation; examples/ddctl is the tool for operators and shows how each
// call is made.
package directdl
