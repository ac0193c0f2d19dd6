package templatetest

import (
	"context"
	"fmt"
	"strings"

	"github.com/directdl/directdl/template"
)

var registerTests = []test{
	{"fields", testRegisterFields},
	{"defaults", testRegisterDefaults},
	{"invalid", testRegisterInvalid},
	{"ids-and-uuids", testRegisterIDs},
	{"duplicate-uuid", testRegisterDuplicateUUID},
	{"get-by-uuid", testGetByUUID},
	{"not-found", testGetNotFound},
	{"copy-to-zone", testCopyToZone},
	{"copies", testCopies},
}

func testRegisterFields(e *env) {
	n := template.NewTemplate{
		UUID:           "5d2a4c3e-8f1b-4a6d-9c7e-0b1a2c3d4e5f",
		Name:           "Ubuntu 24.04 ✓",
		DisplayText:    "Ubuntu 24.04 LTS, cloud image",
		Format:         template.RAW,
		Type:           template.System,
		Hypervisor:     "KVM",
		URL:            "https://cloud-images.example.com/noble.img",
		Checksum:       "sha256:" + strings.Repeat("ab", 32),
		DirectDownload: true,
		Size:           3 << 30,
		PhysicalSize:   600 << 20,
		Owner:          "acct-42",
		Details:        map[string]string{"UEFI": "secure", "rootDiskController": "virtio", "note": "çé ✓"},
	}
	got := e.register(n, 3, 1, 2, 1)
	want := template.Template{
		ID: got.ID, UUID: n.UUID, Name: n.Name, DisplayText: n.DisplayText,
		Format: n.Format, Type: n.Type, Hypervisor: n.Hypervisor, URL: n.URL,
		Checksum: n.Checksum, DirectDownload: true, Size: n.Size,
		PhysicalSize: n.PhysicalSize, Owner: n.Owner, Created: got.Created,
		Details: n.Details, Zones: []template.ZoneID{1, 2, 3},
	}
	if got.ID <= 0 {
		e.t.Errorf("Register: got ID %d, want 1 or more", got.ID)
	}
	if got.Created.IsZero() {
		e.t.Error("Register: Created is zero")
	}
	e.sameTemplate("Register", got, want)
	e.sameTemplate("Get", e.get(got.ID), want)
	e.sameTemplate("Get(IncludeRemoved) of an active template", e.get(got.ID, template.IncludeRemoved()), want)
	e.sameDetails("Details", e.details(got.ID), n.Details)
	if refs := e.storeRefs(got.ID); len(refs) != 0 {
		e.t.Errorf("StoreRefs of a new template: got %+v, want none", refs)
	}
	if us := e.usages(got.ID); len(us) != 0 {
		e.t.Errorf("Usages of a new template: got %+v, want none", us)
	}
}

func testRegisterDefaults(e *env) {
	got := e.register(template.NewTemplate{Name: "bare"}, 1)
	if got.Format != template.QCOW2 || got.Type != template.User {
		e.t.Errorf("Register with no format and type: got %s %s, want %s %s", got.Format, got.Type, template.QCOW2, template.User)
	}
	if len(got.Details) != 0 {
		e.t.Errorf("Register with no details: got %v", got.Details)
	}
	e.sameTemplate("Get", e.get(got.ID), got)

	lower := e.register(template.NewTemplate{Name: "lower", Format: "raw", Type: "routing"}, 1)
	if lower.Format != template.RAW || lower.Type != template.Routing {
		e.t.Errorf(`Register with format "raw", type "routing": got %s %s, want %s %s`, lower.Format, lower.Type, template.RAW, template.Routing)
	}
	e.sameTemplate("Get", e.get(lower.ID), lower)
}

func testRegisterInvalid(e *env) {
	valid := newTemplate("valid")
	cases := []struct {
		name  string
		edit  func(*template.NewTemplate)
		zones []template.ZoneID
	}{
		{"no name", func(n *template.NewTemplate) { n.Name = "" }, []template.ZoneID{1}},
		{"blank name", func(n *template.NewTemplate) { n.Name = " \t" }, []template.ZoneID{1}},
		{"unknown format", func(n *template.NewTemplate) { n.Format = "QCOW3" }, []template.ZoneID{1}},
		{"unknown type", func(n *template.NewTemplate) { n.Type = "GOLDEN" }, []template.ZoneID{1}},
		{"negative size", func(n *template.NewTemplate) { n.Size = -1 }, []template.ZoneID{1}},
		{"negative physical size", func(n *template.NewTemplate) { n.PhysicalSize = -1 }, []template.ZoneID{1}},
		{"empty detail key", func(n *template.NewTemplate) { n.Details = map[string]string{"": "x"} }, []template.ZoneID{1}},
		{"long detail key", func(n *template.NewTemplate) { n.Details = map[string]string{strings.Repeat("k", 256): "x"} }, []template.ZoneID{1}},
		{"no zone", func(*template.NewTemplate) {}, nil},
		{"zone 0", func(*template.NewTemplate) {}, []template.ZoneID{1, 0}},
	}
	for _, c := range cases {
		n := valid
		c.edit(&n)
		_, err := e.repo.Register(e.ctx, n, c.zones...)
		e.is(err, template.ErrInvalid, "Register with %s", c.name)
	}
	page, err := e.repo.List(e.ctx, template.ListOptions{IncludeRemoved: true})
	e.ok(err, "List")
	if len(page.Templates) != 0 {
		e.t.Errorf("invalid Register calls left %d templates: %+v", len(page.Templates), page.Templates)
	}
	long := valid
	long.Details = map[string]string{strings.Repeat("k", 255): "x"}
	e.register(long, 1)
}

