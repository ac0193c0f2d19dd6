// Package templatetest is the conformance suite of template.Repository: the
// contract every implementation (in memory, SQLite, PostgreSQL, ...) must
// keep, as tests. An implementation's test runs it with a Factory:
//
//	func TestConformance(t *testing.T) {
//		templatetest.Run(t, templatetest.Factory{
//			New: func(t *testing.T) template.Repository { return template.NewMemory() },
//		})
//	}
//
// # What it checks
//
// Besides what the interfaces of package template document, the suite pins
// down the choices they leave open, so that every implementation makes the
// same ones:
//
//   - Register: IDs go up (never reused); a missing UUID becomes a random
//     canonical UUID (8-4-4-4-12 lower-case hex); a UUID stays taken after its
//     template is removed (ErrConflict); duplicate zones count once; no zone,
//     or a zone ID below 1, is ErrInvalid. Template.Zones is ascending.
//   - A removed (soft-deleted) template is found only by Get, GetByUUID and
//     List with IncludeRemoved, with no zones and no details. Every other
//     method (Details, StoreRefs, Usages, CopyToZone, SetDetails,
//     CreateStoreRef, DeleteFromZone, DeleteEverywhere, ...) reports
//     ErrNotFound for it.
//   - TemplateSource answers for active templates only: found, with the URL
//     and checksum as registered, while any zone offers the template; found
//     false and a nil error once the last zone went, for an unknown UUID, and
//     for any string that is not exactly an active template's UUID (no case
//     folding, no trimming). A lookup that fails (a cancelled context) is an
//     error, never "not found".
//   - Deletes: DeleteFromZone and DeleteEverywhere of a template in use
//     return an *InUseError whose Volumes are the volumes in that zone (every
//     zone for DeleteEverywhere, Zone 0), and change nothing. With Force they
//     remove those usages too. However many deletes of one template run at
//     once, exactly one reports the soft-delete (DeleteResult.Removed, or a
//     DeleteEverywhere that succeeds); the others report nothing removed or
//     ErrNotFound.
//   - Store refs: CreateStoreRef needs Kind ImageStore or PrimaryPool, a
//     Store above 0, an initial state (ValidInitial; empty means
//     NotDownloaded), progress 0 to 100 and sizes not negative, else
//     ErrInvalid; it stores the other fields as given. UpdateStoreRef first
//     checks the version (*ConflictError with Have and Current), then
//     template.CheckUpdate, and on success replaces State, Progress, Error,
//     InstallPath, Size and PhysicalSize with those of the update and adds 1
//     to Version. StoreRefs are by ascending store ID.
//   - Usages: AddUsage needs a volume (ErrInvalid) and a zone that offers the
//     template (ErrNotFound); adding one twice records it once; RemoveUsage of
//     an unrecorded usage is ErrNotFound.
//   - List: ascending IDs above After, at most Limit (0: DefaultLimit; above
//     MaxLimit: MaxLimit; negative Limit or After: ErrInvalid). Page.Next is
//     the ID of the page's last template when more templates match, and zero
//     when none do, so a page with Next zero is the last. Name matches
//     substrings, ASCII case-insensitively, with no wildcards ("%" and "_"
//     are plain characters). Format and Type filters may be in any case; an
//     unknown one is ErrInvalid.
//   - A context cancelled before a call makes it fail with the context's
//     error and change nothing.
//   - Close returns nil, and calls after it fail.
//
// # Factories
//
// The subtests run in parallel, each with a repository of its own from
// Factory.New, so New must give every call independent storage (a new
// SQLite file in t.TempDir(), a new PostgreSQL schema, ...) and release it
// with t.Cleanup, never with defer in the calling test: parallel subtests
// run after the function that calls Run has returned. The suite closes the
// repositories it gets. When Factory.Reopen is set, the suite also checks
// that everything survives closing and reopening the storage, as a restart
// of the process would.
package templatetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/template"
)

// Factory makes the repositories the suite tests.
type Factory struct {
	// New returns an empty repository with storage of its own. Required.
	New func(t *testing.T) template.Repository
	// Reopen, when not nil, closes r and returns a repository over the
	// same storage. Nil leaves the persistence tests out (for in-memory
	// repositories).
	Reopen func(t *testing.T, r template.Repository) template.Repository
}

// Run runs the whole suite against the repositories f makes, as subtests
// of t (see the package documentation). The persistence subtests, under
// "Reopen", run only when f.Reopen is set.
func Run(t *testing.T, f Factory) {
	if f.New == nil {
		t.Fatal("templatetest: Factory.New is nil")
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"Register", registerTests},
		{"Source", sourceTests},
		{"Details", detailTests},
		{"Delete", deleteTests},
		{"StoreRefs", storeRefTests},
		{"Usages", usageTests},
		{"List", listTests},
		{"Lifecycle", lifecycleTests},
		{"Reopen", reopenTests},
	}
	for _, g := range groups {
		if g.name == "Reopen" && f.Reopen == nil {
			// Nothing to test: an implementation without persistence.
			continue
		}
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(newEnv(t, f))
				})
			}
		})
	}
}

