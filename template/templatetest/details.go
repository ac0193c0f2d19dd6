package templatetest

import (
	"strings"

	"github.com/directdl/directdl/template"
)

var detailTests = []test{
	{"set-replace-remove", testDetails},
	{"invalid", testDetailsInvalid},
	{"per-template", testDetailsPerTemplate},
}

func testDetails(e *env) {
	n := newTemplate("detailed")
	n.Details = map[string]string{"UEFI": "secure", "rootDiskController": "scsi"}
	tpl := e.register(n, 1, 2)

	e.ok(e.repo.SetDetails(e.ctx, tpl.ID, map[string]string{"rootDiskController": "virtio", "nicAdapter": "e1000", "label": "ünï ✓"}), "SetDetails")
	want := map[string]string{"UEFI": "secure", "rootDiskController": "virtio", "nicAdapter": "e1000", "label": "ünï ✓"}
	e.sameDetails("Details after SetDetails", e.details(tpl.ID), want)
	e.sameDetails("Get after SetDetails", e.get(tpl.ID).Details, want)

	e.ok(e.repo.SetDetails(e.ctx, tpl.ID, nil), "SetDetails(nil)")
	e.ok(e.repo.SetDetails(e.ctx, tpl.ID, map[string]string{}), "SetDetails(empty)")
	e.sameDetails("Details after SetDetails of nothing", e.details(tpl.ID), want)

	e.ok(e.repo.RemoveDetail(e.ctx, tpl.ID, "nicAdapter"), "RemoveDetail(nicAdapter)")
	delete(want, "nicAdapter")
	e.sameDetails("Details after RemoveDetail", e.details(tpl.ID), want)
	e.is(e.repo.RemoveDetail(e.ctx, tpl.ID, "nicAdapter"), template.ErrNotFound, "RemoveDetail of a removed key")
	e.is(e.repo.RemoveDetail(e.ctx, tpl.ID, "uefi"), template.ErrNotFound, "RemoveDetail(uefi): keys are case-sensitive")
	e.sameDetails("Details after failed RemoveDetail", e.details(tpl.ID), want)

	for k := range want {
		e.ok(e.repo.RemoveDetail(e.ctx, tpl.ID, k), "RemoveDetail(%s)", k)
	}
	if d := e.details(tpl.ID); len(d) != 0 {
		e.t.Errorf("Details after removing every key: got %v, want none", d)
	}
	e.sameZones("Get after removing every detail", e.get(tpl.ID).Zones, []template.ZoneID{1, 2})
}

func testDetailsInvalid(e *env) {
	tpl := e.register(newTemplate("strict"), 1)
	e.ok(e.repo.SetDetails(e.ctx, tpl.ID, map[string]string{"UEFI": "secure"}), "SetDetails")
	e.is(e.repo.SetDetails(e.ctx, tpl.ID, map[string]string{"ok": "1", "": "x"}), template.ErrInvalid, "SetDetails with an empty key")
	e.is(e.repo.SetDetails(e.ctx, tpl.ID, map[string]string{strings.Repeat("k", 256): "x"}), template.ErrInvalid, "SetDetails with a 256-byte key")
	e.sameDetails("Details after invalid SetDetails", e.details(tpl.ID), map[string]string{"UEFI": "secure"})

	for _, id := range []template.ID{0, tpl.ID + 1000} {
		e.is(e.repo.SetDetails(e.ctx, id, map[string]string{"a": "b"}), template.ErrNotFound, "SetDetails(%d)", id)
		e.is(e.repo.RemoveDetail(e.ctx, id, "UEFI"), template.ErrNotFound, "RemoveDetail(%d)", id)
	}
	gone := e.register(newTemplate("gone"), 1)
	e.ok(e.repo.DeleteEverywhere(e.ctx, gone.ID, template.DeleteOptions{}), "DeleteEverywhere")
	e.is(e.repo.SetDetails(e.ctx, gone.ID, map[string]string{"a": "b"}), template.ErrNotFound, "SetDetails of a removed template")
	e.is(e.repo.RemoveDetail(e.ctx, gone.ID, "a"), template.ErrNotFound, "RemoveDetail of a removed template")
	e.removed(gone.ID)
}

func testDetailsPerTemplate(e *env) {
	a := e.register(newTemplate("a"), 1)
	b := e.register(newTemplate("b"), 1)
	e.ok(e.repo.SetDetails(e.ctx, a.ID, map[string]string{"UEFI": "secure"}), "SetDetails(a)")
	e.ok(e.repo.SetDetails(e.ctx, b.ID, map[string]string{"UEFI": "legacy"}), "SetDetails(b)")
	e.ok(e.repo.RemoveDetail(e.ctx, b.ID, "UEFI"), "RemoveDetail(b)")
	e.sameDetails("Details(a) after changing b's", e.details(a.ID), map[string]string{"UEFI": "secure"})
	if d := e.details(b.ID); len(d) != 0 {
		e.t.Errorf("Details(b): got %v, want none", d)
	}
}
