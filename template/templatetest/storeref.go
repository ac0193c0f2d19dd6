package templatetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/directdl/directdl/template"
)

var storeRefTests = []test{
	{"create", testCreateStoreRef},
	{"create-invalid", testCreateStoreRefInvalid},
	{"list", testListStoreRefs},
	{"update", testUpdateStoreRef},
	{"conflict", testUpdateConflict},
	{"transitions", testTransitions},
	{"concurrent-progress", testConcurrentProgress},
}

func testCreateStoreRef(e *env) {
	tpl := e.register(newTemplate("stored"), 1, 2)
	got := e.createRef(template.StoreRef{Template: tpl.ID, Zone: 1, Store: 7, Kind: template.ImageStore, InstallPath: "template/tmpl/1/7", Size: 42, PhysicalSize: 21})
	want := template.StoreRef{Template: tpl.ID, Zone: 1, Store: 7, Kind: template.ImageStore, State: template.NotDownloaded, InstallPath: "template/tmpl/1/7", Size: 42, PhysicalSize: 21, Version: 1, Updated: got.Updated}
	if got.Updated.IsZero() {
		e.t.Error("CreateStoreRef: Updated is zero")
	}
	e.sameRef("CreateStoreRef", got, want)
	read, err := e.repo.StoreRef(e.ctx, tpl.ID, 7)
	e.ok(err, "StoreRef")
	e.sameRef("StoreRef", read, want)

	// A direct-download copy starts bypassed; Version is always 1.
	bypassed := e.createRef(template.StoreRef{Template: tpl.ID, Zone: 2, Store: 8, Kind: template.PrimaryPool, State: template.Bypassed, Version: 9})
	if bypassed.State != template.Bypassed || bypassed.Version != 1 || bypassed.Kind != template.PrimaryPool {
		e.t.Errorf("CreateStoreRef(Bypassed, Version 9): got %s version %d kind %s, want %s 1 %s", bypassed.State, bypassed.Version, bypassed.Kind, template.Bypassed, template.PrimaryPool)
	}

	// One ref per store and template, whatever the zone.
	for _, z := range []template.ZoneID{1, 2} {
		_, err = e.repo.CreateStoreRef(e.ctx, template.StoreRef{Template: tpl.ID, Zone: z, Store: 7, Kind: template.ImageStore})
		e.is(err, template.ErrConflict, "second CreateStoreRef of store 7 in zone %d", z)
	}
	e.sameRef("StoreRef after conflicting creates", e.mustRef(tpl.ID, 7), want)

	// Another template may have a ref on the same store.
	other := e.register(newTemplate("other"), 1)
	e.createRef(template.StoreRef{Template: other.ID, Zone: 1, Store: 7, Kind: template.ImageStore})

	_, err = e.repo.CreateStoreRef(e.ctx, template.StoreRef{Template: tpl.ID, Zone: 3, Store: 9, Kind: template.ImageStore})
	e.is(err, template.ErrNotFound, "CreateStoreRef in a zone not offering the template")
	_, err = e.repo.CreateStoreRef(e.ctx, template.StoreRef{Template: tpl.ID + 1000, Zone: 1, Store: 9, Kind: template.ImageStore})
	e.is(err, template.ErrNotFound, "CreateStoreRef of an unknown template")
	_, err = e.repo.StoreRef(e.ctx, tpl.ID, 9)
	e.is(err, template.ErrNotFound, "StoreRef of a store without a ref")
	_, err = e.repo.StoreRef(e.ctx, tpl.ID+1000, 7)
	e.is(err, template.ErrNotFound, "StoreRef of an unknown template")

	gone := e.register(newTemplate("gone"), 1)
	e.ok(e.repo.DeleteEverywhere(e.ctx, gone.ID, template.DeleteOptions{}), "DeleteEverywhere")
	_, err = e.repo.CreateStoreRef(e.ctx, template.StoreRef{Template: gone.ID, Zone: 1, Store: 1, Kind: template.ImageStore})
	e.is(err, template.ErrNotFound, "CreateStoreRef of a removed template")
}

func (e *env) mustRef(id template.ID, store template.StoreID) template.StoreRef {
	e.t.Helper()
	ref, err := e.repo.StoreRef(e.ctx, id, store)
	e.ok(err, "StoreRef(%d, store %d)", id, store)
	return ref
}