// isUUID reports whether s is a canonical UUID: 8-4-4-4-12 lower-case hex.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func testRegisterIDs(e *env) {
	seen := map[string]bool{}
	var last template.ID
	for i := range 5 {
		tpl := e.register(newTemplate(fmt.Sprintf("t%d", i)), 1)
		if tpl.ID <= last {
			e.t.Errorf("Register #%d: got ID %d after %d, want IDs going up", i, tpl.ID, last)
		}
		last = tpl.ID
		if !isUUID(tpl.UUID) {
			e.t.Errorf("Register #%d with no UUID: got UUID %q, want a canonical lower-case UUID", i, tpl.UUID)
		}
		if seen[tpl.UUID] {
			e.t.Errorf("Register #%d: UUID %s given twice", i, tpl.UUID)
		}
		seen[tpl.UUID] = true
	}
	// A removed template's ID is not given again.
	e.ok(e.repo.DeleteEverywhere(e.ctx, last, template.DeleteOptions{}), "DeleteEverywhere(%d)", last)
	if tpl := e.register(newTemplate("after-removal"), 1); tpl.ID <= last {
		e.t.Errorf("Register after removing %d: got ID %d, want above %d", last, tpl.ID, last)
	}
}

func testRegisterDuplicateUUID(e *env) {
	n := newTemplate("first")
	n.UUID = "0e5e8d55-6b3a-4f0e-8d55-6b3a4f0e8d55"
	first := e.register(n, 1)
	dup := newTemplate("second")
	dup.UUID = n.UUID
	_, err := e.repo.Register(e.ctx, dup, 2)
	e.is(err, template.ErrConflict, "Register with the UUID of template %d", first.ID)
	page, err := e.repo.List(e.ctx, template.ListOptions{IncludeRemoved: true})
	e.ok(err, "List")
	if len(page.Templates) != 1 {
		e.t.Errorf("after a conflicting Register: got %d templates, want 1", len(page.Templates))
	}
	// The UUID stays taken once its template is removed.
	e.ok(e.repo.DeleteEverywhere(e.ctx, first.ID, template.DeleteOptions{}), "DeleteEverywhere")
	_, err = e.repo.Register(e.ctx, dup, 2)
	e.is(err, template.ErrConflict, "Register with the UUID of removed template %d", first.ID)
}

func testGetByUUID(e *env) {
	a := e.register(newTemplate("a"), 1)
	b := e.register(newTemplate("b"), 2)
	for _, want := range []template.Template{a, b} {
		got, err := e.repo.GetByUUID(e.ctx, want.UUID)
		e.ok(err, "GetByUUID(%s)", want.UUID)
		e.sameTemplate("GetByUUID", got, want)
	}
	_, err := e.repo.GetByUUID(e.ctx, "00000000-0000-4000-8000-000000000000")
	e.is(err, template.ErrNotFound, "GetByUUID of an unknown UUID")
	_, err = e.repo.GetByUUID(e.ctx, "")
	e.is(err, template.ErrNotFound, "GetByUUID of the empty UUID")
}

func testGetNotFound(e *env) {
	tpl := e.register(newTemplate("only"), 1)
	for _, id := range []template.ID{0, -1, tpl.ID + 1000} {
		_, err := e.repo.Get(e.ctx, id)
		e.is(err, template.ErrNotFound, "Get(%d)", id)
		_, err = e.repo.Get(e.ctx, id, template.IncludeRemoved())
		e.is(err, template.ErrNotFound, "Get(%d, IncludeRemoved)", id)
		_, err = e.repo.Details(e.ctx, id)
		e.is(err, template.ErrNotFound, "Details(%d)", id)
		_, err = e.repo.StoreRefs(e.ctx, id)
		e.is(err, template.ErrNotFound, "StoreRefs(%d)", id)
		_, err = e.repo.Usages(e.ctx, id)
		e.is(err, template.ErrNotFound, "Usages(%d)", id)
		err = e.repo.CopyToZone(e.ctx, id, 1)
		e.is(err, template.ErrNotFound, "CopyToZone(%d)", id)
		_, err = e.repo.DeleteFromZone(e.ctx, id, 1, template.DeleteOptions{Force: true})
		e.is(err, template.ErrNotFound, "DeleteFromZone(%d)", id)
		err = e.repo.DeleteEverywhere(e.ctx, id, template.DeleteOptions{Force: true})
		e.is(err, template.ErrNotFound, "DeleteEverywhere(%d)", id)
	}
}

