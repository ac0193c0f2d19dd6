package agent_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/directdl/directdl/examples/agent/agent"
	"github.com/directdl/directdl/examples/agent/agentclient"
	"github.com/directdl/directdl/internal/faultserver"
	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/qcow2"
)

// needQemuImg fails under CI=true when qemu-img is missing, and skips
// elsewhere.
func needQemuImg(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("qemu-img")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("qemu-img is needed (Debian package qemu-utils): %v", err)
		}
		t.Skip("qemu-img not installed")
	}
	return p
}

// linkedPlan is a plan for one linked disk in pool resting on base: what
// migrate.NewPlan makes, written out so that each field can be bent.
func linkedPlan(pool string, base migrate.Layer, backing string) *migrate.Plan {
	return &migrate.Plan{
		VM:  "i-2-10-VM",
		Dir: pool,
		Disks: []migrate.DiskPlan{{
			Label:             "vda",
			Source:            "/src/vm-root.qcow2",
			Format:            "qcow2",
			Destination:       filepath.Join(pool, "vm-root.qcow2"),
			DestinationFormat: "qcow2",
			VirtualSize:       base.VirtualSize,
			Strategy:          migrate.Linked,
			Sync:              "top",
			Backing:           backing,
			BackingFormat:     base.Format,
			Chain: []migrate.Layer{
				{Path: "/src/vm-root.qcow2", Format: "qcow2", VirtualSize: base.VirtualSize},
				base,
			},
		}},
	}
}

// A template migrate.Prepare fetches into the pool must pass the same
// vetting as a downloaded one: the README's security notes say nothing
// reaches the pool unvetted. Prepare only checks the fetched base's
// format, virtual size and backing file, so a base with an external data
// file (which QEMU opens on the host) or other unsafe header bits lands in
// the pool and a linked disk is created on it.
func TestReview10PrepareFetchIsVetted(t *testing.T) {
	t.Parallel()
	const vsize = 1 << 20
	dataFileImage := func(t *testing.T) []byte {
		qemuImg := needQemuImg(t)
		dir := t.TempDir()
		img := filepath.Join(dir, "tmpl.qcow2")
		// qemu-img creates the data file: keep it in the test's directory.
		out, err := exec.Command(qemuImg, "create", "-f", "qcow2", "-o",
			"data_file="+filepath.Join(dir, "data.raw")+",data_file_raw=on", img, "1M").CombinedOutput()
		if err != nil {
			t.Fatalf("qemu-img create: %v\n%s", err, out)
		}
		data, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	dirtyImage := func(t *testing.T) []byte {
		data := makeTemplate(t, vsize, 0)
		data[79] |= 1 // incompatible_features (bytes 72-79, big endian): dirty
		return data
	}
	for _, tc := range []struct {
		name  string
		image func(*testing.T) []byte
	}{
		{"external data file", dataFileImage},
		{"dirty", dirtyImage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			data := tc.image(t)
			srv := faultserver.StartTest(t, resource("/tmpl.qcow2", data))
			ta := startAgent(t, nil)

			// The agent's own rule, through a download: refused.
			j := ta.download(t, agent.DownloadRequest{URL: srv.URL("/tmpl.qcow2"), Name: "tmpl.qcow2", Checksum: sha(data)})
			if j.State != agent.Failed {
				t.Fatalf("download of the template: %s (%s), want failed by vetting", j.State, j.Error)
			}

			// The same template, fetched by a prepare.
			basePath := filepath.Join(ta.pool, "tmpl.qcow2")
			plan := linkedPlan(ta.pool, migrate.Layer{
				Path: "/src/tmpl.qcow2", Name: "tmpl.qcow2", Format: "qcow2", VirtualSize: vsize, DestinationPath: basePath,
			}, "tmpl.qcow2")
			plan.Disks[0].Fetch = basePath
			plan.Fetches = []migrate.Fetch{{
				Template: "tmpl-201", URL: srv.URL("/tmpl.qcow2"), Checksum: sha(data),
				Path: basePath, Format: "qcow2", VirtualSize: vsize, Bytes: int64(len(data)),
			}}
			done, err := ta.c.Prepare(ctx, plan)
			if err == nil {
				t.Errorf("prepare fetched a template the download refuses and created %v on it; want it refused as the download is", done.Created)
			}
			for _, name := range []string{"tmpl.qcow2", "vm-root.qcow2"} {
				if _, err := os.Stat(filepath.Join(ta.pool, name)); err == nil {
					t.Errorf("%s is in the pool after prepare, unvetted", name)
				}
			}
		})
	}
}