func testCreateStoreRefInvalid(e *env) {
	tpl := e.register(newTemplate("strict"), 1)
	base := template.StoreRef{Template: tpl.ID, Zone: 1, Store: 5, Kind: template.ImageStore}
	cases := []struct {
		name string
		edit func(*template.StoreRef)
	}{
		{"store 0", func(r *template.StoreRef) { r.Store = 0 }},
		{"no kind", func(r *template.StoreRef) { r.Kind = "" }},
		{"unknown kind", func(r *template.StoreRef) { r.Kind = "tape" }},
		{"state DOWNLOADED", func(r *template.StoreRef) { r.State, r.Progress = template.Downloaded, 100 }},
		{"state DOWNLOAD_IN_PROGRESS", func(r *template.StoreRef) { r.State = template.DownloadInProgress }},
		{"unknown state", func(r *template.StoreRef) { r.State = "UPLOADED" }},
		{"progress 101", func(r *template.StoreRef) { r.Progress = 101 }},
		{"progress -1", func(r *template.StoreRef) { r.Progress = -1 }},
		{"negative size", func(r *template.StoreRef) { r.Size = -1 }},
		{"negative physical size", func(r *template.StoreRef) { r.PhysicalSize = -1 }},
	}
	for _, c := range cases {
		r := base
		c.edit(&r)
		_, err := e.repo.CreateStoreRef(e.ctx, r)
		e.is(err, template.ErrInvalid, "CreateStoreRef with %s", c.name)
	}
	if refs := e.storeRefs(tpl.ID); len(refs) != 0 {
		e.t.Errorf("invalid CreateStoreRef calls left refs: %+v", refs)
	}
}

func testListStoreRefs(e *env) {
	tpl := e.register(newTemplate("listed"), 1, 2)
	var want []template.StoreRef
	for _, r := range []template.StoreRef{{Zone: 2, Store: 30}, {Zone: 1, Store: 10}, {Zone: 1, Store: 20}} {
		r.Template, r.Kind = tpl.ID, template.ImageStore
		e.createRef(r)
	}
	for _, s := range []template.StoreID{10, 20, 30} {
		want = append(want, e.mustRef(tpl.ID, s))
	}
	want[1] = e.updateRef(want[1], template.StoreUpdate{State: template.DownloadInProgress, Progress: 5})
	e.sameRefs("StoreRefs, by store", e.storeRefs(tpl.ID), want)
	other := e.register(newTemplate("no refs"), 1)
	if refs := e.storeRefs(other.ID); len(refs) != 0 {
		e.t.Errorf("StoreRefs of a template with none: got %+v", refs)
	}
}

func testUpdateStoreRef(e *env) {
	tpl := e.register(newTemplate("updated"), 1)
	ref := e.createRef(template.StoreRef{Template: tpl.ID, Zone: 1, Store: 3, Kind: template.ImageStore, InstallPath: "old/path", Size: 5})
	steps := []template.StoreUpdate{
		{State: template.DownloadInProgress, Progress: 0, InstallPath: "template/tmpl/2/3"},
		{State: template.DownloadInProgress, Progress: 40, InstallPath: "template/tmpl/2/3", Size: 1 << 30},
		{State: template.DownloadInProgress, Progress: 40, InstallPath: "template/tmpl/2/3", Size: 1 << 30},
		{State: template.DownloadError, Progress: 40, Error: "connection reset by peer"},
		{State: template.DownloadInProgress, Progress: 0, InstallPath: "template/tmpl/2/3"},
		{State: template.Downloaded, Progress: 100, InstallPath: "template/tmpl/2/3/disk.qcow2", Size: 10 << 30, PhysicalSize: 3 << 30},
		{State: template.NotDownloaded},
	}
	for i, u := range steps {
		got := e.updateRef(ref, u)
		want := ref
		want.State, want.Progress, want.Error, want.InstallPath, want.Size, want.PhysicalSize = u.State, u.Progress, u.Error, u.InstallPath, u.Size, u.PhysicalSize
		want.Version = ref.Version + 1
		want.Updated = got.Updated
		if got.Updated.Before(ref.Updated.Add(-timeSlack)) {
			e.t.Errorf("step %d: Updated went back from %v to %v", i, ref.Updated, got.Updated)
		}
		e.sameRef(fmt.Sprintf("UpdateStoreRef step %d (%s)", i, u.State), got, want)
		e.sameRef(fmt.Sprintf("StoreRef after step %d", i), e.mustRef(tpl.ID, 3), got)
		ref = got
	}
	if ref.Version != int64(1+len(steps)) {
		e.t.Errorf("after %d updates: got version %d, want %d", len(steps), ref.Version, 1+len(steps))
	}
	_, err := e.repo.UpdateStoreRef(e.ctx, tpl.ID, 99, 1, template.StoreUpdate{State: template.DownloadInProgress})
	e.is(err, template.ErrNotFound, "UpdateStoreRef of a store without a ref")
	_, err = e.repo.UpdateStoreRef(e.ctx, tpl.ID+1000, 3, ref.Version, template.StoreUpdate{State: template.DownloadInProgress})
	e.is(err, template.ErrNotFound, "UpdateStoreRef of an unknown template")
}