func testCopyToZone(e *env) {
	tpl := e.register(newTemplate("copied"), 2)
	e.ok(e.repo.CopyToZone(e.ctx, tpl.ID, 5), "CopyToZone(5)")
	e.ok(e.repo.CopyToZone(e.ctx, tpl.ID, 1), "CopyToZone(1)")
	e.ok(e.repo.CopyToZone(e.ctx, tpl.ID, 5), "CopyToZone(5) again")
	e.ok(e.repo.CopyToZone(e.ctx, tpl.ID, 2), "CopyToZone(2), where it was registered")
	e.sameZones("Get after copies", e.get(tpl.ID).Zones, []template.ZoneID{1, 2, 5})
	e.is(e.repo.CopyToZone(e.ctx, tpl.ID, 0), template.ErrInvalid, "CopyToZone(zone 0)")
	e.sameZones("Get after CopyToZone(0)", e.get(tpl.ID).Zones, []template.ZoneID{1, 2, 5})

	gone := e.register(newTemplate("gone"), 1)
	e.ok(e.repo.DeleteEverywhere(e.ctx, gone.ID, template.DeleteOptions{}), "DeleteEverywhere")
	e.is(e.repo.CopyToZone(e.ctx, gone.ID, 2), template.ErrNotFound, "CopyToZone of a removed template")
	e.removed(gone.ID)
}

// testCopies checks that values going in and out are not shared with the
// repository.
func testCopies(e *env) {
	n := newTemplate("shared")
	n.Details = map[string]string{"UEFI": "secure"}
	tpl := e.register(n, 1, 2)
	n.Details["UEFI"] = "legacy"
	tpl.Details["UEFI"] = "legacy"
	tpl.Zones[0] = 99

	got := e.get(tpl.ID)
	got.Details["extra"] = "x"
	got.Zones[1] = 98
	d := e.details(tpl.ID)
	d["UEFI"] = "changed"

	set := map[string]string{"a": "1"}
	e.ok(e.repo.SetDetails(e.ctx, tpl.ID, set), "SetDetails")
	set["a"] = "2"

	page, err := e.repo.List(e.ctx, template.ListOptions{})
	e.ok(err, "List")
	for _, p := range page.Templates {
		p.Details["UEFI"] = "listed"
		p.Zones[0] = 97
	}

	final := e.get(tpl.ID)
	e.sameDetails("Get after changing maps given and returned", final.Details, map[string]string{"UEFI": "secure", "a": "1"})
	e.sameZones("Get after changing slices returned", final.Zones, []template.ZoneID{1, 2})
}

var lifecycleTests = []test{
	{"cancelled-context", testCancelledContext},
	{"close", testClose},
}

func testCancelledContext(e *env) {
	tpl := e.register(newTemplate("kept"), 1, 2)
	e.ok(e.repo.AddUsage(e.ctx, template.Usage{Template: tpl.ID, Zone: 1, Volume: "vol-1"}), "AddUsage")
	before := e.snapshot(tpl.ID)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	_, err := e.repo.Register(ctx, newTemplate("never"), 1)
	e.is(err, context.Canceled, "Register with a cancelled context")
	_, err = e.repo.Get(ctx, tpl.ID)
	e.is(err, context.Canceled, "Get with a cancelled context")
	_, err = e.repo.DeleteFromZone(ctx, tpl.ID, 2, template.DeleteOptions{})
	e.is(err, context.Canceled, "DeleteFromZone with a cancelled context")
	err = e.repo.DeleteEverywhere(ctx, tpl.ID, template.DeleteOptions{Force: true})
	e.is(err, context.Canceled, "DeleteEverywhere with a cancelled context")
	e.unchanged("after calls with a cancelled context", before)
	page, err := e.repo.List(e.ctx, template.ListOptions{IncludeRemoved: true})
	e.ok(err, "List")
	if len(page.Templates) != 1 {
		e.t.Errorf("after Register with a cancelled context: got %d templates, want 1", len(page.Templates))
	}
}

func testClose(e *env) {
	tpl := e.register(newTemplate("closing"), 1)
	r := e.repo
	e.repo = nil // closed here, not by the cleanup
	if err := r.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	if _, err := r.Get(e.ctx, tpl.ID); err == nil {
		e.t.Error("Get after Close: got no error")
	}
	if _, err := r.Register(e.ctx, newTemplate("late"), 1); err == nil {
		e.t.Error("Register after Close: got no error")
	}
}
