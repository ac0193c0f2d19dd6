package agent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/examples/agent/agent"
	"github.com/directdl/directdl/qcow2"
)

func TestInventoryDigests(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	ctx := ctxT(t)
	raw := []byte(strings.Repeat("disk", 4096))
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(ta.pool, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.raw", raw)
	if err := qcow2.Create(filepath.Join(ta.pool, "base.qcow2"), qcow2.Options{Size: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := qcow2.Create(filepath.Join(ta.pool, "vm.qcow2"), qcow2.Options{BackingFile: "base.qcow2", BackingFormat: "qcow2"}); err != nil {
		t.Fatal(err)
	}
	bad := makeTemplate(t, 1<<20, 0)
	bad[7] = 9 // version 9
	write("bad.qcow2", bad)
	// Not images of the pool: hidden files, directories, symbolic links.
	write(".x.ddpart", raw)
	if err := os.Mkdir(filepath.Join(ta.pool, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(ta.pool, "link.raw")); err != nil {
		t.Fatal(err)
	}

	inv, err := ta.c.Inventory(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	byName := func(inv *agent.Inventory) map[string]agent.File {
		m := map[string]agent.File{}
		for _, f := range inv.Files {
			m[f.Path] = f
		}
		return m
	}
	files := byName(inv)
	if len(files) != 4 {
		t.Fatalf("inventory lists %v, want a.raw, bad.qcow2, base.qcow2, vm.qcow2", inv.Files)
	}
	if inv.QEMU == "" {
		t.Error("no QEMU version")
	}
	for _, f := range files {
		if f.Digest != "" {
			t.Errorf("%s has digest %s without being downloaded or hashed", f.Path, f.Digest)
		}
	}
	if f := files["a.raw"]; f.Format != "raw" || f.VirtualSize != int64(len(raw)) || f.Size != int64(len(raw)) {
		t.Errorf("a.raw: %+v", f)
	}
	if f := files["vm.qcow2"]; f.Format != "qcow2" || f.BackingFile != "base.qcow2" || f.BackingFormat != "qcow2" || f.VirtualSize != 1<<30 {
		t.Errorf("vm.qcow2: %+v", f)
	}
	if f := files["bad.qcow2"]; f.Format != "qcow2" || !strings.Contains(f.Problem, "version") {
		t.Errorf("bad.qcow2: %+v", f)
	}

	inv, err = ta.c.Inventory(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	files = byName(inv)
	if f := files["a.raw"]; f.Digest != sha(raw) || f.DigestSource != "computed" {
		t.Errorf("computed a.raw: %+v, want digest %s", f, sha(raw))
	}
	// Kept while the file is unchanged, dropped once it changes.
	inv, _ = ta.c.Inventory(ctx, false)
	if f := byName(inv)["a.raw"]; f.Digest != sha(raw) {
		t.Errorf("a.raw lost its digest: %+v", f)
	}
	later := time.Now().Add(time.Hour)
	write("a.raw", append(raw, 'x'))
	if err := os.Chtimes(filepath.Join(ta.pool, "a.raw"), later, later); err != nil {
		t.Fatal(err)
	}
	inv, _ = ta.c.Inventory(ctx, false)
	if f := byName(inv)["a.raw"]; f.Digest != "" {
		t.Errorf("a.raw kept the digest of its old content: %+v", f)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	store, err := certstore.OpenFileStore(filepath.Join(t.TempDir(), "t.jks"), "changeit")
	if err != nil {
		t.Fatal(err)
	}
	pool := t.TempDir()
	file := filepath.Join(pool, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  agent.Config
		want string
	}{
		{"no pool", agent.Config{Token: "t", TrustStore: store}, "no pool"},
		{"pool is a file", agent.Config{Pool: file, Token: "t", TrustStore: store}, "not an existing directory"},
		{"no token", agent.Config{Pool: pool, Token: " ", TrustStore: store}, "empty token"},
		{"no store", agent.Config{Pool: pool, Token: "t"}, "no trust store"},
		{"parallel", agent.Config{Pool: pool, Token: "t", TrustStore: store, Parallel: -1}, "parallel -1"},
		{"connections", agent.Config{Pool: pool, Token: "t", TrustStore: store, Connections: 65}, "connections"},
		{"callback", agent.Config{Pool: pool, Token: "t", TrustStore: store, Callback: "mailto:x"}, "callback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := agent.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error about %q", err, tt.want)
			}
		})
	}
}
