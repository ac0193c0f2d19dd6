package templatetest

import (
	"fmt"
	"math"
	"slices"

	"github.com/directdl/directdl/template"
)

var listTests = []test{
	{"paging", testListPaging},
	{"filters", testListFilters},
	{"name", testListName},
	{"removed", testListRemoved},
	{"invalid", testListInvalid},
}

// list returns one page, or fails the test.
func (e *env) list(o template.ListOptions) template.Page {
	e.t.Helper()
	p, err := e.repo.List(e.ctx, o)
	e.ok(err, "List(%+v)", o)
	return p
}

// listAll pages through every template matching o, limit per page,
// checking that the pages follow on and that only the last has Next zero.
func (e *env) listAll(o template.ListOptions, limit int) []template.Template {
	e.t.Helper()
	var all []template.Template
	o.Limit = limit
	for pages := 0; ; pages++ {
		if pages > 10000 {
			e.t.Fatalf("List(%+v): more than 10000 pages", o)
		}
		p := e.list(o)
		if len(p.Templates) > limit {
			e.t.Fatalf("List(%+v): got %d templates, more than the limit", o, len(p.Templates))
		}
		for _, t := range p.Templates {
			if t.ID <= o.After {
				e.t.Fatalf("List(%+v): got template %d, not after %d", o, t.ID, o.After)
			}
			o.After = t.ID
		}
		all = append(all, p.Templates...)
		if p.Next == 0 {
			return all
		}
		if len(p.Templates) == 0 || p.Next != p.Templates[len(p.Templates)-1].ID {
			e.t.Fatalf("List(%+v): got Next %d, want the last ID of a page of %d", o, p.Next, len(p.Templates))
		}
	}
}

func testListPaging(e *env) {
	const n = 250
	var want []template.ID
	for i := range n {
		want = append(want, e.register(newTemplate(fmt.Sprintf("img-%03d", i)), 1).ID)
	}
	type pageWant struct {
		len  int
		next template.ID // index into want + 1; 0 for none
	}
	check := func(o template.ListOptions, pages ...pageWant) {
		e.t.Helper()
		var got []template.ID
		for i, pw := range pages {
			p := e.list(o)
			wantNext := template.ID(0)
			if pw.next != 0 {
				wantNext = want[pw.next-1]
			}
			if len(p.Templates) != pw.len || p.Next != wantNext {
				e.t.Errorf("List(%+v), page %d: got %d templates and Next %d, want %d and %d", o, i+1, len(p.Templates), p.Next, pw.len, wantNext)
			}
			got = append(got, ids(p.Templates)...)
			o.After = p.Next
		}
		if start := slices.Index(want, got[0]); start < 0 || !slices.Equal(got, want[start:start+len(got)]) {
			e.t.Errorf("List(%+v) pages: got IDs %v, want consecutive IDs of %v", o, got, want)
		}
	}
	check(template.ListOptions{Limit: 100}, pageWant{100, 100}, pageWant{100, 200}, pageWant{50, 0})
	check(template.ListOptions{}, pageWant{template.DefaultLimit, template.DefaultLimit}, pageWant{template.DefaultLimit, 2 * template.DefaultLimit})
	check(template.ListOptions{Limit: n}, pageWant{n, 0})
	check(template.ListOptions{Limit: n - 1}, pageWant{n - 1, n - 1}, pageWant{1, 0})
	check(template.ListOptions{Limit: 125}, pageWant{125, 125}, pageWant{125, 0})
	check(template.ListOptions{Limit: template.MaxLimit + 1}, pageWant{n, 0})
	check(template.ListOptions{After: want[9], Limit: 10}, pageWant{10, 20})
	for _, after := range []template.ID{want[n-1], math.MaxInt64} {
		if p := e.list(template.ListOptions{After: after}); len(p.Templates) != 0 || p.Next != 0 {
			e.t.Errorf("List after ID %d, the last is %d: got %d templates and Next %d, want none and 0", after, want[n-1], len(p.Templates), p.Next)
		}
	}
	if got := ids(e.listAll(template.ListOptions{}, 7)); !slices.Equal(got, want) {
		e.t.Errorf("List by pages of 7: got %d IDs, want the %d registered, each once, ascending", len(got), n)
	}
	e.sameTemplate("listed template", e.list(template.ListOptions{Limit: 1}).Templates[0], e.get(want[0]))
}

