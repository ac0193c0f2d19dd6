// Package qemu executes a migrate.Plan: it live-migrates a running KVM/QEMU
// VM with its local (non-shared) disks to another QEMU, driving both over
// QMP the way libvirt does for
//
//	virsh migrate --live --copy-storage-inc   (disks planned Linked, sync "top")
//	virsh migrate --live --copy-storage-all   (disks planned Full, sync "full")
//
// without libvirt in between. QMP is spoken through go-qemu's qmp package;
// Monitor adds typed errors (*QMPError names the refused command) and
// JSON-marshalled arguments. Start runs a QEMU for tests, tools and
// benchmarks.
//
// # Steps
//
// Run takes a Migration (the plan, both monitors, two addresses) and goes
// through these steps; a failure is a *StepError naming the step and disk.
//
// Through errors.Is, a *StepError matches the sentinel of what went wrong,
// when there is one: ErrDisk (a disk differs from the plan), ErrState (a VM in the
// wrong run state), ErrJob (a mirror job failed), ErrMigration (the
// migration failed), ErrQMP (a *QMPError: QEMU refused a command) or
// ErrMonitor (the QMP connection failed); or the context's error when ctx
// ended.
//
//  1. check: each planned disk is found on both VMs by its device id (the
//     plan's Label, "vda"), and its virtual size on both sides must equal
//     the plan's, and the destination's format the plan's
//     DestinationFormat; the source VM must be running (or paused) and the
//     destination waiting for a migration (-incoming defer). Nothing has
//     been changed when this step fails.
//  2. export: the destination starts its NBD server (nbd-server-start on
//     NBDAddress) and exports each disk writable under its label
//     (block-export-add). Exporting activates the destination's images
//     before the migration hands them over, which is what makes them
//     writable.
//  3. mirror: the source opens each export as an NBD client node
//     (blockdev-add, "migrate-nbd-LABEL") and mirrors the disk's device
//     into it (blockdev-mirror, job "migrate-LABEL", sync from the plan).
//     Sync "top" copies only the data allocated in the top image: the
//     destination overlay reads the rest from its own copy of the
//     backing chain. Sync "full" copies everything into an image with no
//     backing. The copy mode is write-blocking unless told otherwise, so
//     guest writes during the copy reach the destination before they
//     complete. The step ends when every job is READY.
//  4. migrate: the destination listens (migrate-incoming on MigrateURI)
//     and the source, with the pause-before-switchover capability set,
//     sends the VM state (migrate) until query-migrate says
//     "pre-switchover": RAM is copied and the source VM has stopped, but
//     its device state is not sent yet and its disks are still active.
//  5. complete: each job is ended with block-job-cancel, which on a READY
//     mirror runs a last pass and finishes the copy without switching the
//     source to it; the jobs must end without error at offset == length.
//     The NBD client nodes are removed. Then migrate-continue lets the
//     switchover happen, until query-migrate says "completed".
//  6. resume: the destination removes the exports and stops the NBD
//     server; the destination VM, kept paused by -S until now, is resumed
//     with cont and must report "running". A VM that was paused on the
//     source stays paused on the destination.
//
// libvirt ends the mirror jobs after the migration has completed instead.
// On QEMU 7.2 that crashes the source when a background-mode mirror still
// has dirty data at the switchover, because completing the migration
// makes the source's disks and the mirror's target inactive before the
// last pass writes; ending the jobs in pre-switchover, the state QEMU
// provides for this, has the same result without the crash.
//
// On a failure, or when the context ends, Run cleans up with a context of
// its own (at most 30 s): it cancels the mirror jobs (forced
// block-job-cancel, then job-dismiss), removes the NBD client nodes, the
// exports and the NBD server, cancels an unfinished migration
// (migrate_cancel), turns pause-before-switchover off again, and resumes
// the source VM with cont if it was running before and the VM runs
// nowhere else. The destination VM is left as it is: QEMU cannot take
// back a migrate-incoming, and it exits by itself when an incoming
// migration fails, so the caller kills or discards it.
//
// # Addresses
//
// Run opens two listening sockets, both on the destination: the NBD
// server at NBDAddress ("HOST:PORT", port required, or "unix:PATH"), and
// the migration stream at MigrateURI ("tcp:HOST:PORT", port 0 letting the
// destination pick one, or "unix:PATH"). The source connects to the same
// addresses, so HOST must be an address of the destination that the
// source reaches. Tests use 127.0.0.1 only. Other migration transports
// ("exec:", "fd:", "rdma:") are refused.
//
// # Concurrency
//
// Monitor is safe for concurrent use (commands are serialised on the
// connection). Run uses the two monitors it is given and nothing else, so
// runs for different VMs may proceed concurrently, each with its own
// addresses; two runs for one VM may not. Process methods are safe for
// concurrent use. No goroutine outlives its owner: a Monitor's event
// goroutine ends with Close, a Process's with the process.
package qemu