func testUpdateConflict(e *env) {
	tpl := e.register(newTemplate("contended"), 1)
	ref := e.createRef(template.StoreRef{Template: tpl.ID, Zone: 1, Store: 1, Kind: template.ImageStore})
	cur := e.updateRef(ref, template.StoreUpdate{State: template.DownloadInProgress, Progress: 10})
	for _, have := range []int64{ref.Version, cur.Version + 1, 0} {
		// Legal and illegal updates alike: the version is checked first.
		for _, u := range []template.StoreUpdate{
			{State: template.DownloadInProgress, Progress: 20},
			{State: template.Bypassed},
		} {
			_, err := e.repo.UpdateStoreRef(e.ctx, tpl.ID, 1, have, u)
			var ce *template.ConflictError
			if !errors.As(err, &ce) {
				e.t.Errorf("UpdateStoreRef(version %d to %s) at version %d: got %v, want a *ConflictError", have, u.State, cur.Version, err)
				continue
			}
			e.is(err, template.ErrConflict, "UpdateStoreRef at a stale version")
			if ce.Template != tpl.ID || ce.Store != 1 || ce.Have != have || ce.Current != cur.Version {
				e.t.Errorf("UpdateStoreRef(version %d): got %+v, want Template %d Store 1 Have %d Current %d", have, *ce, tpl.ID, have, cur.Version)
			}
		}
	}
	e.sameRef("StoreRef after conflicting updates", e.mustRef(tpl.ID, 1), cur)
}

// states are the download states the suite knows; testTransitions checks
// that the state machine leads nowhere else.
var states = []template.DownloadState{
	template.NotDownloaded, template.DownloadInProgress, template.Downloaded,
	template.DownloadError, template.Abandoned, template.Bypassed,
}

// stepProgress is a progress that CheckUpdate allows with a change to to.
func stepProgress(to template.DownloadState) int {
	switch to {
	case template.Downloaded:
		return 100
	case template.DownloadInProgress:
		return 50
	}
	return 0
}

