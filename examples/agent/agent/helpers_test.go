package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/examples/agent/agent"
	"github.com/directdl/directdl/examples/agent/agentclient"
	"github.com/directdl/directdl/internal/faultserver"
	"github.com/directdl/directdl/qcow2"
)

const testToken = "s3cret-token-for-tests"

// testAgent is an Agent served on loopback with a client of it.
type testAgent struct {
	*agent.Agent
	c     *agentclient.Client
	url   string
	pool  string
	store *certstore.FileStore
}

// startAgent serves a new agent whose downloads may reach loopback; mod
// adjusts its Config.
func startAgent(t *testing.T, mod func(*agent.Config)) *testAgent {
	t.Helper()
	pool := t.TempDir()
	store, err := certstore.OpenFileStore(filepath.Join(t.TempDir(), "trust.jks"), "changeit")
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{
		Pool:             pool,
		Token:            testToken,
		TrustStore:       store,
		Policy:           download.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		ProgressInterval: 20 * time.Millisecond,
		DownloadOptions:  []download.Option{download.WithRetries(2), download.WithBackoff(10*time.Millisecond, 50*time.Millisecond)},
		QEMU:             "QEMU emulator version 7.2.0",
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	t.Cleanup(srv.Close)
	c, err := agentclient.New(srv.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	return &testAgent{Agent: a, c: c, url: srv.URL, pool: pool, store: store}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// makeTemplate returns a qcow2 image of the given virtual size, padded
// with random bytes to at least length bytes (QEMU ignores what lies past
// an image's clusters), so that a download takes a while.
func makeTemplate(t *testing.T, virtual int64, length int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.qcow2")
	if err := qcow2.Create(path, qcow2.Options{Size: virtual}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < length {
		pad := make([]byte, length-len(data))
		rand.Read(pad)
		data = append(data, pad...)
	}
	return data
}

// makeOverlay returns a qcow2 image that names a backing file: what a
// template must never be.
func makeOverlay(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := qcow2.Create(filepath.Join(dir, "base.qcow2"), qcow2.Options{Size: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "overlay.qcow2")
	if err := qcow2.Create(path, qcow2.Options{BackingFile: "/etc/shadow", BackingFormat: "raw", Size: 1 << 20, Unsafe: true}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(s[:])
}

// resource serves data at path.
func resource(path string, data []byte) faultserver.Option {
	return faultserver.WithResource(faultserver.Resource{Path: path, Content: bytes.NewReader(data), Size: int64(len(data))})
}

// wait polls job id until it ends.
func (ta *testAgent) wait(t *testing.T, id string) agent.Job {
	t.Helper()
	j, err := ta.c.Wait(ctxT(t), id, 10*time.Millisecond)
	if err != nil {
		t.Fatalf("waiting for job %s: %v", id, err)
	}
	return j
}

// download queues req and waits for the job to end.
func (ta *testAgent) download(t *testing.T, req agent.DownloadRequest) agent.Job {
	t.Helper()
	j, err := ta.c.Download(ctxT(t), req)
	if err != nil {
		t.Fatalf("POST /v1/downloads %s: %v", req.Name, err)
	}
	if j.State != agent.Queued {
		t.Errorf("new job state %s, want %s", j.State, agent.Queued)
	}
	return ta.wait(t, j.ID)
}

// poolNames lists every entry of the pool, hidden ones included.
func poolNames(t *testing.T, pool string) []string {
	t.Helper()
	des, err := os.ReadDir(pool)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s = %q, want it to contain %q", what, got, w)
		}
	}
}

func newLoopbackServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }
