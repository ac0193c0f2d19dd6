package migrate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/migrate"
)

// QEMU resolves a relative backing name by joining it to the overlay's
// directory as written and lets the kernel open the result, so ".." steps
// out of the directory a symlink points to, not out of the symlink's
// parent. A plan that cleans the joined path lexically proves the wrong
// file identical, and the destination's QEMU then reads another base under
// the copied top layer.
func TestReview9LinkedBaseResolvedThroughSymlinkedDestinationDir(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	if err := os.Mkdir(filepath.Join(h.src, "vm"), 0o755); err != nil {
		t.Fatal(err)
	}
	qcowBase(t, filepath.Join(h.src, "tmpl.qcow2"), baseSize, 0)
	qcowImage(t, filepath.Join(h.src, "vm", "root.qcow2"), baseSize, "../tmpl.qcow2", "qcow2")

	// On the destination, dst/link is a symlink to dst/a/b: QEMU opens
	// dst/link/../tmpl.qcow2 as dst/a/tmpl.qcow2, another image of the
	// same size. dst/tmpl.qcow2, what a lexical clean finds, is the
	// source's base.
	if err := os.MkdirAll(filepath.Join(h.dst, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("a", "b"), filepath.Join(h.dst, "link")); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(h.src, "tmpl.qcow2"), filepath.Join(h.dst, "tmpl.qcow2"))
	qcowBase(t, filepath.Join(h.dst, "a", "tmpl.qcow2"), baseSize, 1<<12)

	spec := migrate.Spec{
		Disks: []migrate.Disk{{Label: "vda", Path: filepath.Join(h.src, "vm", "root.qcow2"),
			Destination: filepath.Join(h.dst, "link", "root.qcow2")}},
		Source:      migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"},
		Destination: migrate.Destination{Host: migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"}, Dir: h.dst, Local: true},
	}
	p, err := migrate.NewPlan(context.Background(), spec, nil)
	if err != nil {
		return // refused: nothing is linked to the wrong base
	}
	d, _ := p.Disk("vda")
	if d.Strategy != migrate.Linked {
		return // copied whole: nothing is linked to the wrong base
	}
	// Where QEMU on the destination opens the backing name: joined, not
	// cleaned (filepath.Join would clean it).
	qemuOpens := filepath.Join(h.dst, "link") + string(filepath.Separator) + d.Backing
	got, err := os.Stat(qemuOpens)
	if err != nil {
		t.Fatalf("plan links vda to %q, which QEMU cannot open on the destination: %v", d.Backing, err)
	}
	planned, err := os.Stat(d.Chain[1].DestinationPath)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(got, planned) {
		t.Errorf("plan proved %s identical to the source's base, but QEMU on the destination opens %s (%s, digest %s, not the source's %s): the guest would see another base under its top layer",
			d.Chain[1].DestinationPath, qemuOpens, filepath.Join(h.dst, "a", "tmpl.qcow2"),
			sha256File(t, qemuOpens), sha256File(t, filepath.Join(h.src, "tmpl.qcow2")))
	}
}

// NewPlan takes the Spec by value but fills in the defaults (Format,
// Destination) through the Disks slice it shares with the caller. A caller
// that plans against one destination, then changes Destination.Dir and
// plans again (another candidate host), gets the first host's paths.
func TestReview9NewPlanDoesNotChangeTheCallersSpec(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	spec := linkedVM(t, h)
	mustPlan(t, spec, nil)
	if d := spec.Disks[0]; d.Destination != "" || d.Format != "" {
		t.Errorf("NewPlan changed the caller's spec: disk destination %q format %q, both were empty", d.Destination, d.Format)
	}
	other := filepath.Join(filepath.Dir(h.dst), "dst2")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	spec.Destination.Dir = other
	p := mustPlan(t, spec, nil)
	if d, _ := p.Disk("vda"); d.Destination != filepath.Join(other, "vm-root.qcow2") {
		t.Errorf("planned again for %s, the disk goes to %s", other, d.Destination)
	}
}

// A backing name with ".." makes the base's destination path, and so the
// file Prepare fetches, land outside the destination's storage directory.
// Preflight only warns, and Prepare writes a downloaded file wherever the
// source image's header points.
func TestReview9FetchOutsideTheDestinationDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	src, dstParent := filepath.Join(root, "src"), filepath.Join(root, "dst")
	dst := filepath.Join(dstParent, "pool")
	for _, d := range []string{filepath.Join(src, "pool"), dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	base := filepath.Join(src, "tmpl.qcow2")
	qcowBase(t, base, baseSize, 0)
	qcowImage(t, filepath.Join(src, "pool", "vm.qcow2"), baseSize, "../tmpl.qcow2", "qcow2")
	spec := migrate.Spec{
		Disks:       []migrate.Disk{{Label: "vda", Path: filepath.Join(src, "pool", "vm.qcow2"), Template: tmplUUID}},
		Source:      migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"},
		Destination: migrate.Destination{Host: migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"}, Dir: dst, Local: true},
	}
	repo := migrate.Templates{{UUID: tmplUUID, URL: "file://" + base, Checksum: "sha256:" + sha256File(t, base)}}
	p, err := migrate.NewPlan(ctx, spec, repo)
	if err != nil {
		return // refused as a bad spec: nothing is written
	}
	outside := filepath.Join(dstParent, "tmpl.qcow2")
	if p.Err() == nil {
		if _, err := migrate.Prepare(ctx, p, &copyFetcher{}); err == nil {
			t.Errorf("Prepare succeeded for a plan with fetches %+v", p.Fetches)
		}
	}
	if _, err := os.Lstat(outside); err == nil {
		t.Errorf("Prepare wrote %s, outside the destination directory %s (preflight: %v)", outside, dst, p.Problems)
	}
}

// A disk's destination may be any absolute path, or one under a symlink in
// the destination directory that leads out of it: preflight says nothing,
// the free space is measured in the destination directory, and Prepare
// creates the disk elsewhere.
func TestReview9DestinationOutsideTheDestinationDir(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		dest func(t *testing.T, h hosts, elsewhere string) string
	}{
		{"absolute elsewhere", func(t *testing.T, h hosts, elsewhere string) string { return filepath.Join(elsewhere, "vm.qcow2") }},
		{"through a symlink", func(t *testing.T, h hosts, elsewhere string) string {
			if err := os.Symlink(elsewhere, filepath.Join(h.dst, "link")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(h.dst, "link", "vm.qcow2")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHosts(t)
			elsewhere := filepath.Join(filepath.Dir(h.dst), "elsewhere")
			if err := os.Mkdir(elsewhere, 0o755); err != nil {
				t.Fatal(err)
			}
			qcowBase(t, filepath.Join(h.src, "vm.qcow2"), baseSize, 0)
			spec := migrate.Spec{
				Disks:       []migrate.Disk{{Label: "vda", Path: filepath.Join(h.src, "vm.qcow2"), Destination: tc.dest(t, h, elsewhere)}},
				Source:      migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"},
				Destination: migrate.Destination{Host: migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"}, Dir: h.dst, Local: true},
			}
			p, err := migrate.NewPlan(context.Background(), spec, nil)
			if err != nil {
				return // refused as a bad spec: fine
			}
			if p.Err() == nil {
				migrate.Prepare(context.Background(), p, nil)
			}
			if _, err := os.Lstat(filepath.Join(elsewhere, "vm.qcow2")); err == nil {
				t.Errorf("Prepare created a disk in %s, outside the destination directory %s (problems: %v)", elsewhere, h.dst, p.Problems)
			}
		})
	}
}

// A Plan is JSON and Prepare takes it "as it is", e.g. read back from a
// file. A linked disk whose chain is missing or empty makes Prepare and
// DomainDisksXML index d.Chain[1:] and panic instead of refusing the plan.
func TestReview9PlanFromJSONWithoutChainDoesNotPanic(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	spec := linkedVM(t, h)
	copyFile(t, filepath.Join(h.src, "tmpl.qcow2"), filepath.Join(h.dst, "tmpl.qcow2"))
	p := mustPlan(t, spec, nil)
	wantStrategy(t, p, "vda", migrate.Linked)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	// The plan as an older or hand-edited file has it: no "chain".
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m["disks"].([]any)[0].(map[string]any), "chain")
	b, _ = json.Marshal(m)
	var back migrate.Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	call := func(name string, f func() error) {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("%s panicked on a linked disk without a chain: %v", name, r)
			}
		}()
		if err := f(); err == nil && name == "Prepare" {
			t.Errorf("Prepare accepted a linked disk without a chain")
		}
	}
	call("DomainDisksXML", func() error { _ = back.DomainDisksXML(); return nil })
	call("Prepare", func() error { _, err := migrate.Prepare(context.Background(), &back, nil); return err })
}