func testListFilters(e *env) {
	type reg struct {
		tpl    template.Template
		format template.Format
		typ    template.Type
		direct bool
	}
	var all []reg
	for i := range 40 {
		n := newTemplate(fmt.Sprintf("img-%02d", i))
		n.Format = []template.Format{template.QCOW2, template.RAW, template.ISO}[i%3]
		n.Type = template.User
		if i%5 == 0 {
			n.Type = template.System
		}
		n.DirectDownload = i%4 == 0
		n.Details = map[string]string{"i": fmt.Sprint(i)}
		zs := []template.ZoneID{1}
		switch {
		case i%7 == 0:
			zs = []template.ZoneID{7}
		case i%2 == 0:
			zs = []template.ZoneID{1, 2}
		}
		all = append(all, reg{e.register(n, zs...), n.Format, n.Type, n.DirectDownload})
	}
	yes, no := true, false
	cases := []struct {
		o    template.ListOptions
		want func(r reg) bool
	}{
		{template.ListOptions{}, func(reg) bool { return true }},
		{template.ListOptions{Zone: 1}, func(r reg) bool { return slices.Contains(r.tpl.Zones, 1) }},
		{template.ListOptions{Zone: 2}, func(r reg) bool { return slices.Contains(r.tpl.Zones, 2) }},
		{template.ListOptions{Zone: 7}, func(r reg) bool { return slices.Contains(r.tpl.Zones, 7) }},
		{template.ListOptions{Zone: 99}, func(reg) bool { return false }},
		{template.ListOptions{Format: template.RAW}, func(r reg) bool { return r.format == template.RAW }},
		{template.ListOptions{Format: "iso"}, func(r reg) bool { return r.format == template.ISO }},
		{template.ListOptions{Type: template.System}, func(r reg) bool { return r.typ == template.System }},
		{template.ListOptions{Type: "user"}, func(r reg) bool { return r.typ == template.User }},
		{template.ListOptions{DirectDownload: &yes}, func(r reg) bool { return r.direct }},
		{template.ListOptions{DirectDownload: &no}, func(r reg) bool { return !r.direct }},
		{template.ListOptions{Name: "IMG-1"}, func(r reg) bool { return r.tpl.Name >= "img-10" && r.tpl.Name <= "img-19" }},
		{template.ListOptions{Name: "mg-3"}, func(r reg) bool { return r.tpl.Name >= "img-30" && r.tpl.Name <= "img-39" }},
		{template.ListOptions{Name: "nothing"}, func(reg) bool { return false }},
		{
			template.ListOptions{Zone: 2, Format: template.QCOW2, Type: template.User, DirectDownload: &no},
			func(r reg) bool {
				return slices.Contains(r.tpl.Zones, 2) && r.format == template.QCOW2 && r.typ == template.User && !r.direct
			},
		},
	}
	for _, c := range cases {
		var want []template.Template
		for _, r := range all {
			if c.want(r) {
				want = append(want, r.tpl)
			}
		}
		for _, limit := range []int{3, template.MaxLimit} {
			got := e.listAll(c.o, limit)
			if !slices.Equal(ids(got), ids(want)) {
				e.t.Errorf("List(%+v) by %d: got IDs %v, want %v", c.o, limit, ids(got), ids(want))
				continue
			}
			for i := range got {
				e.sameTemplate(fmt.Sprintf("List(%+v)[%d]", c.o, i), got[i], want[i])
			}
		}
	}
}

func testListName(e *env) {
	names := []string{"50% off", "500 off", "a_b", "axb", "Ubuntu 24.04", "ubuntu-22.04", `back\slash`, "quote'd"}
	byName := map[string]template.ID{}
	for _, n := range names {
		byName[n] = e.register(newTemplate(n), 1).ID
	}
	cases := []struct {
		name string
		want []string
	}{
		{"50%", []string{"50% off"}},
		{"%", []string{"50% off"}},
		{"a_b", []string{"a_b"}},
		{"_", []string{"a_b"}},
		{"UBUNTU", []string{"Ubuntu 24.04", "ubuntu-22.04"}},
		{"u 24", []string{"Ubuntu 24.04"}},
		{`\`, []string{`back\slash`}},
		{`k\s`, []string{`back\slash`}},
		{"'", []string{"quote'd"}},
		{"off", []string{"50% off", "500 off"}},
		{"*", nil},
	}
	for _, c := range cases {
		var want []template.ID
		for _, n := range c.want {
			want = append(want, byName[n])
		}
		slices.Sort(want)
		if got := ids(e.list(template.ListOptions{Name: c.name}).Templates); !slices.Equal(got, want) {
			e.t.Errorf("List(Name %q): got IDs %v, want %v (%q)", c.name, got, want, c.want)
		}
	}
}

func testListRemoved(e *env) {
	var active, removed []template.ID
	for i := range 6 {
		tpl := e.register(newTemplate(fmt.Sprintf("t%d", i)), 1, 2)
		if i%2 == 1 {
			e.ok(e.repo.DeleteEverywhere(e.ctx, tpl.ID, template.DeleteOptions{}), "DeleteEverywhere(%d)", tpl.ID)
			removed = append(removed, tpl.ID)
		} else {
			active = append(active, tpl.ID)
		}
	}
	partly := e.register(newTemplate("partly"), 1, 2)
	_, err := e.repo.DeleteFromZone(e.ctx, partly.ID, 1, template.DeleteOptions{})
	e.ok(err, "DeleteFromZone")
	active = append(active, partly.ID)

	if got := ids(e.list(template.ListOptions{}).Templates); !slices.Equal(got, active) {
		e.t.Errorf("List: got IDs %v, want the active %v", got, active)
	}
	everything := append(slices.Clone(active), removed...)
	slices.Sort(everything)
	page := e.list(template.ListOptions{IncludeRemoved: true})
	if got := ids(page.Templates); !slices.Equal(got, everything) {
		e.t.Errorf("List(IncludeRemoved): got IDs %v, want %v", got, everything)
	}
	for _, t := range page.Templates {
		if slices.Contains(removed, t.ID) != !t.Removed.IsZero() {
			e.t.Errorf("List(IncludeRemoved): template %d has Removed %v", t.ID, t.Removed)
		}
	}
	if got := ids(e.listAll(template.ListOptions{IncludeRemoved: true}, 2)); !slices.Equal(got, everything) {
		e.t.Errorf("List(IncludeRemoved) by pages of 2: got IDs %v, want %v", got, everything)
	}
	if got := ids(e.list(template.ListOptions{Zone: 1, IncludeRemoved: true}).Templates); !slices.Equal(got, active[:len(active)-1]) {
		e.t.Errorf("List(zone 1, IncludeRemoved): got IDs %v, want %v", got, active[:len(active)-1])
	}
	if got := ids(e.list(template.ListOptions{Zone: 2}).Templates); !slices.Equal(got, active) {
		e.t.Errorf("List(zone 2): got IDs %v, want %v", got, active)
	}
}

func testListInvalid(e *env) {
	e.register(newTemplate("one"), 1)
	for _, o := range []template.ListOptions{
		{Limit: -1},
		{After: -1},
		{Format: "QCOW3"},
		{Type: "GOLDEN"},
	} {
		_, err := e.repo.List(e.ctx, o)
		e.is(err, template.ErrInvalid, "List(%+v)", o)
	}
}
