package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/examples/agent/agent"
	"github.com/directdl/directdl/examples/agent/agentclient"
	"github.com/directdl/directdl/internal/faultserver"
	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/qcow2"
)

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	endpoints := []struct{ method, path, body string }{
		{"GET", "/v1/downloads", ""},
		{"POST", "/v1/downloads", `{"url":"http://127.0.0.1/x","name":"x"}`},
		{"GET", "/v1/downloads/abc", ""},
		{"DELETE", "/v1/downloads/abc", ""},
		{"GET", "/v1/truststore", ""},
		{"PUT", "/v1/truststore/ca", `{"pem":"x"}`},
		{"DELETE", "/v1/truststore/ca", ""},
		{"GET", "/v1/inventory", ""},
		{"POST", "/v1/migrations/prepare", `{}`},
		{"GET", "/v1/nothing-here", ""},
	}
	headers := []struct{ name, value, want string }{
		{"none", "", "missing bearer token"},
		{"wrong token", "Bearer wrong", "wrong bearer token"},
		{"token prefix", "Bearer " + testToken[:5], "wrong bearer token"},
		{"token and more", "Bearer " + testToken + "x", "wrong bearer token"},
		{"basic", "Basic " + testToken, "missing bearer token"},
	}
	for _, e := range endpoints {
		for _, h := range headers {
			t.Run(e.method+" "+e.path+" "+h.name, func(t *testing.T) {
				req, err := http.NewRequest(e.method, ta.url+e.path, strings.NewReader(e.body))
				if err != nil {
					t.Fatal(err)
				}
				if h.value != "" {
					req.Header.Set("Authorization", h.value)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401", resp.StatusCode)
				}
				var body agent.ErrorBody
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
					t.Fatalf("error body is not JSON: %v", err)
				}
				mustContain(t, "error", body.Error, h.want)
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", resp.Header.Get("WWW-Authenticate"))
				}
			})
		}
	}
	// Nothing was done by the refused requests.
	if jobs := ta.Jobs(); len(jobs) != 0 {
		t.Errorf("refused requests made jobs: %v", jobs)
	}

	t.Run("client with wrong token", func(t *testing.T) {
		c, err := agentclient.New(ta.url, "wrong")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Inventory(ctxT(t), false)
		if !errors.Is(err, agentclient.ErrUnauthorized) {
			t.Fatalf("got %v, want ErrUnauthorized", err)
		}
		// Health needs no token.
		h, err := c.Health(ctxT(t))
		if err != nil || !h.OK {
			t.Fatalf("health: %+v, %v", h, err)
		}
	})
}

// A certificate imported through the API is trusted by the next download
// without a restart, and no longer once revoked.
func TestTrustImportRevoke(t *testing.T) {
	t.Parallel()
	pki, err := faultserver.NewPKI(0)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := makeTemplate(t, 64<<20, 0)
	srv := faultserver.StartTest(t, faultserver.WithTLS(pki.Certificate(true)), resource("/t.qcow2", tmpl))
	url := srv.URLFor("https", "127.0.0.1", "/t.qcow2")
	ta := startAgent(t, nil)
	ctx := ctxT(t)
	req := agent.DownloadRequest{URL: url, Checksum: sha(tmpl), Format: "qcow2"}

	req.Name = "untrusted.qcow2"
	j := ta.download(t, req)
	if j.State != agent.Failed {
		t.Fatalf("download with the CA untrusted: state %s, want failed", j.State)
	}
	mustContain(t, "error", j.Error, "x509", "unknown authority")

	if err := ta.c.Import(ctx, certstore.Entry{Alias: "mirror-ca", Cert: pki.Root}); err != nil {
		t.Fatal(err)
	}
	certs, err := ta.c.Certificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 || certs[0].Alias != "mirror-ca" || certs[0].SHA256 != certstore.Fingerprint(pki.Root) {
		t.Fatalf("trust store after import: %+v", certs)
	}
	// The store file holds it: a restart keeps trusting it.
	onDisk, err := ta.store.Entries(ctx)
	if err != nil || len(onDisk) != 1 {
		t.Fatalf("trust store file: %v, %v", onDisk, err)
	}

	req.Name = "trusted.qcow2"
	j = ta.download(t, req)
	if j.State != agent.Done {
		t.Fatalf("download with the CA imported: state %s (%s), want done", j.State, j.Error)
	}
	if j.Digest != sha(tmpl) || !j.Verified {
		t.Errorf("digest %s verified %v, want %s verified", j.Digest, j.Verified, sha(tmpl))
	}

	if err := ta.c.Delete(ctx, "mirror-ca"); err != nil {
		t.Fatal(err)
	}
	req.Name = "revoked.qcow2"
	j = ta.download(t, req)
	if j.State != agent.Failed {
		t.Fatalf("download with the CA revoked: state %s, want failed", j.State)
	}
	mustContain(t, "error", j.Error, "x509")
	names := poolNames(t, ta.pool)
	if !contains(names, "trusted.qcow2") || contains(names, "untrusted.qcow2") || contains(names, "revoked.qcow2") {
		t.Errorf("pool holds %v, want trusted.qcow2 and neither failed download", names)
	}

	// Revoking what is not there is a 404 matching certstore.ErrNotFound.
	err = ta.c.Delete(ctx, "mirror-ca")
	if !errors.Is(err, certstore.ErrNotFound) || !errors.Is(err, agentclient.ErrNotFound) {
		t.Fatalf("deleting an absent alias: %v, want certstore.ErrNotFound", err)
	}
}