// pathTo returns the states from a ValidInitial one to target along
// allowed transitions, shortest first, or nil.
func pathTo(target template.DownloadState) []template.DownloadState {
	prev := map[template.DownloadState]template.DownloadState{}
	var queue []template.DownloadState
	for _, s := range states {
		if template.ValidInitial(s) {
			prev[s] = ""
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s == target {
			var path []template.DownloadState
			for ; s != ""; s = prev[s] {
				path = append(path, s)
			}
			slices.Reverse(path)
			return path
		}
		for _, n := range template.Next(s) {
			if _, seen := prev[n]; !seen {
				prev[n] = s
				queue = append(queue, n)
			}
		}
	}
	return nil
}

// testTransitions tries every update, from every state to every state with
// several progresses, and checks that UpdateStoreRef succeeds exactly when
// template.CheckUpdate allows it, fails with the same kind of error
// otherwise, and then leaves the ref as it was.
func testTransitions(e *env) {
	for _, s := range states {
		if _, err := template.ParseDownloadState(string(s)); err != nil {
			e.t.Fatalf("templatetest: state %s: %v", s, err)
		}
		for _, n := range template.Next(s) {
			if !slices.Contains(states, n) {
				e.t.Fatalf("templatetest: state %s leads to %s, which the suite does not know; add it to states", s, n)
			}
		}
	}
	tpl := e.register(newTemplate("transitions"), 1)
	var store template.StoreID
	// fresh makes a ref in state from, along allowed transitions.
	fresh := func(from template.DownloadState) template.StoreRef {
		e.t.Helper()
		path := pathTo(from)
		if path == nil {
			e.t.Fatalf("templatetest: no path to state %s", from)
		}
		store++
		kind := template.ImageStore
		if path[0] == template.Bypassed {
			kind = template.PrimaryPool
		}
		ref := e.createRef(template.StoreRef{Template: tpl.ID, Zone: 1, Store: store, Kind: kind, State: path[0]})
		for _, s := range path[1:] {
			ref = e.updateRef(ref, template.StoreUpdate{State: s, Progress: stepProgress(s)})
		}
		return ref
	}
	targets := append(slices.Clone(states), "UPLOADED", "")
	progresses := []int{0, 49, 50, 100, -1, 101}
	for _, from := range states {
		ref := fresh(from)
		for _, to := range targets {
			for _, p := range progresses {
				u := template.StoreUpdate{State: to, Progress: p, Error: "e", InstallPath: "p", Size: 1, PhysicalSize: 1}
				want := template.CheckUpdate(ref, u)
				what := fmt.Sprintf("UpdateStoreRef %s (%d%%) to %s (%d%%)", from, ref.Progress, to, p)
				got, err := e.repo.UpdateStoreRef(e.ctx, tpl.ID, ref.Store, ref.Version, u)
				if want == nil {
					if err != nil {
						e.t.Errorf("%s: %v; CheckUpdate allows it", what, err)
						continue
					}
					if got.State != to || got.Progress != p || got.Version != ref.Version+1 {
						e.t.Errorf("%s: got state %s progress %d version %d, want %s %d %d", what, got.State, got.Progress, got.Version, to, p, ref.Version+1)
					}
					ref = fresh(from)
					continue
				}
				var wantTE *template.TransitionError
				if errors.As(want, &wantTE) {
					var te *template.TransitionError
					if !errors.As(err, &te) {
						e.t.Errorf("%s: got %v, want a *TransitionError", what, err)
					} else if *te != *wantTE {
						e.t.Errorf("%s: got %+v, want %+v", what, *te, *wantTE)
					}
					e.is(err, template.ErrTransition, "%s", what)
				} else {
					if e.is(err, template.ErrInvalid, "%s", what) && errors.Is(err, template.ErrTransition) {
						e.t.Errorf("%s: got %v, an ErrTransition, want only ErrInvalid", what, err)
					}
				}
				e.sameRef(what+": ref after the refused update", e.mustRef(tpl.ID, ref.Store), ref)
			}
		}
	}
}

// testConcurrentProgress has agents report progress on one ref at once,
// each reading the ref, adding 1 and writing it at the version it read,
// again on a conflict: every successful update must count.
func testConcurrentProgress(e *env) {
	const agents, each = 8, 10
	tpl := e.register(newTemplate("progress"), 1)
	ref := e.createRef(template.StoreRef{Template: tpl.ID, Zone: 1, Store: 1, Kind: template.ImageStore})
	ref = e.updateRef(ref, template.StoreUpdate{State: template.DownloadInProgress})

	var (
		mu      sync.Mutex
		written []int // progress of every successful update
	)
	parallel(agents, func(int) {
		for done, tries := 0, 0; done < each; tries++ {
			if tries > 1000*each {
				e.t.Errorf("agent gave up after %d tries", tries)
				return
			}
			cur, err := e.repo.StoreRef(e.ctx, tpl.ID, 1)
			if err != nil {
				e.t.Errorf("StoreRef: %v", err)
				return
			}
			u := template.StoreUpdate{State: template.DownloadInProgress, Progress: cur.Progress + 1}
			got, err := e.repo.UpdateStoreRef(e.ctx, tpl.ID, 1, cur.Version, u)
			var ce *template.ConflictError
			switch {
			case errors.As(err, &ce):
				if ce.Have != cur.Version || ce.Current <= cur.Version {
					e.t.Errorf("conflict updating version %d: got Have %d Current %d, want Have %d and a higher Current", cur.Version, ce.Have, ce.Current, cur.Version)
				}
				continue
			case err != nil:
				e.t.Errorf("UpdateStoreRef(version %d, %d%%): %v", cur.Version, u.Progress, err)
				return
			}
			if got.Version != cur.Version+1 || got.Progress != u.Progress {
				e.t.Errorf("UpdateStoreRef(version %d, %d%%): got version %d progress %d", cur.Version, u.Progress, got.Version, got.Progress)
			}
			mu.Lock()
			written = append(written, got.Progress)
			mu.Unlock()
			done++
		}
	})
	final := e.mustRef(tpl.ID, 1)
	n := len(written)
	if n != agents*each {
		e.t.Errorf("got %d successful updates, want %d", n, agents*each)
	}
	if final.Progress != n || final.Version != ref.Version+int64(n) {
		e.t.Errorf("after %d updates from version %d: got progress %d version %d, want %d and %d", n, ref.Version, final.Progress, final.Version, n, ref.Version+int64(n))
	}
	slices.Sort(written)
	for i, p := range written {
		if p != i+1 {
			e.t.Errorf("successful updates wrote progress %v; want each of 1 to %d once (an update was lost)", written, n)
			break
		}
	}
}
