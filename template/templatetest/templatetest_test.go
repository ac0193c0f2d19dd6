package templatetest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/directdl/directdl/template"
	"github.com/directdl/directdl/template/templatetest"
)

// handle is one "connection" to a shared Memory, so that the Reopen tests
// of the suite can run in memory: closing a handle leaves the records for
// the next one.
type handle struct {
	*template.Memory
	closed atomic.Bool
}

var errClosedHandle = errors.New("handle closed")

func (h *handle) Close() error { h.closed.Store(true); return nil }

// Get and Register are the calls the suite makes after Close.
func (h *handle) Get(ctx context.Context, id template.ID, opts ...template.GetOption) (template.Template, error) {
	if h.closed.Load() {
		return template.Template{}, errClosedHandle
	}
	return h.Memory.Get(ctx, id, opts...)
}

func (h *handle) Register(ctx context.Context, n template.NewTemplate, zones ...template.ZoneID) (template.Template, error) {
	if h.closed.Load() {
		return template.Template{}, errClosedHandle
	}
	return h.Memory.Register(ctx, n, zones...)
}

// TestRunWithReopen runs the whole suite, the persistence tests included,
// to check the suite itself.
func TestRunWithReopen(t *testing.T) {
	templatetest.Run(t, templatetest.Factory{
		New: func(*testing.T) template.Repository { return &handle{Memory: template.NewMemory()} },
		Reopen: func(t *testing.T, r template.Repository) template.Repository {
			h := r.(*handle)
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			return &handle{Memory: h.Memory}
		},
	})
}

// A mutant is a broken repository and the subtest of the suite that must
// catch it.
type mutant struct {
	fails string
	wrap  func(m *template.Memory) template.Repository
}

var mutants = map[string]mutant{
	// apache/cloudstack#10600: deleting from one zone wipes the details.
	"wipe-details": {"Delete/seed-001", func(m *template.Memory) template.Repository { return wipeDetails{m} }},
	// CloudStack's direct-download delete: one zone removes every zone.
	"zone-wide-direct": {"Delete/seed-001-direct-download", func(m *template.Memory) template.Repository { return zoneWideDirect{m} }},
	"ignore-in-use":    {"Delete/in-use", func(m *template.Memory) template.Repository { return ignoreInUse{m} }},
	"no-version-check": {"StoreRefs/conflict", func(m *template.Memory) template.Repository { return noVersionCheck{m} }},
	"next-on-full":     {"List/paging", func(m *template.Memory) template.Repository { return nextOnFull{m} }},
	// A removed template offered for download.
	"source-removed": {"Source/deleted", func(m *template.Memory) template.Repository { return sourceRemoved{m} }},
	// "Not found" reported as a failed lookup.
	"source-not-found-error": {"Source/unknown", func(m *template.Memory) template.Repository { return sourceNotFoundError{m} }},
	// A failed lookup reported as "not found".
	"source-swallow-errors": {"Source/cancelled-context", func(m *template.Memory) template.Repository { return sourceSwallowErrors{m} }},
}

type sourceRemoved struct{ *template.Memory }

func (m sourceRemoved) TemplateSource(ctx context.Context, uuid string) (string, string, bool, error) {
	t, err := m.GetByUUID(ctx, uuid, template.IncludeRemoved())
	if err != nil {
		return template.Source(ctx, m.Memory, uuid)
	}
	return t.URL, t.Checksum, true, nil
}

type sourceNotFoundError struct{ *template.Memory }

func (m sourceNotFoundError) TemplateSource(ctx context.Context, uuid string) (string, string, bool, error) {
	t, err := m.GetByUUID(ctx, uuid)
	if err != nil {
		return "", "", false, err
	}
	return t.URL, t.Checksum, true, nil
}

type sourceSwallowErrors struct{ *template.Memory }

func (m sourceSwallowErrors) TemplateSource(ctx context.Context, uuid string) (string, string, bool, error) {
	url, sum, found, err := m.Memory.TemplateSource(ctx, uuid)
	if err != nil {
		return "", "", false, nil
	}
	return url, sum, found, nil
}

type wipeDetails struct{ *template.Memory }

func (m wipeDetails) DeleteFromZone(ctx context.Context, id template.ID, zone template.ZoneID, o template.DeleteOptions) (template.DeleteResult, error) {
	d, _ := m.Memory.Details(ctx, id)
	res, err := m.Memory.DeleteFromZone(ctx, id, zone, o)
	if err == nil && !res.Removed {
		for k := range d {
			m.RemoveDetail(ctx, id, k)
		}
	}
	return res, err
}

type zoneWideDirect struct{ *template.Memory }

func (m zoneWideDirect) DeleteFromZone(ctx context.Context, id template.ID, zone template.ZoneID, o template.DeleteOptions) (template.DeleteResult, error) {
	if t, err := m.Get(ctx, id); err == nil && t.DirectDownload {
		if err := m.DeleteEverywhere(ctx, id, o); err != nil {
			return template.DeleteResult{}, err
		}
		return template.DeleteResult{Removed: true}, nil
	}
	return m.Memory.DeleteFromZone(ctx, id, zone, o)
}

type ignoreInUse struct{ *template.Memory }

func (m ignoreInUse) DeleteFromZone(ctx context.Context, id template.ID, zone template.ZoneID, _ template.DeleteOptions) (template.DeleteResult, error) {
	return m.Memory.DeleteFromZone(ctx, id, zone, template.DeleteOptions{Force: true})
}

type noVersionCheck struct{ *template.Memory }

func (m noVersionCheck) UpdateStoreRef(ctx context.Context, id template.ID, store template.StoreID, _ int64, u template.StoreUpdate) (template.StoreRef, error) {
	cur, err := m.StoreRef(ctx, id, store)
	if err != nil {
		return cur, err
	}
	return m.Memory.UpdateStoreRef(ctx, id, store, cur.Version, u)
}

type nextOnFull struct{ *template.Memory }

func (m nextOnFull) List(ctx context.Context, o template.ListOptions) (template.Page, error) {
	p, err := m.Memory.List(ctx, o)
	if err == nil && p.Next == 0 && len(p.Templates) > 0 && len(p.Templates) == o.Limit {
		p.Next = p.Templates[len(p.Templates)-1].ID
	}
	return p, err
}

const mutantEnv = "TEMPLATETEST_MUTANT"

// TestMutant runs the suite against the mutant named by $TEMPLATETEST_MUTANT,
// or, without it, against the unchanged Memory the mutants are made from,
// which must pass; TestMutants starts the others.
func TestMutant(t *testing.T) {
	wrap := func(m *template.Memory) template.Repository { return m }
	if name := os.Getenv(mutantEnv); name != "" {
		m, ok := mutants[name]
		if !ok {
			t.Fatalf("no mutant %q", name)
		}
		wrap = m.wrap
	}
	templatetest.Run(t, templatetest.Factory{
		New: func(*testing.T) template.Repository { return wrap(template.NewMemory()) },
	})
}

// TestMutants checks that the suite catches broken repositories: each
// mutant must fail the subtest that guards against its bug.
func TestMutants(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("inside a mutant run")
	}
	for name, m := range mutants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var pattern []string
			for _, p := range strings.Split("TestMutant/"+m.fails, "/") {
				pattern = append(pattern, "^"+p+"$")
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+strings.Join(pattern, "/"), "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("suite against mutant %s: got %v, want a failure\n%s", name, err, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestMutant/"+m.fails+" ") {
				t.Fatalf("suite against mutant %s: %s did not fail\n%s", name, m.fails, out)
			}
		})
	}
}