// Two downloads run at once under Parallel 2, a third waits; progress is
// reported; the inventory lists what came in, with digests.
func TestConcurrentDownloads(t *testing.T) {
	t.Parallel()
	const size = 1 << 20
	tmpls := [][]byte{makeTemplate(t, 1<<30, size), makeTemplate(t, 2<<30, size), makeTemplate(t, 3<<30, size)}
	// Every response stops after its first 64 KiB until the test has
	// seen two jobs running part way and the third queued: what it checks
	// cannot depend on how fast the machine is.
	gate := make(chan struct{})
	var gateOnce sync.Once
	open := func() { gateOnce.Do(func() { close(gate) }) }
	defer open()
	gated := func(data []byte) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(&gatedWriter{ResponseWriter: w, gate: gate, before: 64 << 10}, r, "", time.Time{}, bytes.NewReader(data))
		})
	}
	srv := faultserver.StartTest(t,
		faultserver.WithHandler("/a.qcow2", gated(tmpls[0])), faultserver.WithHandler("/b.qcow2", gated(tmpls[1])),
		faultserver.WithHandler("/c.qcow2", gated(tmpls[2])))
	ta := startAgent(t, func(c *agent.Config) { c.Parallel = 2; c.Connections = 2 })
	ctx := ctxT(t)
	// Hidden files are not images; the inventory must not show them.
	if err := os.WriteFile(filepath.Join(ta.pool, ".other.qcow2.ddpart"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}

	names := []string{"a.qcow2", "b.qcow2", "c.qcow2"}
	ids := make([]string, 3)
	for i, n := range names {
		j, err := ta.c.Download(ctx, agent.DownloadRequest{URL: srv.URL("/" + n), Name: n, Checksum: sha(tmpls[i])})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = j.ID
	}
	// A second job for a name being downloaded is a conflict.
	_, err := ta.c.Download(ctx, agent.DownloadRequest{URL: srv.URL("/a.qcow2"), Name: "a.qcow2"})
	if !errors.Is(err, agentclient.ErrConflict) {
		t.Fatalf("second job for a.qcow2: %v, want a 409 conflict", err)
	}
	mustContain(t, "error", fmt.Sprint(err), ids[0])

	var (
		bothRunning, queuedSeen bool
		partial                 = map[string]bool{}
		last                    = map[string]int64{}
	)
	for {
		jobs, err := ta.c.Jobs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		running, final := 0, 0
		for _, j := range jobs {
			if j.Done < last[j.ID] {
				t.Fatalf("job %s went back from %d to %d bytes", j.Name, last[j.ID], j.Done)
			}
			last[j.ID] = j.Done
			switch j.State {
			case agent.Running:
				running++
				if j.Done > 0 && j.Done < size {
					partial[j.ID] = true
					if j.Percent <= 0 || j.Percent >= 100 || j.Total != int64(len(tmpls[0])) {
						t.Errorf("running job %s: percent %v of total %d", j.Name, j.Percent, j.Total)
					}
				}
			case agent.Queued:
				if running == 2 || j.Name == "c.qcow2" {
					queuedSeen = true
				}
			}
			if j.State.Final() {
				final++
			}
		}
		if running > 2 {
			t.Fatalf("%d jobs running at once with Parallel 2", running)
		}
		bothRunning = bothRunning || running == 2
		if bothRunning && queuedSeen && len(partial) == 2 {
			open()
		}
		if final == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !bothRunning || !queuedSeen {
		t.Errorf("never saw two jobs running (%v) and one queued (%v)", bothRunning, queuedSeen)
	}
	if len(partial) == 0 {
		t.Error("no progress was reported: no job was seen part way")
	}
	for i, id := range ids {
		j, err := ta.c.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != agent.Done || j.Digest != sha(tmpls[i]) || !j.Verified || j.Percent != 100 {
			t.Errorf("job %s: %+v, want done with digest %s", names[i], j, sha(tmpls[i]))
		}
		if j.Format != "qcow2" || j.VirtualSize != int64(i+1)<<30 {
			t.Errorf("job %s: format %s virtual size %d", names[i], j.Format, j.VirtualSize)
		}
		if j.Path != filepath.Join(ta.pool, names[i]) {
			t.Errorf("job %s: path %s", names[i], j.Path)
		}
	}

	inv, err := ta.c.Inventory(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Pool != ta.pool || inv.FreeBytes <= 0 {
		t.Errorf("inventory pool %s free %d", inv.Pool, inv.FreeBytes)
	}
	if len(inv.Files) != 3 {
		t.Fatalf("inventory lists %d files, want 3: %+v", len(inv.Files), inv.Files)
	}
	for i, f := range inv.Files {
		if f.Path != names[i] || f.Format != "qcow2" || f.VirtualSize != int64(i+1)<<30 || f.Digest != sha(tmpls[i]) || f.DigestSource != "download" || f.Size != int64(len(tmpls[i])) {
			t.Errorf("inventory file %d: %+v", i, f)
		}
	}
	// The inventory's files decode into migrate's own type.
	var raw struct{ Files []migrate.File }
	resp := getJSON(t, ta.url+"/v1/inventory", &raw)
	if resp.StatusCode != 200 || len(raw.Files) != 3 || raw.Files[1] != inv.MigrateFiles()[1] || raw.Files[1].VirtualSize != 2<<30 {
		t.Errorf("inventory as []migrate.File: %+v", raw.Files)
	}
}

func getJSON(t *testing.T, url string, v any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
	return resp
}

// Downloads whose content is wrong or unsafe fail and leave nothing in
// the pool.
func TestRejectedDownloads(t *testing.T) {
	t.Parallel()
	good := makeTemplate(t, 64<<20, 0)
	overlay := makeOverlay(t)
	raw := []byte(strings.Repeat("raw disk bytes ", 1000))
	srv := faultserver.StartTest(t, resource("/good.qcow2", good), resource("/overlay.qcow2", overlay), resource("/disk.raw", raw))
	ta := startAgent(t, nil)
	tests := []struct {
		name string
		req  agent.DownloadRequest
		want []string
	}{
		{"wrong checksum", agent.DownloadRequest{URL: srv.URL("/good.qcow2"), Checksum: sha([]byte("other"))}, []string{"checksum mismatch", sha([]byte("other"))[7:]}},
		{"wrong size", agent.DownloadRequest{URL: srv.URL("/good.qcow2"), Size: int64(len(good)) + 1}, []string{"size"}},
		{"backing file", agent.DownloadRequest{URL: srv.URL("/overlay.qcow2"), Checksum: sha(overlay)}, []string{"unsafe qcow2", "backing-file", "/etc/shadow"}},
		{"backing file, format given", agent.DownloadRequest{URL: srv.URL("/overlay.qcow2"), Format: "qcow2"}, []string{"backing-file"}},
		{"raw as qcow2", agent.DownloadRequest{URL: srv.URL("/disk.raw"), Format: "qcow2"}, []string{"not a qcow2 image"}},
		{"qcow2 as raw", agent.DownloadRequest{URL: srv.URL("/good.qcow2"), Format: "raw"}, []string{"is a qcow2 image"}},
		{"not found", agent.DownloadRequest{URL: srv.URL("/missing.qcow2")}, []string{"404"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Name = fmt.Sprintf("t%d.qcow2", i)
			j := ta.download(t, tt.req)
			if j.State != agent.Failed {
				t.Fatalf("state %s, want failed", j.State)
			}
			mustContain(t, "error", j.Error, tt.want...)
			if _, err := os.Stat(filepath.Join(ta.pool, tt.req.Name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is in the pool after a failed job (%v)", tt.req.Name, err)
			}
			if _, err := os.Stat(filepath.Join(ta.pool, agent.IncomingDir, tt.req.Name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s stays in the staging directory after a failed job (%v)", tt.req.Name, err)
			}
		})
	}
	inv, err := ta.c.Inventory(ctxT(t), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Files) != 0 {
		t.Errorf("inventory after failed jobs: %+v", inv.Files)
	}
	// The same agent takes good content.
	j := ta.download(t, agent.DownloadRequest{URL: srv.URL("/disk.raw"), Name: "disk.raw"})
	if j.State != agent.Done || j.Format != "raw" || j.VirtualSize != int64(len(raw)) || j.Verified || j.Digest != sha(raw) {
		t.Errorf("raw download: %+v", j)
	}
}

// A cancelled download keeps what it fetched, and the same request
// resumes it.
func TestCancelResume(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	srv, req, want := slowResource(t, "big.raw", 7, size)
	ta := startAgent(t, func(c *agent.Config) { c.Connections = 1 })
	ctx := ctxT(t)
	j := ta.downloadPartly(t, req, 512<<10)
	c, err := ta.c.Cancel(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != agent.Canceled || c.Finished == nil {
		t.Fatalf("cancelled job: %+v", c)
	}
	mustContain(t, "error", c.Error, "resume")
	// Cancelling again is a conflict; an unknown job is a 404.
	if _, err := ta.c.Cancel(ctx, j.ID); !errors.Is(err, agentclient.ErrConflict) {
		t.Errorf("second cancel: %v, want a conflict", err)
	}
	if _, err := ta.c.Job(ctx, "nosuchjob"); !errors.Is(err, agentclient.ErrNotFound) {
		t.Errorf("unknown job: %v, want not found", err)
	}
	inv, err := ta.c.Inventory(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Files) != 0 {
		t.Errorf("inventory shows a cancelled download: %+v", inv.Files)
	}
	if contains(poolNames(t, ta.pool), "big.raw") {
		t.Error("the cancelled download is in the pool")
	}

	srv.SetFaults(faultserver.Faults{})
	srv.ResetStats()
	j = ta.download(t, req)
	if j.State != agent.Done || j.Digest != want {
		t.Fatalf("resumed job: %+v", j)
	}
	if j.ResumedFrom <= 0 {
		t.Errorf("resumed from %d bytes, want what the cancelled job had fetched", j.ResumedFrom)
	}
	if got := srv.Stats().BytesServed; got >= size {
		t.Errorf("the resumed download fetched %d bytes, want less than the whole %d", got, size)
	}
	ranged := false
	for _, r := range srv.Requests() {
		if r.Range != "" && !strings.HasPrefix(r.Range, "bytes=0-") {
			ranged = true
		}
	}
	if !ranged {
		t.Errorf("no request asked for the rest of the file: %+v", srv.Requests())
	}
	got, err := os.ReadFile(filepath.Join(ta.pool, "big.raw"))
	if err != nil {
		t.Fatal(err)
	}
	if sha(got) != want {
		t.Error("the resumed file's content is wrong")
	}
}

// An agent stopped mid-download leaves what it fetched; a new agent on the
// same pool, given the same request, resumes it.
func TestRestartResumes(t *testing.T) {
	t.Parallel()
	const size = 4 << 20
	srv, req, want := slowResource(t, "t.raw", 3, size)
	first := startAgent(t, func(c *agent.Config) { c.Connections = 1 })
	ctx := ctxT(t)
	j := first.downloadPartly(t, req, 512<<10)
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if j, err := first.c.Job(ctx, j.ID); err != nil || j.State != agent.Canceled {
		t.Fatalf("job after Close: %+v, %v", j, err)
	}
	if _, err := first.c.Download(ctx, req); !errors.Is(err, agentclient.ErrServer) {
		t.Errorf("download after Close: %v, want a 503", err)
	}

	srv.SetFaults(faultserver.Faults{})
	second := startAgent(t, func(c *agent.Config) { c.Pool = first.pool })
	j = second.download(t, req)
	if j.State != agent.Done || j.Digest != want || j.ResumedFrom <= 0 {
		t.Fatalf("job on the restarted agent: %+v", j)
	}
}

// slowResource serves size bytes of pattern seed as /name at 256 KiB/s,
// and returns the request for them and their digest.
func slowResource(t *testing.T, name string, seed uint64, size int64) (*faultserver.Server, agent.DownloadRequest, string) {
	t.Helper()
	srv := faultserver.StartTest(t,
		faultserver.WithResource(faultserver.PatternResource("/"+name, seed, size)),
		faultserver.WithFaults(faultserver.Faults{Rate: 256 << 10}))
	v, _ := srv.Version("/" + name)
	want := sha256Of(t, v.Content)
	return srv, agent.DownloadRequest{URL: srv.URL("/" + name), Name: name, Checksum: want}, want
}

// downloadPartly starts req and returns its job once at least n bytes
// have arrived, failing if it ends before.
func (ta *testAgent) downloadPartly(t *testing.T, req agent.DownloadRequest, n int64) agent.Job {
	t.Helper()
	ctx := ctxT(t)
	j, err := ta.c.Download(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for j.Done < n {
		if j.State.Final() {
			t.Fatalf("job ended before %d bytes had arrived: %+v", n, j)
		}
		time.Sleep(10 * time.Millisecond)
		if j, err = ta.c.Job(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	return j
}

func sha256Of(t *testing.T, r *io.SectionReader) string {
	t.Helper()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return sha(data)
}

// An orchestrator's certstore.Registry keeps agents' trust stores through
// agentclient, as it does local stores.
func TestRegistrySyncsAgents(t *testing.T) {
	t.Parallel()
	pki, err := faultserver.NewPKI(0)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := makeTemplate(t, 64<<20, 0)
	srv := faultserver.StartTest(t, faultserver.WithTLS(pki.Certificate(true)), resource("/t.qcow2", tmpl))
	agents := []*testAgent{startAgent(t, nil), startAgent(t, nil)}
	var hosts certstore.HostList
	for i, a := range agents {
		hosts = append(hosts, certstore.Host{ID: certstore.HostID(i + 1), Zone: 1, Up: true, Store: a.c})
	}
	// A host of another zone must not get the certificate.
	other := startAgent(t, nil)
	hosts = append(hosts, certstore.Host{ID: 9, Zone: 2, Up: true, Store: other.c})
	reg, err := certstore.NewRegistry(certstore.NewMemoryDB(), hosts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	res, err := reg.Upload(ctx, certstore.Upload{Alias: "mirror-ca", PEM: certstore.EncodePEM(pki.Root), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hosts) != 2 {
		t.Fatalf("upload reached %d hosts, want 2: %+v", len(res.Hosts), res.Hosts)
	}
	for _, h := range res.Hosts {
		if h.Err != nil {
			t.Errorf("host %d: %v", h.Host, h.Err)
		}
	}
	for i, a := range agents {
		certs, err := a.c.Certificates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(certs) != 1 || certs[0].Alias != "mirror-ca" || certs[0].SHA256 != certstore.Fingerprint(pki.Root) {
			t.Errorf("agent %d holds %+v after upload", i+1, certs)
		}
	}
	if certs, _ := other.c.Certificates(ctx); len(certs) != 0 {
		t.Errorf("agent of zone 2 holds %+v", certs)
	}
	list, err := reg.List(ctx, certstore.ListOptions{Hosts: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list[0].Hosts {
		if s.Status != certstore.Synced {
			t.Errorf("host %d: %s (%s), want synced", s.Host, s.Status, s.Error)
		}
	}
	// The agents trust it for downloads at once.
	j := agents[1].download(t, agent.DownloadRequest{URL: srv.URL("/t.qcow2"), Name: "t.qcow2", Checksum: sha(tmpl)})
	if j.State != agent.Done {
		t.Errorf("download after the registry's upload: %s %s", j.State, j.Error)
	}

	if _, err := reg.Revoke(ctx, res.Certificate.ID, 1); err != nil {
		t.Fatal(err)
	}
	for i, a := range agents {
		certs, err := a.c.Certificates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(certs) != 0 {
			t.Errorf("agent %d holds %+v after revoke", i+1, certs)
		}
	}
	// A sync finds nothing to do.
	rep, err := reg.Sync(ctx)
	if err != nil || rep.Err() != nil {
		t.Fatalf("sync: %v %v", err, rep.Err())
	}
}

// The orchestrator plans a migration from the destination agent's
// inventory, and the agent prepares it.
func TestMigrationPrepare(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	src := t.TempDir()
	base := filepath.Join(src, "tmpl.qcow2")
	if err := qcow2.Create(base, qcow2.Options{Size: 256 << 20}); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(src, "vm-root.qcow2")
	if err := qcow2.Create(disk, qcow2.Options{BackingFile: "tmpl.qcow2", BackingFormat: "qcow2"}); err != nil {
		t.Fatal(err)
	}
	baseData, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	srv := faultserver.StartTest(t, resource("/tmpl.qcow2", baseData))
	ta := startAgent(t, nil)
	// The destination got the template by direct download, so its
	// inventory knows the digest without hashing.
	if j := ta.download(t, agent.DownloadRequest{URL: srv.URL("/tmpl.qcow2"), Name: "tmpl.qcow2", Checksum: sha(baseData)}); j.State != agent.Done {
		t.Fatalf("template download: %+v", j)
	}

	spec := func(dest migrate.Destination) migrate.Spec {
		return migrate.Spec{
			VM:          "i-2-10-VM",
			Disks:       []migrate.Disk{{Label: "vda", Path: disk}},
			Source:      migrate.Host{QEMU: "7.2.0"},
			Destination: dest,
		}
	}
	inv, err := ta.c.Inventory(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := migrate.NewPlan(ctx, spec(inv.Destination()), migrate.Templates(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Err(); err != nil {
		t.Fatal(err)
	}
	if d := plan.Disks[0]; d.Strategy != migrate.Linked || d.Destination != filepath.Join(ta.pool, "vm-root.qcow2") {
		t.Fatalf("plan: %s to %s (%s), want linked into the pool", d.Strategy, d.Destination, d.Reason)
	}
	// The plan travels as JSON, as between two hosts.
	data, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	var sent migrate.Plan
	if err := json.Unmarshal(data, &sent); err != nil {
		t.Fatal(err)
	}
	done, err := ta.c.Prepare(ctx, &sent)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(ta.pool, "vm-root.qcow2")
	if len(done.Created) != 1 || done.Created[0] != dest {
		t.Fatalf("prepared %+v, want %s created", done, dest)
	}
	img, err := qcow2.InspectFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	srcImg, err := qcow2.InspectFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	if img.Size != srcImg.Size || img.BackingFile != "tmpl.qcow2" || img.BackingFormat != "qcow2" {
		t.Errorf("prepared disk: size %d backing %q (%s), want size %d backing tmpl.qcow2 (qcow2)", img.Size, img.BackingFile, img.BackingFormat, srcImg.Size)
	}
	inv, err = ta.c.Inventory(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, f := range inv.Files {
		if f.Path == "vm-root.qcow2" {
			found = f.BackingFile == "tmpl.qcow2" && f.VirtualSize == int64(srcImg.Size)
		}
	}
	if !found {
		t.Errorf("inventory after prepare: %+v", inv.Files)
	}
	// Preparing the same plan again keeps what is there.
	again, err := ta.c.Prepare(ctx, &sent)
	if err != nil || len(again.Created) != 0 || len(again.Kept) != 1 {
		t.Errorf("second prepare: %+v, %v", again, err)
	}

	t.Run("another directory", func(t *testing.T) {
		elsewhere := migrate.Destination{Dir: t.TempDir()}
		p, err := migrate.NewPlan(ctx, spec(elsewhere), migrate.Templates(nil))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ta.c.Prepare(ctx, p)
		if !errors.Is(err, agentclient.ErrBadRequest) {
			t.Fatalf("plan for %s: %v, want a 400", elsewhere.Dir, err)
		}
		mustContain(t, "error", err.Error(), `"dir"`, elsewhere.Dir, "pool")
		if _, err := os.Stat(filepath.Join(elsewhere.Dir, "vm-root.qcow2")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a disk was created outside the pool: %v", err)
		}
	})
	t.Run("full copy when the template is gone", func(t *testing.T) {
		empty := startAgent(t, nil)
		inv, err := empty.c.Inventory(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		p, err := migrate.NewPlan(ctx, spec(inv.Destination()), migrate.Templates(nil))
		if err != nil {
			t.Fatal(err)
		}
		if p.Disks[0].Strategy != migrate.Full {
			t.Fatalf("strategy %s, want full", p.Disks[0].Strategy)
		}
		if _, err := empty.c.Prepare(ctx, p); err != nil {
			t.Fatal(err)
		}
		img, err := qcow2.InspectFile(filepath.Join(empty.pool, "vm-root.qcow2"))
		if err != nil {
			t.Fatal(err)
		}
		if img.BackingFile != "" || img.Size != srcImg.Size {
			t.Errorf("full disk: backing %q size %d", img.BackingFile, img.Size)
		}
	})
}

// Job events reach the callback with the bearer token; a callback that
// fails does not hold downloads up.
func TestCallback(t *testing.T) {
	t.Parallel()
	tmpl := makeTemplate(t, 64<<20, 1<<20)
	srv := faultserver.StartTest(t, resource("/t.qcow2", tmpl), faultserver.WithFaults(faultserver.Faults{Rate: 1 << 20}))

	var (
		mu     sync.Mutex
		events []agent.Event
		auth   []string
	)
	got := make(chan agent.Event, 1000)
	recv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e agent.Event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			t.Errorf("callback body: %v", err)
		}
		mu.Lock()
		events = append(events, e)
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		got <- e
	})
	cb := httptestServer(t, recv)
	ta := startAgent(t, func(c *agent.Config) { c.Callback = cb; c.Connections = 1 })
	j := ta.download(t, agent.DownloadRequest{URL: srv.URL("/t.qcow2"), Name: "t.qcow2", Checksum: sha(tmpl)})
	if j.State != agent.Done {
		t.Fatalf("job: %+v", j)
	}
	deadline := time.After(time.Minute)
	for done := false; !done; {
		select {
		case e := <-got:
			done = e.Type == "done"
		case <-deadline:
			t.Fatal("no done event")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var types []string
	for i, e := range events {
		if e.Job.ID != j.ID {
			t.Errorf("event %d is for job %s, want %s", i, e.Job.ID, j.ID)
		}
		if auth[i] != "Bearer "+testToken {
			t.Errorf("event %d came with Authorization %q", i, auth[i])
		}
		if len(types) == 0 || types[len(types)-1] != e.Type {
			types = append(types, e.Type)
		}
	}
	if strings.Join(types, ",") != "queued,running,progress,done" {
		t.Errorf("event types %v, want queued, running, progress..., done", types)
	}
	if last := events[len(events)-1]; last.Job.Digest != sha(tmpl) || last.Job.State != agent.Done {
		t.Errorf("done event: %+v", last.Job)
	}

	t.Run("failing callback", func(t *testing.T) {
		fail := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}))
		ta := startAgent(t, func(c *agent.Config) { c.Callback = fail })
		j := ta.download(t, agent.DownloadRequest{URL: srv.URL("/t.qcow2"), Name: "t.qcow2", Checksum: sha(tmpl)})
		if j.State != agent.Done {
			t.Fatalf("job with a failing callback: %+v", j)
		}
	})
}

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	s := newLoopbackServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	pemA := string(certstore.EncodePEM(mustPKI(t).Root))
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     []string
	}{
		{"empty body", "POST", "/v1/downloads", "", 400, []string{"empty"}},
		{"not JSON", "POST", "/v1/downloads", "{", 400, []string{"invalid JSON"}},
		{"syntax", "POST", "/v1/downloads", `{"url":}`, 400, []string{"invalid JSON at byte"}},
		{"list", "POST", "/v1/downloads", `[]`, 400, []string{"want a JSON object"}},
		{"unknown field", "POST", "/v1/downloads", `{"url":"http://127.0.0.1/x","name":"x","bogus":1}`, 400, []string{`"bogus"`, "unknown field"}},
		{"wrong type", "POST", "/v1/downloads", `{"url":5,"name":"x"}`, 400, []string{`"url"`, "want a string"}},
		{"size type", "POST", "/v1/downloads", `{"url":"http://127.0.0.1/x","name":"x","size":"big"}`, 400, []string{`"size"`, "want a number"}},
		{"two objects", "POST", "/v1/downloads", `{"url":"http://127.0.0.1/x","name":"x"} {}`, 400, []string{"one object"}},
		{"no url", "POST", "/v1/downloads", `{"name":"x"}`, 400, []string{`"url"`, "missing"}},
		{"no name", "POST", "/v1/downloads", `{"url":"http://127.0.0.1/x"}`, 400, []string{`"name"`, "missing"}},
		{"path name", "POST", "/v1/downloads", `{"url":"http://127.0.0.1/x","name":"../etc/passwd"}`, 400, []string{`"name"`}},
		{"slash name", "POST", "/v1/downloads", `{"url":"http://127.0.0.1/x","name":"a/b"}`, 400, []string{`"name"`, "'/'"}},
		{"hidden name", "POST", "/v1/downloads", `{"url":"http://127.0.0.1/x","name":".x.ddpart"}`, 400, []string{`"name"`, "starts with '.'"}},
		{"colon name", "POST", "/v1/downloads", `{"url":"http://127.0.0.1/x","name":"nbd:x"}`, 400, []string{`"name"`, "':'"}},
		{"scheme", "POST", "/v1/downloads", `{"url":"file:///etc/passwd","name":"x"}`, 400, []string{`"url"`, "scheme"}},
		{"checksum", "POST", "/v1/downloads", `{"url":"http://127.0.0.1/x","name":"x","checksum":"{SHA-999}ab"}`, 400, []string{`"checksum"`}},
		{"negative size", "POST", "/v1/downloads", `{"url":"http://127.0.0.1/x","name":"x","size":-1}`, 400, []string{`"size"`}},
		{"format", "POST", "/v1/downloads", `{"url":"http://127.0.0.1/x","name":"x","format":"vmdk"}`, 400, []string{`"format"`}},
		{"alias", "PUT", "/v1/truststore/Mirror", `{"pem":"x"}`, 400, []string{"uppercase"}},
		{"reserved alias", "PUT", "/v1/truststore/cloudca", `{"pem":"x"}`, 400, []string{"reserved"}},
		{"no pem", "PUT", "/v1/truststore/ca", `{}`, 400, []string{`"pem"`, "missing"}},
		{"bad pem", "PUT", "/v1/truststore/ca", `{"pem":"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n"}`, 400, []string{`"pem"`}},
		{"two certificates", "PUT", "/v1/truststore/ca", mustJSON(t, agent.ImportRequest{PEM: pemA + pemA}), 400, []string{`"pem"`, "holds 2 certificates"}},
		{"pem unknown field", "PUT", "/v1/truststore/ca", `{"pem":"x","alias":"y"}`, 400, []string{`"alias"`, "unknown field"}},
		{"plan missing dir", "POST", "/v1/migrations/prepare", `{"disks":[]}`, 400, []string{`"dir"`}},
		{"plan missing disks", "POST", "/v1/migrations/prepare", mustJSON(t, map[string]any{"dir": ta.pool}), 400, []string{`"disks"`}},
		{"plan unknown field", "POST", "/v1/migrations/prepare", `{"dir":"/x","disks":[],"extra":true}`, 400, []string{`"extra"`}},
		{"plan outside pool", "POST", "/v1/migrations/prepare", mustJSON(t, map[string]any{"dir": ta.pool, "disks": []map[string]any{{"label": "vda", "destination": filepath.Join(filepath.Dir(ta.pool), "x.qcow2")}}}), 400, []string{"not a file directly in the pool"}},
		{"plan hidden file", "POST", "/v1/migrations/prepare", mustJSON(t, map[string]any{"dir": ta.pool, "disks": []map[string]any{{"label": "vda", "destination": filepath.Join(ta.pool, ".x")}}}), 400, []string{"starts with '.'"}},
		{"inventory query", "GET", "/v1/inventory?digests=all", "", 400, []string{"digests"}},
		{"unknown job", "GET", "/v1/downloads/nope", "", 404, []string{`"nope"`}},
		{"unknown endpoint", "GET", "/v2/things", "", 404, []string{"/v2/things"}},
		{"wrong method", "PATCH", "/v1/downloads", "", 405, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, ta.url+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.status)
			}
			if len(tt.want) == 0 {
				return
			}
			var e agent.ErrorBody
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("error body %q is not JSON: %v", body, err)
			}
			mustContain(t, "error", e.Error, tt.want...)
		})
	}
	if jobs := ta.Jobs(); len(jobs) != 0 {
		t.Errorf("bad requests made jobs: %+v", jobs)
	}
	if entries, _ := ta.store.Entries(context.Background()); len(entries) != 0 {
		t.Errorf("bad requests changed the trust store: %+v", entries)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustPKI(t *testing.T) *faultserver.PKI {
	t.Helper()
	p, err := faultserver.NewPKI(0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// gatedWriter passes the first before bytes of a response, flushed, and
// then waits for gate to close before writing more.
type gatedWriter struct {
	http.ResponseWriter
	gate   <-chan struct{}
	before int
	passed bool
}

func (g *gatedWriter) Write(b []byte) (int, error) {
	written := 0
	if g.before > 0 {
		k, err := g.ResponseWriter.Write(b[:min(len(b), g.before)])
		g.before -= k
		written, b = k, b[k:]
		if err != nil || len(b) == 0 {
			return written, err
		}
	}
	if !g.passed {
		if f, ok := g.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		<-g.gate
		g.passed = true
	}
	m, err := g.ResponseWriter.Write(b)
	return written + m, err
}
