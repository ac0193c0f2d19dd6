package templatetest

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/directdl/directdl/template"
)

var deleteTests = []test{
	{"seed-001", func(e *env) { testSeed001(e, false) }},
	{"seed-001-direct-download", func(e *env) { testSeed001(e, true) }},
	{"zone-not-offering", testDeleteZoneNotOffering},
	{"zone-store-refs", testDeleteZoneStoreRefs},
	{"everywhere", testDeleteEverywhere},
	{"in-use", testDeleteInUse},
	{"in-use-force", testDeleteInUseForce},
	{"concurrent-zones", testConcurrentZoneDeletes},
	{"concurrent-with-everywhere", testConcurrentDeleteEverywhere},
}

// testSeed001 is apache/cloudstack#10600: deleting a template from one zone
// must not touch its details while another zone offers it. Direct-download
// templates, whose copies bypass image stores, are deleted per zone too.
func testSeed001(e *env, direct bool) {
	n := newTemplate("seed-001")
	n.DirectDownload = direct
	n.Details = map[string]string{"UEFI": "secure"}
	tpl := e.register(n, 1, 2)
	other := e.register(newTemplate("bystander"), 1, 2)
	e.ok(e.repo.SetDetails(e.ctx, other.ID, map[string]string{"UEFI": "legacy"}), "SetDetails(bystander)")
	var refs []template.StoreRef
	for _, z := range []template.ZoneID{1, 2} {
		ref := template.StoreRef{Template: tpl.ID, Zone: z, Store: template.StoreID(z) * 10, Kind: template.ImageStore}
		if direct {
			ref.Kind, ref.State = template.PrimaryPool, template.Bypassed
		}
		refs = append(refs, e.createRef(ref))
	}

	res, err := e.repo.DeleteFromZone(e.ctx, tpl.ID, 2, template.DeleteOptions{})
	e.ok(err, "DeleteFromZone(zone 2)")
	if res.Removed {
		e.t.Error("DeleteFromZone(zone 2): Removed is true while zone 1 offers the template")
	}
	got := e.get(tpl.ID)
	e.sameZones("Get after deleting zone 2", got.Zones, []template.ZoneID{1})
	e.sameDetails("Get after deleting zone 2", got.Details, map[string]string{"UEFI": "secure"})
	e.sameDetails("Details after deleting zone 2", e.details(tpl.ID), map[string]string{"UEFI": "secure"})
	if !got.Removed.IsZero() {
		e.t.Errorf("Get after deleting zone 2: Removed is %v, want zero", got.Removed)
	}
	e.sameRefs("StoreRefs after deleting zone 2", e.storeRefs(tpl.ID), refs[:1])
	page, err := e.repo.List(e.ctx, template.ListOptions{Zone: 1})
	e.ok(err, "List(zone 1)")
	if !slices.Equal(ids(page.Templates), []template.ID{tpl.ID, other.ID}) {
		e.t.Errorf("List(zone 1) after deleting zone 2: got %v, want [%d %d]", ids(page.Templates), tpl.ID, other.ID)
	}
	page, err = e.repo.List(e.ctx, template.ListOptions{Zone: 2})
	e.ok(err, "List(zone 2)")
	if !slices.Equal(ids(page.Templates), []template.ID{other.ID}) {
		e.t.Errorf("List(zone 2) after deleting zone 2: got %v, want [%d]", ids(page.Templates), other.ID)
	}

	res, err = e.repo.DeleteFromZone(e.ctx, tpl.ID, 1, template.DeleteOptions{})
	e.ok(err, "DeleteFromZone(zone 1)")
	if !res.Removed {
		e.t.Error("DeleteFromZone(zone 1), the last zone: Removed is false")
	}
	e.removed(tpl.ID)
	_, err = e.repo.DeleteFromZone(e.ctx, tpl.ID, 1, template.DeleteOptions{})
	e.is(err, template.ErrNotFound, "DeleteFromZone(zone 1) again")

	after := e.get(other.ID)
	e.sameZones("bystander", after.Zones, []template.ZoneID{1, 2})
	e.sameDetails("bystander", after.Details, map[string]string{"UEFI": "legacy"})
}

