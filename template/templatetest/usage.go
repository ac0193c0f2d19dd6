package templatetest

import (
	"github.com/directdl/directdl/template"
)

var usageTests = []test{
	{"add-remove", testUsages},
}

func testUsages(e *env) {
	tpl := e.register(newTemplate("used"), 1, 2)
	other := e.register(newTemplate("other"), 1)
	a := template.Usage{Template: tpl.ID, Zone: 1, Volume: "vol-a"}
	b := template.Usage{Template: tpl.ID, Zone: 2, Volume: "vol-b"}
	c := template.Usage{Template: tpl.ID, Zone: 2, Volume: "vol-a"} // same volume name, other zone
	o := template.Usage{Template: other.ID, Zone: 1, Volume: "vol-a"}
	for _, u := range []template.Usage{a, b, c, o, a} { // a twice: recorded once
		e.ok(e.repo.AddUsage(e.ctx, u), "AddUsage(%+v)", u)
	}
	e.sameUsages("Usages", e.usages(tpl.ID), []template.Usage{a, b, c})
	e.sameUsages("Usages of the other template", e.usages(other.ID), []template.Usage{o})

	e.is(e.repo.AddUsage(e.ctx, template.Usage{Template: tpl.ID, Zone: 3, Volume: "vol-x"}), template.ErrNotFound, "AddUsage in a zone not offering the template")
	e.is(e.repo.AddUsage(e.ctx, template.Usage{Template: tpl.ID + 1000, Zone: 1, Volume: "vol-x"}), template.ErrNotFound, "AddUsage of an unknown template")
	e.is(e.repo.AddUsage(e.ctx, template.Usage{Template: tpl.ID, Zone: 1}), template.ErrInvalid, "AddUsage with no volume")
	e.sameUsages("Usages after failed AddUsage", e.usages(tpl.ID), []template.Usage{a, b, c})

	e.ok(e.repo.RemoveUsage(e.ctx, a), "RemoveUsage(%+v)", a)
	e.is(e.repo.RemoveUsage(e.ctx, a), template.ErrNotFound, "RemoveUsage of a removed usage")
	e.is(e.repo.RemoveUsage(e.ctx, template.Usage{Template: tpl.ID, Zone: 1, Volume: "vol-b"}), template.ErrNotFound, "RemoveUsage of a volume used in another zone")
	e.is(e.repo.RemoveUsage(e.ctx, template.Usage{Template: tpl.ID + 1000, Zone: 1, Volume: "vol-a"}), template.ErrNotFound, "RemoveUsage of an unknown template")
	e.sameUsages("Usages after RemoveUsage", e.usages(tpl.ID), []template.Usage{b, c})
	e.sameUsages("Usages of the other template", e.usages(other.ID), []template.Usage{o})

	gone := e.register(newTemplate("gone"), 1)
	e.ok(e.repo.DeleteEverywhere(e.ctx, gone.ID, template.DeleteOptions{}), "DeleteEverywhere")
	e.is(e.repo.AddUsage(e.ctx, template.Usage{Template: gone.ID, Zone: 1, Volume: "vol"}), template.ErrNotFound, "AddUsage of a removed template")
}
