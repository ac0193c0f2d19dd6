// Package migrate plans and prepares the destination storage of a KVM live
// migration with non-shared disks, including disks whose template was
// deleted, and says what libvirt needs to carry it out. Package
// migrate/qemu carries it out itself, over QMP, between two QEMU processes.
//
// # Why
//
// A VM on local storage is cloned from a template: its disk is a qcow2
// overlay whose backing file is the template's image on the same host. To
// migrate it live, libvirt either copies only the overlay
// (VIR_MIGRATE_NON_SHARED_INC), which needs the identical base on the
// destination, or the whole disk (VIR_MIGRATE_NON_SHARED_DISK), which needs
// an empty image of the same size there. CloudStack 4.20 decides from the
// template's database row; once the template is deleted it picks the whole
// copy but does not create the destination disk, and libvirt fails
// (apache/cloudstack#10246). Templates evicted from primary storage make
// the base missing on the destination even while the template exists.
//
// # Planning
//
// NewPlan reads each disk's backing chain from the images themselves
// (qcow2 headers; never a file name or a database row), resolves each
// backing name where QEMU would resolve it on the destination, and proves
// a destination base identical by format, virtual size and digest: a
// digest recorded in the Spec's inventory, or one it computes when the
// destination is Local. It then chooses per disk:
//
//   - Linked: the destination holds the identical chain; the destination
//     disk is an overlay with the same backing name and format, and only
//     the top layer is copied (QEMU mirror sync=top).
//   - Linked after a fetch: the base is missing, but the disk's template is
//     active in the TemplateLookup and its checksum is the source base's
//     digest; Prepare fetches it first with a Fetcher.
//   - Full: no usable base (the template was deleted, a base differs, the
//     policy says so); the destination disk is an empty image of exactly
//     the source's virtual size with no backing file, and everything is
//     copied (sync=full).
//
// libvirt's flag is per VM, so one disk that must be copied whole makes
// every disk Full, and the plan says so. Every decision carries its reason
// in plain words, and a Plan is JSON. Plan.LibvirtFlags, Plan.Virsh and
// Plan.DomainDisksXML are what a libvirt user passes.
//
//	plan, err := migrate.NewPlan(ctx, spec, repo) // repo: a template.Repository
//	if err != nil { ... }                          // the spec cannot be planned
//	if err := plan.Err(); err != nil { ... }       // preflight found errors
//	done, err := migrate.Prepare(ctx, plan, client) // on the destination; client: a *download.Client
//
// # Preflight
//
// NewPlan also checks the plan against the hosts and lists what it finds in
// Plan.Problems, each naming the disk and the fix: QEMU and libvirt versions
// (the destination may not be older; different versions are a warning),
// the destination's free space, destination paths that collide or exist,
// directories that are missing or not writable, backing names that resolve
// differently on the destination (relative names outside its directory,
// protocol and JSON names). Plan.Err returns a *PreflightError when any is
// an Error.
//
// # Preparing
//
// Prepare, on the destination host, fetches the missing bases and creates
// the disks with package qcow2. Files appear atomically and never replace
// another; a file already there exactly as planned (an earlier Prepare) is
// kept, anything else stops Prepare before it changes anything; a failed
// step removes everything Prepare created.
//
// # Errors
//
// A Spec that cannot be planned is a *SpecError (ErrSpec) naming the disk
// and the reason; a plan whose preflight found errors gives a
// *PreflightError (ErrPreflight) from Plan.Err, listing each problem with
// its fix; a Prepare that failed is a *PrepareError (ErrPrepare) naming the
// disk, the step and the path, after everything it created was removed.
// Match them with errors.Is or errors.As.
//
// # Dependencies
//
// The package imports qcow2 but neither template nor download: it declares
// the two interfaces it needs, TemplateLookup and Fetcher, and a
// template.Repository and a *download.Client satisfy them.
//
// # Concurrency
//
// NewPlan and Prepare keep no state between calls and may run concurrently
// for different VMs. Prepares of plans that share destination paths should
// not run at once: a file the other is creating makes one of them fail, and
// it removes only the files it created itself.
package migrate
