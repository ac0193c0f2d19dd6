package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/qcow2"
)

// job is one download job. Its Job is guarded by Agent.mu.
type job struct {
	Job
	req     DownloadRequest
	staging string // where the download lands until it is vetted
	cancel  context.CancelFunc
	done    chan struct{} // closed when the job's goroutine has ended
}

// snapshot returns a copy of the job's state; a.mu must be held.
func (j *job) snapshot() Job {
	out := j.Job
	if out.Total > 0 {
		out.Percent = float64(out.Done) * 100 / float64(out.Total)
	}
	return out
}

func (a *Agent) postDownload(w http.ResponseWriter, r *http.Request) {
	req, err := DecodeDownloadRequest(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, &ErrorBody{Error: err.Error()})
		return
	}
	j, err := a.Start(req)
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict):
		writeError(w, http.StatusConflict, &ErrorBody{Error: err.Error()})
	case errors.Is(err, ErrClosed):
		writeError(w, http.StatusServiceUnavailable, &ErrorBody{Error: err.Error()})
	case err != nil:
		writeError(w, http.StatusBadRequest, &ErrorBody{Error: err.Error()})
	default:
		writeJSON(w, http.StatusAccepted, j)
	}
}

// ConflictError: a job for the same name is queued or running, or a
// migration prepare is writing it.
type ConflictError struct {
	Name string
	Job  string // the id of the job holding the name
	// Exists is set when the pool already holds a file of that name,
	// which a download never replaces.
	Exists bool
}

func (e *ConflictError) Error() string {
	if e.Exists {
		return fmt.Sprintf("agent: the pool already holds %q, which a download never replaces; download under another name", e.Name)
	}
	if e.Job == preparing.ID {
		return fmt.Sprintf("agent: a migration prepare is writing %q; try again when it has finished", e.Name)
	}
	return fmt.Sprintf("agent: job %s is already downloading %q; wait for it or cancel it (DELETE /v1/downloads/%s)", e.Job, e.Name, e.Job)
}