// With the Fetcher the package is made for (download.Client), a fetch that
// fails part-way leaves the download's part and control files beside the
// base in the destination directory: Prepare "removes everything it
// created" only at the base's own path, so the destination is not as it
// was (issue 7: "A failed prepare leaves the destination as it was").
func TestReview9FailedRealFetchLeavesPartFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHosts(t)
	spec := linkedVM(t, h)
	base := filepath.Join(h.src, "tmpl.qcow2")
	body, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	// The server promises the whole base and breaks off half-way, every
	// time.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Header().Set("Accept-Ranges", "none")
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer srv.Close()
	repo := migrate.Templates{{UUID: tmplUUID, URL: srv.URL + "/tmpl.qcow2", Checksum: "sha256:" + sha256File(t, base)}}
	p := mustPlan(t, spec, repo)
	wantStrategy(t, p, "vda", migrate.Linked, "fetched")
	client, err := download.New(
		download.WithPolicy(download.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
		download.WithRetries(0), download.WithConnections(1))
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	before := snapshot(t, h.dst)
	_, err = migrate.Prepare(ctx, p, client)
	var pe *migrate.PrepareError
	if !errors.As(err, &pe) || pe.Step != "fetch" {
		t.Fatalf("got %v, want a fetch error", err)
	}
	if after := snapshot(t, h.dst); !reflect.DeepEqual(before, after) {
		var left []string
		filepath.WalkDir(h.dst, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				left = append(left, filepath.Base(path))
			}
			return nil
		})
		t.Errorf("failed Prepare left %s in the destination directory; its error says %q", strings.Join(left, ", "), "everything prepare created was removed")
	}
}
