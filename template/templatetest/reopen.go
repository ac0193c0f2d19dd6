package templatetest

import (
	"github.com/directdl/directdl/template"
)

var reopenTests = []test{
	{"persists", testReopenPersists},
	{"seed-001", testReopenSeed001},
}

// testReopenPersists checks that every kind of record survives a restart,
// and that IDs, UUIDs and versions carry on where they were.
func testReopenPersists(e *env) {
	n := newTemplate("durable")
	n.UUID = "9b2f6c1e-3d4a-4b5c-8d6e-7f8091a2b3c4"
	n.DirectDownload = true
	n.Details = map[string]string{"UEFI": "secure"}
	tpl := e.register(n, 1, 2)
	e.ok(e.repo.SetDetails(e.ctx, tpl.ID, map[string]string{"rootDiskController": "virtio"}), "SetDetails")
	e.ok(e.repo.CopyToZone(e.ctx, tpl.ID, 3), "CopyToZone")
	ref := e.createRef(template.StoreRef{Template: tpl.ID, Zone: 1, Store: 11, Kind: template.ImageStore})
	ref = e.updateRef(ref, template.StoreUpdate{State: template.DownloadInProgress, Progress: 40, InstallPath: "template/tmpl/1/11", Size: 1 << 30})
	pool := e.createRef(template.StoreRef{Template: tpl.ID, Zone: 3, Store: 31, Kind: template.PrimaryPool, State: template.Bypassed})
	use := template.Usage{Template: tpl.ID, Zone: 2, Volume: "vol-1"}
	e.ok(e.repo.AddUsage(e.ctx, use), "AddUsage")
	gone := e.register(newTemplate("gone"), 1)
	e.ok(e.repo.DeleteEverywhere(e.ctx, gone.ID, template.DeleteOptions{}), "DeleteEverywhere")
	before := e.snapshot(tpl.ID)
	goneBefore := e.get(gone.ID, template.IncludeRemoved())

	e.reopen()

	e.unchanged("after reopening", before)
	e.sameDetails("after reopening", e.details(tpl.ID), map[string]string{"UEFI": "secure", "rootDiskController": "virtio"})
	byUUID, err := e.repo.GetByUUID(e.ctx, n.UUID)
	e.ok(err, "GetByUUID after reopening")
	e.sameTemplate("GetByUUID after reopening", byUUID, before.tpl)
	e.sameRefs("StoreRefs after reopening", e.storeRefs(tpl.ID), []template.StoreRef{ref, pool})
	e.sameUsages("Usages after reopening", e.usages(tpl.ID), []template.Usage{use})
	e.removed(gone.ID)
	e.sameTemplate("removed template after reopening", e.get(gone.ID, template.IncludeRemoved()), goneBefore)

	// IDs, UUIDs and versions carry on.
	if next := e.register(newTemplate("next"), 1); next.ID <= gone.ID {
		e.t.Errorf("Register after reopening: got ID %d, want above %d", next.ID, gone.ID)
	}
	dup := newTemplate("dup")
	dup.UUID = n.UUID
	_, err = e.repo.Register(e.ctx, dup, 1)
	e.is(err, template.ErrConflict, "Register with a used UUID after reopening")
	_, err = e.repo.UpdateStoreRef(e.ctx, tpl.ID, 11, ref.Version-1, template.StoreUpdate{State: template.DownloadInProgress, Progress: 50})
	e.is(err, template.ErrConflict, "UpdateStoreRef at a stale version after reopening")
	e.updateRef(ref, template.StoreUpdate{State: template.DownloadInProgress, Progress: 50})
	_, err = e.repo.DeleteFromZone(e.ctx, tpl.ID, 2, template.DeleteOptions{})
	e.checkInUse("DeleteFromZone of a zone in use after reopening", err, tpl.ID, 2, "vol-1")
}

// testReopenSeed001 is the seed-001 scenario with a restart after each
// step.
func testReopenSeed001(e *env) {
	n := newTemplate("seed-001")
	n.Details = map[string]string{"UEFI": "secure"}
	tpl := e.register(n, 1, 2)
	e.createRef(template.StoreRef{Template: tpl.ID, Zone: 2, Store: 20, Kind: template.ImageStore})
	keep := e.createRef(template.StoreRef{Template: tpl.ID, Zone: 1, Store: 10, Kind: template.ImageStore})
	res, err := e.repo.DeleteFromZone(e.ctx, tpl.ID, 2, template.DeleteOptions{})
	e.ok(err, "DeleteFromZone(zone 2)")
	if res.Removed {
		e.t.Error("DeleteFromZone(zone 2): Removed is true")
	}

	e.reopen()

	got := e.get(tpl.ID)
	e.sameZones("after deleting zone 2 and reopening", got.Zones, []template.ZoneID{1})
	e.sameDetails("after deleting zone 2 and reopening", got.Details, map[string]string{"UEFI": "secure"})
	e.sameDetails("Details after deleting zone 2 and reopening", e.details(tpl.ID), map[string]string{"UEFI": "secure"})
	e.sameRefs("StoreRefs after deleting zone 2 and reopening", e.storeRefs(tpl.ID), []template.StoreRef{keep})

	res, err = e.repo.DeleteFromZone(e.ctx, tpl.ID, 1, template.DeleteOptions{})
	e.ok(err, "DeleteFromZone(zone 1)")
	if !res.Removed {
		e.t.Error("DeleteFromZone(zone 1), the last zone: Removed is false")
	}

	e.reopen()

	e.removed(tpl.ID)
}