// Start queues a download job for req and returns it as first reported.
// It fails with a *BadRequestError for an invalid request, a
// *ConflictError while another job holds the same name, and ErrClosed
// after Close.
func (a *Agent) Start(req DownloadRequest) (Job, error) {
	if err := req.Validate(); err != nil {
		return Job{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return Job{}, ErrClosed
	}
	if other, ok := a.active[req.Name]; ok {
		return Job{}, &ConflictError{Name: req.Name, Job: other.ID}
	}
	// A download never replaces a file of the pool: a VM's disk, or a
	// template other disks rest on, would change under them.
	if _, err := os.Lstat(filepath.Join(a.pool, req.Name)); err == nil {
		return Job{}, &ConflictError{Name: req.Name, Exists: true}
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{
		Job: Job{
			ID:      newID(),
			Name:    req.Name,
			URL:     download.RedactURL(req.URL),
			Path:    filepath.Join(a.pool, req.Name),
			State:   Queued,
			Total:   -1,
			Created: time.Now().UTC(),
		},
		req:     req,
		staging: filepath.Join(a.incoming, req.Name),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	if req.Size > 0 {
		j.Total = req.Size
	}
	a.jobs[j.ID] = j
	a.order = append(a.order, j)
	a.active[j.Name] = j
	a.wg.Add(1)
	go a.run(ctx, j)
	snap := j.snapshot()
	a.event("queued", snap)
	return snap, nil
}

// run carries out job j: waits for a slot, downloads into the staging
// directory, vets the file and moves it into the pool.
func (a *Agent) run(ctx context.Context, j *job) {
	defer a.wg.Done()
	defer close(j.done)
	defer j.cancel()
	select {
	case a.slots <- struct{}{}:
	case <-ctx.Done():
		a.finish(j, Canceled, func(j *job) { j.Error = "canceled while queued" })
		return
	}
	defer func() { <-a.slots }()

	a.mu.Lock()
	now := time.Now().UTC()
	j.State, j.Started = Running, &now
	a.byPath[j.staging] = j
	snap := j.snapshot()
	a.mu.Unlock()
	a.event("running", snap)

	res, err := a.client.Get(ctx, download.Request{URL: j.req.URL, Path: j.staging, Checksum: j.req.Checksum, Size: j.req.Size})
	a.mu.Lock()
	delete(a.byPath, j.staging)
	a.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			a.finish(j, Canceled, func(j *job) {
				j.Error = "canceled; what was fetched is kept: the same request resumes it"
			})
			return
		}
		a.finish(j, Failed, func(j *job) { j.Error = err.Error() })
		return
	}
	format, vsize, err := vet(j.staging, j.req.Format)
	if err == nil {
		err = install(j.staging, j.Path)
	}
	if err != nil {
		os.Remove(j.staging)
		a.finish(j, Failed, func(j *job) { j.Error = err.Error() })
		return
	}
	a.files.record(j.Path, res.Digest, "download")
	a.finish(j, Done, func(j *job) {
		j.Done, j.Total = res.Size, res.Size
		j.Digest, j.Verified, j.ResumedFrom = res.Digest, res.Verified, res.ResumedFrom
		j.Format, j.VirtualSize = format, vsize
		j.Rate = 0
	})
}

// finish moves j to a final state, frees its name, and reports it.
func (a *Agent) finish(j *job, s State, set func(*job)) {
	a.mu.Lock()
	now := time.Now().UTC()
	j.State, j.Finished = s, &now
	set(j)
	if a.active[j.Name] == j {
		delete(a.active, j.Name)
	}
	a.finished++
	a.forget()
	snap := j.snapshot()
	a.mu.Unlock()
	a.event(string(s), snap)
}

// forget drops the oldest finished jobs beyond MaxFinishedJobs; a.mu must
// be held.
func (a *Agent) forget() {
	for a.finished > a.cfg.MaxFinishedJobs {
		i := 0
		for i < len(a.order) && !a.order[i].State.Final() {
			i++
		}
		if i == len(a.order) {
			return
		}
		delete(a.jobs, a.order[i].ID)
		a.order = append(a.order[:i], a.order[i+1:]...)
		a.finished--
	}
}

// onProgress is the download client's progress sink.
func (a *Agent) onProgress(p download.Progress) {
	a.mu.Lock()
	j, ok := a.byPath[p.Path]
	if !ok || p.Final {
		a.mu.Unlock()
		return
	}
	j.Done, j.Total, j.Rate = p.Done, p.Total, p.Rate
	snap := j.snapshot()
	a.mu.Unlock()
	a.event("progress", snap)
}

func (a *Agent) event(typ string, j Job) {
	level := slog.LevelInfo
	switch typ {
	case "progress":
		level = slog.LevelDebug
	case "failed":
		level = slog.LevelWarn
	}
	a.log.Log(context.Background(), level, "job "+typ, slog.String("id", j.ID), slog.String("name", j.Name), slog.String("url", j.URL), slog.Int64("done", j.Done), slog.String("error", j.Error))
	if a.notify != nil {
		a.notify.send(Event{Type: typ, Time: time.Now().UTC(), Job: j})
	}
}

// qcow2Magic starts every qcow2 image.
const qcow2Magic = "QFI\xfb"

// vet checks the downloaded file at path before it enters the pool: a
// qcow2 image must pass qcow2.Vet (no backing file, no external data file,
// nothing QEMU does not know), and the file must be what format says.
func vet(path, format string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("agent: vetting: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("agent: vetting: %w", err)
	}
	magic := make([]byte, 4)
	if _, err := f.ReadAt(magic, 0); err != nil && !errors.Is(err, io.EOF) {
		return "", 0, fmt.Errorf("agent: vetting: %w", err)
	}
	isQcow2 := string(magic) == qcow2Magic
	switch {
	case format == "qcow2" && !isQcow2:
		return "", 0, errors.New("agent: format qcow2 was asked for, but the file is not a qcow2 image (no QFI\\xfb magic); it was removed")
	case format == "raw" && isQcow2:
		return "", 0, errors.New("agent: format raw was asked for, but the file is a qcow2 image, which QEMU must not open as raw; register it as qcow2; it was removed")
	case !isQcow2:
		return "raw", fi.Size(), nil
	}
	v, err := qcow2.Vet(f, qcow2.Policy{})
	if err != nil {
		return "", 0, fmt.Errorf("agent: vetting: %w", err)
	}
	if !v.Safe {
		msgs := make([]string, len(v.Problems))
		for i, p := range v.Problems {
			msgs[i] = p.Code + ": " + p.Message
		}
		return "", 0, fmt.Errorf("agent: unsafe qcow2 image, removed: %s", strings.Join(msgs, "; "))
	}
	return "qcow2", v.VirtualSize, nil
}

// install links the vetted file from staging into the pool, never over a
// file that appeared there meanwhile (link(2) fails where rename(2) would
// replace it), and syncs the pool's directory, so the name survives a
// crash.
func install(staging, dest string) error {
	if err := os.Link(staging, dest); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("agent: the pool already holds %s, which a download never replaces", filepath.Base(dest))
		}
		return fmt.Errorf("agent: moving into the pool: %w", err)
	}
	if err := os.Remove(staging); err != nil {
		return fmt.Errorf("agent: moving into the pool: %w", err)
	}
	return syncDir(filepath.Dir(dest))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("agent: syncing %s: %w", dir, err)
	}
	return nil
}

func (a *Agent) listDownloads(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, JobList{Jobs: a.Jobs()})
}

// Jobs returns the remembered jobs, oldest first.
func (a *Agent) Jobs() []Job {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Job, 0, len(a.order))
	for _, j := range a.order {
		out = append(out, j.snapshot())
	}
	return out
}

func (a *Agent) getDownload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a.mu.Lock()
	j, ok := a.jobs[id]
	var snap Job
	if ok {
		snap = j.snapshot()
	}
	a.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, &ErrorBody{Error: fmt.Sprintf("no job %q (jobs are kept in memory: after a restart, send the request again)", id)})
		return
	}
	writeJSON(w, http.StatusOK, snap)
}

// cancelDownload cancels a queued or running job and answers once it has
// stopped, so that a new request for the same name resumes what it left.
func (a *Agent) cancelDownload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a.mu.Lock()
	j, ok := a.jobs[id]
	var state State
	if ok {
		state = j.State
	}
	a.mu.Unlock()
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, &ErrorBody{Error: fmt.Sprintf("no job %q", id)})
		return
	case state.Final():
		writeError(w, http.StatusConflict, &ErrorBody{Error: fmt.Sprintf("job %s has already ended: %s", id, state)})
		return
	}
	j.cancel()
	select {
	case <-j.done:
	case <-r.Context().Done():
		return
	}
	a.mu.Lock()
	snap := j.snapshot()
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, snap)
}