// A plan's linked disk names its backing file, which QEMU opens on the
// host for the VM. The agent checks only where a plan writes, so a plan
// can create a disk in the pool whose backing file is any file of the host
// (another tenant's disk, /etc/shadow): exactly what the README's security
// notes say a template may not do. The backing name, and the chain's
// destination paths Prepare reads (and reports the size and digest of),
// must resolve into the pool too.
func TestReview10PlanBackingOutsidePool(t *testing.T) {
	t.Parallel()
	const vsize = 1 << 20
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret.raw")
	if err := os.WriteFile(secret, make([]byte, vsize), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		// plan builds the plan given the pool, holding base.raw.
		plan func(pool string) *migrate.Plan
	}{
		{"backing outside the pool, chain inside", func(pool string) *migrate.Plan {
			return linkedPlan(pool, migrate.Layer{Path: "/src/base.raw", Name: "base.raw", Format: "raw", VirtualSize: vsize, DestinationPath: filepath.Join(pool, "base.raw")}, secret)
		}},
		{"backing and chain outside the pool", func(pool string) *migrate.Plan {
			return linkedPlan(pool, migrate.Layer{Path: secret, Name: secret, Format: "raw", VirtualSize: vsize, DestinationPath: secret}, secret)
		}},
		{"backing escaping by a relative name", func(pool string) *migrate.Plan {
			rel, err := filepath.Rel(pool, secret)
			if err != nil {
				t.Fatal(err)
			}
			return linkedPlan(pool, migrate.Layer{Path: "/src/base.raw", Name: "base.raw", Format: "raw", VirtualSize: vsize, DestinationPath: filepath.Join(pool, "base.raw")}, rel)
		}},
		{"backing by a QEMU protocol name", func(pool string) *migrate.Plan {
			return linkedPlan(pool, migrate.Layer{Path: "/src/base.raw", Name: "base.raw", Format: "raw", VirtualSize: vsize, DestinationPath: filepath.Join(pool, "base.raw")},
				`json:{"driver":"raw","file":{"driver":"file","filename":"`+secret+`"}}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ta := startAgent(t, nil)
			if err := os.WriteFile(filepath.Join(ta.pool, "base.raw"), make([]byte, vsize), 0o644); err != nil {
				t.Fatal(err)
			}
			plan := tc.plan(ta.pool)
			_, err := ta.c.Prepare(ctxT(t), plan)
			if !errors.Is(err, agentclient.ErrBadRequest) {
				t.Errorf("plan with backing %q and chain path %q: %v, want a 400 naming the backing file", plan.Disks[0].Backing, plan.Disks[0].Chain[1].DestinationPath, err)
			}
			dest := filepath.Join(ta.pool, "vm-root.qcow2")
			if img, err := qcow2.InspectFile(dest); err == nil {
				t.Errorf("the agent created %s with backing file %q (%s), outside the pool", dest, img.BackingFile, img.BackingFormat)
			}
		})
	}
}

// Every endpoint but health needs the token: the mux's redirect of a path
// that is not clean (//v1/inventory, /v1/./inventory) is served before the
// token is checked, so an unauthenticated caller learns which routes exist
// (307 where other paths get 401).
func TestReview10UncleanPathNeedsToken(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"//v1/inventory", "/v1/./inventory", "/v1//downloads", "/x/../v1/truststore"} {
		req, err := http.NewRequest("GET", ta.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d (Location %q), want 401", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// The staging directory must be a directory in the pool: an existing
// .agent-incoming that is a symlink (or anything but a directory) is taken
// as it is, so downloads land outside the pool before they are vetted, and
// the rename into the pool fails after the whole download when it points
// to another file system.
func TestReview10StagingMustBeInPool(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	ta := startAgent(t, nil)
	pool := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(pool, agent.IncomingDir)); err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{Pool: pool, Token: testToken, TrustStore: ta.store}
	a, err := agent.New(cfg)
	if err == nil {
		a.Close(ctxT(t))
		t.Errorf("New accepted %s, a symlink to %s, as the staging directory; want an error naming it", filepath.Join(pool, agent.IncomingDir), outside)
	}

	file := t.TempDir()
	if err := os.WriteFile(filepath.Join(file, agent.IncomingDir), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err = agent.New(agent.Config{Pool: file, Token: testToken, TrustStore: ta.store})
	if err == nil {
		a.Close(ctxT(t))
		t.Errorf("New accepted a regular file %s as the staging directory; want an error naming it", filepath.Join(file, agent.IncomingDir))
	}
}

// A download never replaces a file already in the pool: a disk a
// migration prepare created, a VM's disk, or a template other disks rest
// on (its replacement changes what every linked VM reads). A prepare
// refuses to overwrite (409); a download renames over it.
func TestReview10DownloadKeepsExistingFile(t *testing.T) {
	t.Parallel()
	tmpl := makeTemplate(t, 1<<20, 0)
	srv := faultserver.StartTest(t, resource("/t.qcow2", tmpl))
	ta := startAgent(t, nil)
	existing := filepath.Join(ta.pool, "vm-root.qcow2")
	if err := qcow2.Create(existing, qcow2.Options{Size: 2 << 20}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(existing)
	if err != nil {
		t.Fatal(err)
	}
	// Refused up front (409) or failed before the rename: either keeps
	// the file.
	j, err := ta.c.Download(ctxT(t), agent.DownloadRequest{URL: srv.URL("/t.qcow2"), Name: "vm-root.qcow2", Checksum: sha(tmpl)})
	if err == nil {
		if j = ta.wait(t, j.ID); j.State == agent.Done {
			t.Errorf("download over an existing pool file: done; want a 409, or the job failed naming the file")
		}
	} else if !errors.Is(err, agentclient.ErrConflict) {
		t.Errorf("download over an existing pool file: %v, want a 409", err)
	}
	after, err := os.ReadFile(existing)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("%s was replaced by the download", existing)
	}
}

// notifiers counts the callback senders alive in the process.
func notifiers() int {
	buf := make([]byte, 1<<22)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "agent.(*notifier).run(")
}

// Close whose ctx ends before the jobs do returns ctx's error and never
// closes the callback sender: its goroutine waits on the queue for good,
// although the package promises that every goroutine it starts ends by
// the time Close returns (and an embedder bounding the shutdown with a
// timeout calls Close once).
func TestReview10CloseTimeoutEndsNotifier(t *testing.T) {
	// Not parallel: it counts the process's callback senders.
	srv := faultserver.StartTest(t,
		faultserver.WithResource(faultserver.PatternResource("/big.raw", 3, 8<<20)),
		faultserver.WithFaults(faultserver.Faults{Rate: 256 << 10}))
	cb := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	before := notifiers()
	ta := startAgent(t, func(c *agent.Config) { c.Callback = cb; c.Connections = 1 })
	ctx := ctxT(t)
	j, err := ta.c.Download(ctx, agent.DownloadRequest{URL: srv.URL("/big.raw"), Name: "big.raw"})
	if err != nil {
		t.Fatal(err)
	}
	for j.State != agent.Running {
		if j.State.Final() {
			t.Fatalf("job ended before Close: %+v", j)
		}
		time.Sleep(10 * time.Millisecond)
		if j, err = ta.c.Job(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ta.Close(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with an ended context: %v, want context.Canceled", err)
	}
	// Close cancelled the job; it ends soon.
	for !ta.Jobs()[0].State.Final() {
		if ctx.Err() != nil {
			t.Fatalf("the job did not end after Close: %+v", ta.Jobs()[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for notifiers() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := notifiers(); n > before {
		t.Errorf("%d callback senders alive after Close returned and every job ended, %d before the agent was made; want the agent's ended", n, before)
	}
}

// After Close, a prepare is refused as a download is: 503 (the agent is
// stopping; try another host or later), not 409, which the client maps to
// ErrConflict, meaning a job or a file holds a name.
func TestReview10PrepareAfterClose(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	if err := ta.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	_, derr := ta.c.Download(ctxT(t), agent.DownloadRequest{URL: "http://127.0.0.1/x.raw", Name: "x.raw"})
	var de *agentclient.APIError
	if !errors.As(derr, &de) || de.Status != http.StatusServiceUnavailable {
		t.Fatalf("download after Close: %v, want 503", derr)
	}
	plan := &migrate.Plan{Dir: ta.pool, Disks: []migrate.DiskPlan{{
		Label: "vda", Destination: filepath.Join(ta.pool, "vm-root.raw"), DestinationFormat: "raw",
		VirtualSize: 1 << 20, Strategy: migrate.Full, Sync: "full",
	}}}
	_, err := ta.c.Prepare(ctxT(t), plan)
	var pe *agentclient.APIError
	if !errors.As(err, &pe) || pe.Status != http.StatusServiceUnavailable {
		t.Errorf("prepare after Close: %v, want 503 as for a download", err)
	}
	if errors.Is(err, agentclient.ErrConflict) {
		t.Errorf("prepare after Close matches ErrConflict: %v", err)
	}
}
