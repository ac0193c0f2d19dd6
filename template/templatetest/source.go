package templatetest

import (
	"context"
	"strings"

	"github.com/directdl/directdl/template"
)

var sourceTests = []test{
	{"registered", testSourceRegistered},
	{"deleted", testSourceDeleted},
	{"unknown", testSourceUnknown},
	{"cancelled-context", testSourceCancelled},
}

// source is a TemplateSource answer, to compare in one step.
type source struct {
	url, checksum string
	found         bool
}

// sourceIs reports an error unless TemplateSource(uuid) succeeds with want.
func (e *env) sourceIs(what, uuid string, want source) {
	e.t.Helper()
	url, sum, found, err := e.repo.TemplateSource(e.ctx, uuid)
	if err != nil {
		e.t.Errorf("%s: TemplateSource(%q): got error %v, want %+v", what, uuid, err, want)
		return
	}
	if got := (source{url, sum, found}); got != want {
		e.t.Errorf("%s: TemplateSource(%q) = %+v, want %+v", what, uuid, got, want)
	}
}

// testSourceRegistered: each template's own URL and checksum, as registered,
// whatever the checksum's form (none included).
func testSourceRegistered(e *env) {
	a := newTemplate("source-a")
	b := newTemplate("source-b")
	b.URL = "https://mirror.example.org/images/b.raw?token=x"
	b.Checksum = "sha512:" + strings.Repeat("ab", 64)
	b.DirectDownload = true
	c := newTemplate("source-c")
	c.UUID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
	c.Checksum = ""
	tpls := []template.Template{e.register(a, 1), e.register(b, 2, 3), e.register(c, 1)}
	for i, n := range []template.NewTemplate{a, b, c} {
		e.sourceIs("registered template "+n.Name, tpls[i].UUID, source{n.URL, n.Checksum, true})
	}
	if tpls[2].UUID != c.UUID {
		e.t.Errorf("Register kept UUID %q as %q", c.UUID, tpls[2].UUID)
	}
}

// testSourceDeleted: a template stays a source while any zone offers it,
// and stops being one when its last zone goes, or everywhere at once.
func testSourceDeleted(e *env) {
	n := newTemplate("source-zones")
	tpl := e.register(n, 1, 2)
	bystander := newTemplate("source-bystander")
	other := e.register(bystander, 1)
	everywhere := e.register(newTemplate("source-everywhere"), 1, 2)
	want := source{n.URL, n.Checksum, true}

	_, err := e.repo.DeleteFromZone(e.ctx, tpl.ID, 2, template.DeleteOptions{})
	e.ok(err, "DeleteFromZone(zone 2)")
	e.sourceIs("after deleting one of two zones", tpl.UUID, want)

	res, err := e.repo.DeleteFromZone(e.ctx, tpl.ID, 1, template.DeleteOptions{})
	e.ok(err, "DeleteFromZone(zone 1)")
	if !res.Removed {
		e.t.Error("DeleteFromZone(zone 1), the last zone: Removed is false")
	}
	e.sourceIs("after deleting the last zone", tpl.UUID, source{})

	e.ok(e.repo.DeleteEverywhere(e.ctx, everywhere.ID, template.DeleteOptions{}), "DeleteEverywhere")
	e.sourceIs("after DeleteEverywhere", everywhere.UUID, source{})

	e.sourceIs("a template in a zone nothing was deleted from", other.UUID, source{bystander.URL, bystander.Checksum, true})
}

// testSourceUnknown: no template, no error, for any string that is not an
// active template's UUID; UUIDs are matched exactly.
func testSourceUnknown(e *env) {
	tpl := e.register(newTemplate("source-known"), 1)
	for _, uuid := range []string{
		template.NewUUID(),
		"",
		"not-a-uuid",
		strings.ToUpper(tpl.UUID),
		" " + tpl.UUID,
		tpl.UUID + "'; --",
		"%",
	} {
		e.sourceIs("unknown UUID", uuid, source{})
	}
	e.sourceIs("the registered template", tpl.UUID, source{tpl.URL, tpl.Checksum, true})
}

// testSourceCancelled: a lookup that could not be made is an error, never
// "not found", so a caller does not take a failed lookup for a deleted
// template.
func testSourceCancelled(e *env) {
	tpl := e.register(newTemplate("source-cancelled"), 1)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	for _, uuid := range []string{tpl.UUID, template.NewUUID()} {
		url, sum, found, err := e.repo.TemplateSource(ctx, uuid)
		if e.is(err, context.Canceled, "TemplateSource(%q) with a cancelled context", uuid) && (found || url != "" || sum != "") {
			e.t.Errorf("TemplateSource(%q) with a cancelled context = %q, %q, %v with the error", uuid, url, sum, found)
		}
	}
}
