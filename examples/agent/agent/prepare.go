package agent

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/migrate"
)

// DecodePlan reads the body of POST /v1/migrations/prepare: a migrate.Plan
// as NewPlan made it, refusing unknown fields.
func DecodePlan(r io.Reader) (*migrate.Plan, error) {
	var p migrate.Plan
	if err := decodeJSON(r, maxPlanBody, &p); err != nil {
		return nil, err
	}
	if p.Dir == "" {
		return nil, badField("dir", "missing; send the plan migrate.NewPlan made")
	}
	if len(p.Disks) == 0 {
		return nil, badField("disks", "missing or empty; send the plan migrate.NewPlan made")
	}
	return &p, nil
}

// checkPlanPaths refuses a plan that would write anywhere but straight into
// the pool under a name ValidateName accepts, or to a name a download job
// is writing.
func (a *Agent) checkPlanPaths(p *migrate.Plan) error {
	dir, err := filepath.EvalSymlinks(p.Dir)
	if err != nil || !filepath.IsAbs(p.Dir) {
		return badField("dir", "%q is not this agent's pool %s", p.Dir, a.pool)
	}
	pool, err := filepath.EvalSymlinks(a.pool)
	if err != nil {
		return fmt.Errorf("agent: pool: %w", err)
	}
	if dir != pool {
		return badField("dir", "%q is not this agent's pool %s; plan the migration with the pool as the destination directory", p.Dir, a.pool)
	}
	check := func(field, path string) error {
		if filepath.Dir(filepath.Clean(path)) != filepath.Clean(p.Dir) {
			return badField(field, "%q is not a file directly in the pool %s", path, p.Dir)
		}
		if err := ValidateName(filepath.Base(path)); err != nil {
			return badField(field, "%v", err)
		}
		return nil
	}
	for _, d := range p.Disks {
		if err := check("disks.destination", d.Destination); err != nil {
			return err
		}
	}
	for _, f := range p.Fetches {
		if err := check("fetches.path", f.Path); err != nil {
			return err
		}
	}
	// A linked disk rests on a base in the pool, named plainly: a plan
	// could otherwise create a disk backed by any file of the host.
	// (migrate.Prepare checks that the name is the layer it verifies.)
	for _, d := range p.Disks {
		if d.Strategy != migrate.Linked {
			continue
		}
		if err := ValidateName(d.Backing); err != nil {
			return badField("disks.backing", "disk %s: %v; bases must be files of the pool", d.Label, err)
		}
		for _, l := range d.Chain[1:] {
			if err := check("disks.chain.destination-path", l.DestinationPath); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *Agent) prepare(w http.ResponseWriter, r *http.Request) {
	plan, err := DecodePlan(r.Body)
	if err == nil {
		err = a.checkPlanPaths(plan)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, &ErrorBody{Error: err.Error()})
		return
	}
	if err := a.claimNames(plan); err != nil {
		status := http.StatusConflict
		if errors.Is(err, ErrClosed) {
			status = http.StatusServiceUnavailable
		}
		writeError(w, status, &ErrorBody{Error: err.Error()})
		return
	}
	defer a.releaseNames(plan)
	done, err := migrate.Prepare(r.Context(), plan, a.client)
	var pe *migrate.PrepareError
	switch {
	case errors.Is(err, migrate.ErrPreflight):
		writeError(w, http.StatusBadRequest, &ErrorBody{Error: err.Error()})
		return
	case errors.As(err, &pe):
		status := http.StatusInternalServerError
		if pe.Step == "check" {
			status = http.StatusConflict
		}
		writeError(w, status, &ErrorBody{Error: err.Error(), Step: pe.Step, Disk: pe.Disk, Path: pe.Path})
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, &ErrorBody{Error: err.Error()})
		return
	}
	fetched := map[string]bool{}
	for _, p := range done.Fetched {
		fetched[p] = true
	}
	for _, f := range plan.Fetches {
		if !fetched[f.Path] {
			continue
		}
		digest := f.Checksum
		if s, err := download.ParseChecksum(f.Checksum); err == nil {
			digest = s.String()
		}
		// Fetch verified the file against the template's checksum.
		a.files.record(filepath.Join(a.pool, filepath.Base(f.Path)), digest, "prepare")
	}
	a.log.Info("migration prepared", "vm", plan.VM, "created", done.Created)
	writeJSON(w, http.StatusOK, done)
}

// claimNames holds the names the plan writes against download jobs for
// the duration of the Prepare, or says which job holds one.
func (a *Agent) claimNames(p *migrate.Plan) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	var names []string
	for _, d := range p.Disks {
		names = append(names, filepath.Base(d.Destination))
	}
	for _, f := range p.Fetches {
		names = append(names, filepath.Base(f.Path))
	}
	for _, n := range names {
		if j, ok := a.active[n]; ok {
			return &ConflictError{Name: n, Job: j.ID}
		}
	}
	for _, n := range names {
		a.active[n] = preparing
	}
	return nil
}

func (a *Agent) releaseNames(p *migrate.Plan) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range p.Disks {
		if a.active[filepath.Base(d.Destination)] == preparing {
			delete(a.active, filepath.Base(d.Destination))
		}
	}
	for _, f := range p.Fetches {
		if a.active[filepath.Base(f.Path)] == preparing {
			delete(a.active, filepath.Base(f.Path))
		}
	}
}

// preparing holds, in Agent.active, the names a migrate.Prepare is
// writing.
var preparing = &job{Job: Job{ID: "migration-prepare"}}
