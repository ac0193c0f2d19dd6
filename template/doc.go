// Package template keeps VM template records for an orchestrator: one
// template shared by many zones, its details (such as UEFI=secure), which
// zones offer it, its copies on image stores and primary pools with their
// download states, and the volumes created from it.
//
// # Use
//
// A [Repository] is the whole record-keeping; [NewMemory] gives one in
// memory (tests, examples, single-process tools) and package
// template/sqlrepo one in SQLite or PostgreSQL that survives restarts. A
// template is registered in the zones that offer it, then deleted per
// zone:
//
//	repo := template.NewMemory() // or sqlrepo.Open(ctx, "templates.sqlite")
//	defer repo.Close()
//	t, err := repo.Register(ctx, template.NewTemplate{
//		Name: "centos-9", URL: "https://mirror.example/centos.qcow2",
//		Details: map[string]string{"UEFI": "secure"},
//	}, 1, 2) // zones 1 and 2
//	res, err := repo.DeleteFromZone(ctx, t.ID, 2, template.DeleteOptions{})
//	// zone 1 still offers t, with UEFI=secure; res.Removed is false
//
// [NewTemplate]'s zero values are defaults: an empty UUID gets a random one,
// Format is QCOW2 and Type USER. IDs go up and are never reused.
//
// # Zones
//
// Deleting a template from one zone removes only that zone's ref and the
// store refs in that zone. The template and its details stay while any
// other zone offers it; when the last zone goes, the template is
// soft-deleted and its details removed, in one transaction, exactly once
// however many zones are deleted at the same moment. CloudStack 4.19 and
// 4.20 wiped the details in every zone when a template was deleted from one
// (apache/cloudstack#10600); this package's contract makes that impossible,
// and the conformance suite in templatetest checks it on every
// implementation. Direct-download templates are deleted per zone too.
//
// # Store refs
//
// A store ref's DownloadState changes only along the table of CanTransition
// (see Next); any other change is a *TransitionError, never a silent
// overwrite. Every update names the Version it read, so two agents
// reporting progress cannot overwrite each other: the second gets a
// *ConflictError and reads again.
//
// # Errors
//
// Every implementation reports the same sentinels, for errors.Is:
// [ErrNotFound] (an unknown or removed template, a zone that does not offer
// it), [ErrInvalid] (bad input, named in the message), [ErrConflict] (a
// taken UUID, a store ref that exists, or a [*ConflictError] for a stale
// version), [ErrInUse] (an [*InUseError] listing the volumes that use the
// template) and [ErrTransition] (a [*TransitionError] naming the states
// allowed).
//
// # Roles
//
// Repository composes small role interfaces (Registrar, Getter, Lister,
// Deleter, DetailStore, StoreRefs, Usages); code that only reads should ask
// for a Getter or a Lister.
//
// # Concurrency
//
// Implementations of Repository are safe for concurrent use by multiple
// goroutines, and the SQL ones by several processes: concurrent deletes of
// one template remove it exactly once, and concurrent updates of one store
// ref cannot both succeed. The conformance suite in template/templatetest
// checks both. The package keeps no state outside a Repository.
package template
