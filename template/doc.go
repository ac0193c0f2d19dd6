// Package template keeps VM template records for an orchestrator: one
// template shared by many zones, its details (such as UEFI=secure), which
// zones offer it, its copies on image stores and primary pools with their
// download states, and the volumes created from it.
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
// # Roles
//
// Repository composes small role interfaces (Registrar, Getter, Lister,
// Deleter, DetailStore, StoreRefs, Usages); code that only reads should ask
// for a Getter or a Lister.
package template