// test is one subtest of the suite.
type test struct {
	name string
	run  func(e *env)
}

// env is what a subtest works with: its own repository and context.
type env struct {
	t    *testing.T
	f    Factory
	ctx  context.Context
	repo template.Repository // nil once the subtest closed it
}

func newEnv(t *testing.T, f Factory) *env {
	e := &env{t: t, f: f, ctx: t.Context(), repo: f.New(t)}
	if e.repo == nil {
		t.Fatal("templatetest: Factory.New returned nil")
	}
	t.Cleanup(func() {
		if e.repo != nil {
			if err := e.repo.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
	return e
}

// reopen closes the repository and opens the same storage again.
func (e *env) reopen() {
	e.t.Helper()
	r := e.f.Reopen(e.t, e.repo)
	e.repo = nil // Reopen closed it
	if r == nil {
		e.t.Fatal("templatetest: Factory.Reopen returned nil")
	}
	e.repo = r
}

// ok fails the test at once when err is not nil.
func (e *env) ok(err error, what string, args ...any) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

// is reports an error unless errors.Is(err, want).
func (e *env) is(err, want error, what string, args ...any) bool {
	e.t.Helper()
	if !errors.Is(err, want) {
		e.t.Errorf("%s: got error %v, want %v", fmt.Sprintf(what, args...), err, want)
		return false
	}
	return true
}

// newTemplate is a valid NewTemplate named name.
func newTemplate(name string) template.NewTemplate {
	return template.NewTemplate{
		Name:        name,
		DisplayText: name + " for tests",
		Format:      template.QCOW2,
		Type:        template.User,
		Hypervisor:  "KVM",
		URL:         "https://images.example.com/" + name + ".qcow2",
		Checksum:    "{SHA-256}0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Size:        10 << 30,
		Owner:       "admin",
	}
}

// register registers a template named name in zones, or fails the test.
func (e *env) register(n template.NewTemplate, zones ...template.ZoneID) template.Template {
	e.t.Helper()
	tpl, err := e.repo.Register(e.ctx, n, zones...)
	e.ok(err, "Register(%q, zones %v)", n.Name, zones)
	return tpl
}

// get returns template id, which must be found.
func (e *env) get(id template.ID, opts ...template.GetOption) template.Template {
	e.t.Helper()
	tpl, err := e.repo.Get(e.ctx, id, opts...)
	e.ok(err, "Get(%d)", id)
	return tpl
}

func (e *env) details(id template.ID) map[string]string {
	e.t.Helper()
	d, err := e.repo.Details(e.ctx, id)
	e.ok(err, "Details(%d)", id)
	return d
}

func (e *env) storeRefs(id template.ID) []template.StoreRef {
	e.t.Helper()
	refs, err := e.repo.StoreRefs(e.ctx, id)
	e.ok(err, "StoreRefs(%d)", id)
	return refs
}

func (e *env) usages(id template.ID) []template.Usage {
	e.t.Helper()
	us, err := e.repo.Usages(e.ctx, id)
	e.ok(err, "Usages(%d)", id)
	return us
}

func (e *env) createRef(ref template.StoreRef) template.StoreRef {
	e.t.Helper()
	got, err := e.repo.CreateStoreRef(e.ctx, ref)
	e.ok(err, "CreateStoreRef(template %d, zone %d, store %d, %s)", ref.Template, ref.Zone, ref.Store, ref.State)
	return got
}

func (e *env) updateRef(ref template.StoreRef, u template.StoreUpdate) template.StoreRef {
	e.t.Helper()
	got, err := e.repo.UpdateStoreRef(e.ctx, ref.Template, ref.Store, ref.Version, u)
	e.ok(err, "UpdateStoreRef(template %d, store %d, version %d, %s %d%%)", ref.Template, ref.Store, ref.Version, u.State, u.Progress)
	return got
}

// removed checks that template id is soft-deleted: found only with
// IncludeRemoved, with no zones and no details, and not found by the
// other methods.
func (e *env) removed(id template.ID) {
	e.t.Helper()
	_, err := e.repo.Get(e.ctx, id)
	e.is(err, template.ErrNotFound, "Get(%d) of a removed template", id)
	tpl := e.get(id, template.IncludeRemoved())
	if tpl.Removed.IsZero() {
		e.t.Errorf("Get(%d, IncludeRemoved): Removed is zero, want the time of removal", id)
	}
	if len(tpl.Zones) != 0 {
		e.t.Errorf("Get(%d, IncludeRemoved): got zones %v, want none", id, tpl.Zones)
	}
	if len(tpl.Details) != 0 {
		e.t.Errorf("Get(%d, IncludeRemoved): got details %v, want none", id, tpl.Details)
	}
	byUUID, err := e.repo.GetByUUID(e.ctx, tpl.UUID)
	e.is(err, template.ErrNotFound, "GetByUUID(%s) of removed template %d (got %+v)", tpl.UUID, id, byUUID)
	_, err = e.repo.GetByUUID(e.ctx, tpl.UUID, template.IncludeRemoved())
	e.ok(err, "GetByUUID(%s, IncludeRemoved) of removed template %d", tpl.UUID, id)
	d, err := e.repo.Details(e.ctx, id)
	e.is(err, template.ErrNotFound, "Details(%d) of a removed template (got %v)", id, d)
	refs, err := e.repo.StoreRefs(e.ctx, id)
	e.is(err, template.ErrNotFound, "StoreRefs(%d) of a removed template (got %v)", id, refs)
	us, err := e.repo.Usages(e.ctx, id)
	e.is(err, template.ErrNotFound, "Usages(%d) of a removed template (got %v)", id, us)
}

// timeSlack is how far two readings of one stored time may differ: stores
// may keep times at a coarser precision than time.Time.
const timeSlack = time.Second

func closeTimes(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	d := a.Sub(b)
	return -timeSlack <= d && d <= timeSlack
}

// sameTemplate reports an error unless got and want are the same record:
// times within timeSlack, nil and empty maps and slices alike.
func (e *env) sameTemplate(what string, got, want template.Template) {
	e.t.Helper()
	if !closeTimes(got.Created, want.Created) || !closeTimes(got.Removed, want.Removed) {
		e.t.Errorf("%s: got created %v removed %v, want created %v removed %v", what, got.Created, got.Removed, want.Created, want.Removed)
	}
	g, w := normTemplate(got), normTemplate(want)
	if !reflect.DeepEqual(g, w) {
		e.t.Errorf("%s:\ngot  %+v\nwant %+v", what, g, w)
	}
}

func normTemplate(t template.Template) template.Template {
	t.Created, t.Removed = time.Time{}, time.Time{}
	if len(t.Details) == 0 {
		t.Details = nil
	}
	if len(t.Zones) == 0 {
		t.Zones = nil
	}
	return t
}

// sameRef reports an error unless got and want are the same store ref,
// Updated within timeSlack.
func (e *env) sameRef(what string, got, want template.StoreRef) {
	e.t.Helper()
	if !closeTimes(got.Updated, want.Updated) {
		e.t.Errorf("%s: got updated %v, want %v", what, got.Updated, want.Updated)
	}
	got.Updated, want.Updated = time.Time{}, time.Time{}
	if got != want {
		e.t.Errorf("%s:\ngot  %+v\nwant %+v", what, got, want)
	}
}

func (e *env) sameRefs(what string, got, want []template.StoreRef) {
	e.t.Helper()
	if len(got) != len(want) {
		e.t.Errorf("%s: got %d refs %+v, want %d %+v", what, len(got), got, len(want), want)
		return
	}
	for i := range got {
		e.sameRef(fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

func (e *env) sameDetails(what string, got, want map[string]string) {
	e.t.Helper()
	if len(got) != len(want) || !maps.Equal(got, want) {
		e.t.Errorf("%s: got details %v, want %v", what, got, want)
	}
}

func (e *env) sameZones(what string, got, want []template.ZoneID) {
	e.t.Helper()
	if !slices.Equal(got, want) {
		e.t.Errorf("%s: got zones %v, want %v", what, got, want)
	}
}

// sameUsages compares usages in any order.
func (e *env) sameUsages(what string, got, want []template.Usage) {
	e.t.Helper()
	key := func(u template.Usage) string { return fmt.Sprintf("%d/%d/%s", u.Template, u.Zone, u.Volume) }
	g, w := make([]string, len(got)), make([]string, len(want))
	for i, u := range got {
		g[i] = key(u)
	}
	for i, u := range want {
		w[i] = key(u)
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		e.t.Errorf("%s: got usages %v, want %v", what, g, w)
	}
}

// snapshot is everything the repository holds about one template, to
// check that a failed call changed nothing.
type snapshot struct {
	tpl    template.Template
	refs   []template.StoreRef
	usages []template.Usage
}

func (e *env) snapshot(id template.ID) snapshot {
	e.t.Helper()
	return snapshot{tpl: e.get(id), refs: e.storeRefs(id), usages: e.usages(id)}
}

// unchanged reports an error unless template id is as in s.
func (e *env) unchanged(what string, s snapshot) {
	e.t.Helper()
	now := e.snapshot(s.tpl.ID)
	e.sameTemplate(what+": template", now.tpl, s.tpl)
	e.sameDetails(what+": Details", e.details(s.tpl.ID), s.tpl.Details)
	e.sameRefs(what+": store refs", now.refs, s.refs)
	e.sameUsages(what+": usages", now.usages, s.usages)
}

// parallel runs n calls of f at once, released together, and waits.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

func zones(from, to template.ZoneID) []template.ZoneID {
	var zs []template.ZoneID
	for z := from; z <= to; z++ {
		zs = append(zs, z)
	}
	return zs
}