func ids(ts []template.Template) []template.ID {
	out := make([]template.ID, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func testDeleteZoneNotOffering(e *env) {
	tpl := e.register(newTemplate("z1"), 1)
	before := e.snapshot(tpl.ID)
	_, err := e.repo.DeleteFromZone(e.ctx, tpl.ID, 2, template.DeleteOptions{})
	e.is(err, template.ErrNotFound, "DeleteFromZone of a zone not offering it")
	_, err = e.repo.DeleteFromZone(e.ctx, tpl.ID, 2, template.DeleteOptions{Force: true})
	e.is(err, template.ErrNotFound, "forced DeleteFromZone of a zone not offering it")
	e.unchanged("after DeleteFromZone of a zone not offering it", before)
}

// testDeleteZoneStoreRefs checks that a zone's deletion removes the store
// refs in that zone and no others, and that they can be made again.
func testDeleteZoneStoreRefs(e *env) {
	tpl := e.register(newTemplate("refs"), 1, 2, 3)
	other := e.register(newTemplate("other"), 2)
	var keep []template.StoreRef
	for _, r := range []template.StoreRef{
		{Zone: 1, Store: 11}, {Zone: 2, Store: 21}, {Zone: 2, Store: 22}, {Zone: 3, Store: 31},
	} {
		r.Template, r.Kind = tpl.ID, template.ImageStore
		ref := e.createRef(r)
		if r.Zone != 2 {
			keep = append(keep, e.updateRef(ref, template.StoreUpdate{State: template.DownloadInProgress, Progress: 10}))
		}
	}
	otherRef := e.createRef(template.StoreRef{Template: other.ID, Zone: 2, Store: 21, Kind: template.ImageStore})

	res, err := e.repo.DeleteFromZone(e.ctx, tpl.ID, 2, template.DeleteOptions{})
	e.ok(err, "DeleteFromZone(zone 2)")
	if res.Removed {
		e.t.Error("DeleteFromZone(zone 2): Removed is true")
	}
	e.sameRefs("StoreRefs after deleting zone 2", e.storeRefs(tpl.ID), keep)
	_, err = e.repo.StoreRef(e.ctx, tpl.ID, 21)
	e.is(err, template.ErrNotFound, "StoreRef of a deleted zone's store")
	e.sameRefs("other template's StoreRefs", e.storeRefs(other.ID), []template.StoreRef{otherRef})
	_, err = e.repo.CreateStoreRef(e.ctx, template.StoreRef{Template: tpl.ID, Zone: 2, Store: 21, Kind: template.ImageStore})
	e.is(err, template.ErrNotFound, "CreateStoreRef in the deleted zone")

	e.ok(e.repo.CopyToZone(e.ctx, tpl.ID, 2), "CopyToZone(2) again")
	again := e.createRef(template.StoreRef{Template: tpl.ID, Zone: 2, Store: 21, Kind: template.ImageStore})
	if again.Version != 1 || again.State != template.NotDownloaded {
		e.t.Errorf("CreateStoreRef after copying again: got version %d state %s, want 1 %s", again.Version, again.State, template.NotDownloaded)
	}
}

func testDeleteEverywhere(e *env) {
	n := newTemplate("everywhere")
	n.Details = map[string]string{"UEFI": "secure"}
	tpl := e.register(n, 1, 2, 3)
	other := e.register(newTemplate("other"), 1, 2)
	e.createRef(template.StoreRef{Template: tpl.ID, Zone: 1, Store: 1, Kind: template.ImageStore})
	e.createRef(template.StoreRef{Template: tpl.ID, Zone: 3, Store: 3, Kind: template.ImageStore})
	otherRef := e.createRef(template.StoreRef{Template: other.ID, Zone: 1, Store: 1, Kind: template.ImageStore})
	e.ok(e.repo.AddUsage(e.ctx, template.Usage{Template: other.ID, Zone: 1, Volume: "vol-other"}), "AddUsage(other)")

	e.ok(e.repo.DeleteEverywhere(e.ctx, tpl.ID, template.DeleteOptions{}), "DeleteEverywhere")
	e.removed(tpl.ID)
	e.is(e.repo.DeleteEverywhere(e.ctx, tpl.ID, template.DeleteOptions{}), template.ErrNotFound, "DeleteEverywhere again")

	o := e.get(other.ID)
	e.sameZones("other template", o.Zones, []template.ZoneID{1, 2})
	e.sameRefs("other template's refs", e.storeRefs(other.ID), []template.StoreRef{otherRef})
	e.sameUsages("other template's usages", e.usages(other.ID), []template.Usage{{Template: other.ID, Zone: 1, Volume: "vol-other"}})
}

// checkInUse checks that err is an *InUseError of template id in zone
// naming vols (in any order).
func (e *env) checkInUse(what string, err error, id template.ID, zone template.ZoneID, vols ...string) {
	e.t.Helper()
	var iu *template.InUseError
	if !errors.As(err, &iu) {
		e.t.Errorf("%s: got error %v, want an *InUseError", what, err)
		return
	}
	e.is(err, template.ErrInUse, "%s", what)
	got := slices.Clone(iu.Volumes)
	slices.Sort(got)
	want := slices.Clone(vols)
	slices.Sort(want)
	if iu.Template != id || iu.Zone != zone || !slices.Equal(got, want) {
		e.t.Errorf("%s: got InUseError{Template: %d, Zone: %d, Volumes: %q}, want {%d, %d, %q}", what, iu.Template, iu.Zone, iu.Volumes, id, zone, want)
	}
}

func testDeleteInUse(e *env) {
	n := newTemplate("used")
	n.Details = map[string]string{"UEFI": "secure"}
	tpl := e.register(n, 1, 2, 3)
	e.createRef(template.StoreRef{Template: tpl.ID, Zone: 1, Store: 1, Kind: template.ImageStore})
	e.createRef(template.StoreRef{Template: tpl.ID, Zone: 2, Store: 2, Kind: template.ImageStore})
	for _, u := range []template.Usage{
		{Template: tpl.ID, Zone: 1, Volume: "vol-b"},
		{Template: tpl.ID, Zone: 1, Volume: "vol-a"},
		{Template: tpl.ID, Zone: 3, Volume: "vol-c"},
	} {
		e.ok(e.repo.AddUsage(e.ctx, u), "AddUsage(%+v)", u)
	}
	before := e.snapshot(tpl.ID)

	_, err := e.repo.DeleteFromZone(e.ctx, tpl.ID, 1, template.DeleteOptions{})
	e.checkInUse("DeleteFromZone(zone 1) in use", err, tpl.ID, 1, "vol-a", "vol-b")
	e.unchanged("after refused DeleteFromZone", before)

	err = e.repo.DeleteEverywhere(e.ctx, tpl.ID, template.DeleteOptions{})
	e.checkInUse("DeleteEverywhere in use", err, tpl.ID, 0, "vol-a", "vol-b", "vol-c")
	e.unchanged("after refused DeleteEverywhere", before)

	// Volumes in zones 1 and 3 do not keep zone 2 from going.
	res, err := e.repo.DeleteFromZone(e.ctx, tpl.ID, 2, template.DeleteOptions{})
	e.ok(err, "DeleteFromZone(zone 2), used only in zones 1 and 3")
	if res.Removed {
		e.t.Error("DeleteFromZone(zone 2): Removed is true")
	}
	got := e.get(tpl.ID)
	e.sameZones("after deleting zone 2", got.Zones, []template.ZoneID{1, 3})
	e.sameDetails("after deleting zone 2", got.Details, map[string]string{"UEFI": "secure"})
	e.sameUsages("after deleting zone 2", e.usages(tpl.ID), before.usages)

	// Once the volumes are gone the zone can go.
	e.ok(e.repo.RemoveUsage(e.ctx, template.Usage{Template: tpl.ID, Zone: 3, Volume: "vol-c"}), "RemoveUsage(vol-c)")
	res, err = e.repo.DeleteFromZone(e.ctx, tpl.ID, 3, template.DeleteOptions{})
	e.ok(err, "DeleteFromZone(zone 3) after its volume went")
	if res.Removed {
		e.t.Error("DeleteFromZone(zone 3): Removed is true")
	}
	_, err = e.repo.DeleteFromZone(e.ctx, tpl.ID, 1, template.DeleteOptions{})
	e.checkInUse("DeleteFromZone(zone 1), the last, in use", err, tpl.ID, 1, "vol-a", "vol-b")
	e.sameZones("after refused deletion of the last zone", e.get(tpl.ID).Zones, []template.ZoneID{1})
}

func testDeleteInUseForce(e *env) {
	tpl := e.register(newTemplate("forced"), 1, 2, 3)
	for _, u := range []template.Usage{
		{Template: tpl.ID, Zone: 1, Volume: "vol-1"},
		{Template: tpl.ID, Zone: 2, Volume: "vol-2a"},
		{Template: tpl.ID, Zone: 2, Volume: "vol-2b"},
		{Template: tpl.ID, Zone: 3, Volume: "vol-3"},
	} {
		e.ok(e.repo.AddUsage(e.ctx, u), "AddUsage(%+v)", u)
	}
	res, err := e.repo.DeleteFromZone(e.ctx, tpl.ID, 2, template.DeleteOptions{Force: true})
	e.ok(err, "forced DeleteFromZone(zone 2) in use")
	if res.Removed {
		e.t.Error("forced DeleteFromZone(zone 2): Removed is true")
	}
	e.sameZones("after forced deletion of zone 2", e.get(tpl.ID).Zones, []template.ZoneID{1, 3})
	e.sameUsages("after forced deletion of zone 2", e.usages(tpl.ID), []template.Usage{
		{Template: tpl.ID, Zone: 1, Volume: "vol-1"},
		{Template: tpl.ID, Zone: 3, Volume: "vol-3"},
	})
	e.ok(e.repo.DeleteEverywhere(e.ctx, tpl.ID, template.DeleteOptions{Force: true}), "forced DeleteEverywhere in use")
	e.removed(tpl.ID)
	err = e.repo.RemoveUsage(e.ctx, template.Usage{Template: tpl.ID, Zone: 1, Volume: "vol-1"})
	e.is(err, template.ErrNotFound, "RemoveUsage of a force-deleted template")

	last := e.register(newTemplate("forced-last"), 1)
	e.ok(e.repo.AddUsage(e.ctx, template.Usage{Template: last.ID, Zone: 1, Volume: "vol"}), "AddUsage")
	res, err = e.repo.DeleteFromZone(e.ctx, last.ID, 1, template.DeleteOptions{Force: true})
	e.ok(err, "forced DeleteFromZone of the last zone in use")
	if !res.Removed {
		e.t.Error("forced DeleteFromZone of the last zone: Removed is false")
	}
	e.removed(last.ID)
}

// zoneCount is how many zones the concurrent tests delete at once.
const zoneCount = 64

// testConcurrentZoneDeletes deletes every zone of a template at once, and
// half the zones of another: each template must end as if the deletes had
// run one by one, the first soft-deleted exactly once, and a third template
// in the same zones untouched.
func testConcurrentZoneDeletes(e *env) {
	all := zones(1, zoneCount)
	mk := func(name, uefi string) template.Template {
		n := newTemplate(name)
		n.Details = map[string]string{"UEFI": uefi}
		tpl := e.register(n, all...)
		for _, z := range all {
			e.createRef(template.StoreRef{Template: tpl.ID, Zone: z, Store: template.StoreID(z), Kind: template.ImageStore})
		}
		return tpl
	}
	doomed := mk("doomed", "secure")
	halved := mk("halved", "legacy")
	bystander := mk("bystander", "secure")
	e.ok(e.repo.AddUsage(e.ctx, template.Usage{Template: bystander.ID, Zone: 1, Volume: "vol-1"}), "AddUsage")
	before := e.snapshot(bystander.ID)

	var removed, halvedRemoved atomic.Int32
	parallel(zoneCount+zoneCount/2, func(i int) {
		id, zone := doomed.ID, template.ZoneID(i+1)
		if i >= zoneCount {
			id, zone = halved.ID, template.ZoneID(i-zoneCount+1)
		}
		res, err := e.repo.DeleteFromZone(e.ctx, id, zone, template.DeleteOptions{})
		if err != nil {
			e.t.Errorf("DeleteFromZone(%d, zone %d): %v", id, zone, err)
			return
		}
		if res.Removed && id == doomed.ID {
			removed.Add(1)
		} else if res.Removed {
			halvedRemoved.Add(1)
		}
	})
	if n := removed.Load(); n != 1 {
		e.t.Errorf("%d concurrent DeleteFromZone of every zone: %d reported Removed, want exactly 1", zoneCount, n)
	}
	e.removed(doomed.ID)

	if n := halvedRemoved.Load(); n != 0 {
		e.t.Errorf("deleting half the zones: %d reported Removed, want 0", n)
	}
	h := e.get(halved.ID)
	e.sameZones("template with half its zones deleted", h.Zones, zones(zoneCount/2+1, zoneCount))
	e.sameDetails("template with half its zones deleted", h.Details, map[string]string{"UEFI": "legacy"})
	refs := e.storeRefs(halved.ID)
	if len(refs) != zoneCount/2 || refs[0].Store != zoneCount/2+1 {
		e.t.Errorf("template with half its zones deleted: got %d store refs from store %v, want %d from %d", len(refs), refs[:min(1, len(refs))], zoneCount/2, zoneCount/2+1)
	}

	e.unchanged("template in the same zones", before)
}

// testConcurrentDeleteEverywhere races DeleteEverywhere with deletes of
// every zone: exactly one of them soft-deletes the template.
func testConcurrentDeleteEverywhere(e *env) {
	const n = 16
	for round := range 4 {
		tpl := e.register(newTemplate(fmt.Sprintf("raced-%d", round)), zones(1, n)...)
		var cleanups, everywhereOK atomic.Int32
		parallel(n+1, func(i int) {
			if i == n {
				err := e.repo.DeleteEverywhere(e.ctx, tpl.ID, template.DeleteOptions{})
				switch {
				case err == nil:
					cleanups.Add(1)
					everywhereOK.Add(1)
				case !errors.Is(err, template.ErrNotFound):
					e.t.Errorf("DeleteEverywhere racing zone deletes: %v", err)
				}
				return
			}
			res, err := e.repo.DeleteFromZone(e.ctx, tpl.ID, template.ZoneID(i+1), template.DeleteOptions{})
			switch {
			case err == nil && res.Removed:
				cleanups.Add(1)
			case err != nil && !errors.Is(err, template.ErrNotFound):
				e.t.Errorf("DeleteFromZone(zone %d) racing DeleteEverywhere: %v", i+1, err)
			}
		})
		if c := cleanups.Load(); c != 1 {
			e.t.Errorf("round %d: %d calls soft-deleted the template (DeleteEverywhere succeeded: %d), want exactly 1", round, c, everywhereOK.Load())
		}
		e.removed(tpl.ID)
	}
}
