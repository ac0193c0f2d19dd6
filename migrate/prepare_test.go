package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/qcow2"
)

// copyFetcher "downloads" a URL naming a local file by copying it, the way
// a Fetcher must: whole or not at all.
type copyFetcher struct {
	calls atomic.Int32
	fail  error
	after func() // runs after a successful copy
}

func (f *copyFetcher) Fetch(ctx context.Context, url, path, checksum string) error {
	f.calls.Add(1)
	if f.fail != nil {
		return f.fail
	}
	b, err := os.ReadFile(strings.TrimPrefix(url, "file://"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	if f.after != nil {
		f.after()
	}
	return nil
}

var _ migrate.Fetcher = (*copyFetcher)(nil)
var _ migrate.Fetcher = (*download.Client)(nil)

// snapshot lists a directory tree: path, mode, size and content digest of
// each entry, to prove that a failed Prepare left it as it was.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v %d", path, fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() {
			line += " " + sha256File(t, path)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPrepareLinkedAndFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHosts(t)
	spec := linkedVM(t, h)
	copyFile(t, filepath.Join(h.src, "tmpl.qcow2"), filepath.Join(h.dst, "tmpl.qcow2"))
	rawBase(t, filepath.Join(h.src, "scratch.raw"), 3*mib+512, 5)
	spec.Disks = append(spec.Disks, migrate.Disk{Label: "vdb", Path: filepath.Join(h.src, "scratch.raw"), Format: "raw"})
	p := mustPlan(t, spec, nil)
	wantStrategy(t, p, "vda", migrate.Linked)
	done, err := migrate.Prepare(ctx, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(h.dst, "vm-root.qcow2"), filepath.Join(h.dst, "scratch.raw")}; !reflect.DeepEqual(done.Created, want) || len(done.Kept) != 0 {
		t.Errorf("created %v kept %v, want %v", done.Created, done.Kept, want)
	}
	img, err := qcow2.InspectFile(filepath.Join(h.dst, "vm-root.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	if img.BackingFile != "tmpl.qcow2" || img.BackingFormat != "qcow2" || img.Size != baseSize {
		t.Errorf("linked disk: backing %q (%q) size %d", img.BackingFile, img.BackingFormat, img.Size)
	}
	fi, err := os.Stat(filepath.Join(h.dst, "scratch.raw"))
	if err != nil || fi.Size() != 3*mib+512 {
		t.Fatalf("raw disk: %v %v", fi, err)
	}
	// No temporary files left beside them.
	entries, _ := os.ReadDir(h.dst)
	if len(entries) != 3 {
		t.Errorf("destination holds %v", entries)
	}

	// Twice: nothing to do, nothing changed.
	before := snapshot(t, h.dst)
	p2 := mustPlan(t, spec, nil)
	if err := p2.Err(); err != nil {
		t.Fatalf("plan after prepare: %v", err)
	}
	done, err = migrate.Prepare(ctx, p2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(done.Created) != 0 || len(done.Kept) != 2 {
		t.Errorf("second prepare: created %v kept %v", done.Created, done.Kept)
	}
	if after := snapshot(t, h.dst); !reflect.DeepEqual(before, after) {
		t.Errorf("second prepare changed the destination:\n%v\n%v", before, after)
	}
}

// The #10246 scenario end to end on storage: the template is gone, the
// destination gets an empty qcow2 of the exact size with no backing, which
// qemu-img agrees with.
func TestPrepareTemplateDeleted(t *testing.T) {
	t.Parallel()
	h := newHosts(t)
	spec := linkedVM(t, h)
	p := mustPlan(t, spec, migrate.Templates{{UUID: tmplUUID, URL: "http://127.0.0.1:1/t", Checksum: "sha256:" + strings.Repeat("0", 64), Removed: true}})
	wantStrategy(t, p, "vda", migrate.Full, "deleted")
	if _, err := migrate.Prepare(context.Background(), p, nil); err != nil {
		t.Fatal(err)
	}
	info, err := qcow2.InfoFile(filepath.Join(h.dst, "vm-root.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	if info.VirtualSize != baseSize || info.BackingFilename != "" {
		t.Errorf("full disk: size %d backing %q", info.VirtualSize, info.BackingFilename)
	}
	qemuInfoAgrees(t, filepath.Join(h.dst, "vm-root.qcow2"), baseSize, "")
}

func TestPrepareFetchesOverHTTP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHosts(t)
	spec := linkedVM(t, h)
	base := filepath.Join(h.src, "tmpl.qcow2")
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.ServeFile(w, r, base)
	}))
	defer srv.Close()
	repo := migrate.Templates{{UUID: tmplUUID, URL: srv.URL + "/tmpl.qcow2", Checksum: "{SHA-256}" + sha256File(t, base)}}
	p := mustPlan(t, spec, repo)
	wantStrategy(t, p, "vda", migrate.Linked, "fetched")
	client, err := download.New(download.WithPolicy(download.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}))
	if err != nil {
		t.Fatal(err)
	}
	done, err := migrate.Prepare(ctx, p, client)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(done.Fetched, []string{filepath.Join(h.dst, "tmpl.qcow2")}) || requests.Load() == 0 {
		t.Errorf("fetched %v with %d requests", done.Fetched, requests.Load())
	}
	if sha256File(t, filepath.Join(h.dst, "tmpl.qcow2")) != sha256File(t, base) {
		t.Error("fetched base differs from the source's")
	}
	qemuInfoAgrees(t, filepath.Join(h.dst, "vm-root.qcow2"), baseSize, "tmpl.qcow2")

	// Once fetched, a new plan links to it, and a second Prepare of the
	// first plan keeps it without a request.
	wantStrategy(t, mustPlan(t, spec, repo), "vda", migrate.Linked, "holds the same")
	n := requests.Load()
	done, err = migrate.Prepare(ctx, p, client)
	if err != nil || len(done.Created) != 0 || requests.Load() != n {
		t.Errorf("second prepare: %+v %v, %d new requests", done, err, requests.Load()-n)
	}
}

func TestPrepareRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := func(t *testing.T) (hosts, *migrate.Plan) {
		h := newHosts(t)
		spec := linkedVM(t, h)
		qcowImage(t, filepath.Join(h.src, "data.qcow2"), baseSize, "tmpl.qcow2", "qcow2")
		spec.Disks = append(spec.Disks, migrate.Disk{Label: "vdb", Path: filepath.Join(h.src, "data.qcow2"), Template: tmplUUID,
			Destination: filepath.Join(h.dst, "vdb", "data.qcow2")})
		if err := os.Mkdir(filepath.Join(h.dst, "vdb"), 0o755); err != nil {
			t.Fatal(err)
		}
		base := filepath.Join(h.src, "tmpl.qcow2")
		// vdb's directory has its own copy of the base to link to.
		copyFile(t, base, filepath.Join(h.dst, "vdb", "tmpl.qcow2"))
		repo := migrate.Templates{{UUID: tmplUUID, URL: "file://" + base, Checksum: "sha256:" + sha256File(t, base)}}
		p := mustPlan(t, spec, repo)
		wantStrategy(t, p, "vda", migrate.Linked, "fetched")
		wantStrategy(t, p, "vdb", migrate.Linked, "holds the same")
		return h, p
	}
	t.Run("second disk fails", func(t *testing.T) {
		t.Parallel()
		h, p := setup(t)
		before := snapshot(t, h.dst)
		// While the base is fetched, something replaces vdb's directory
		// with a file.
		f := &copyFetcher{after: func() {
			os.RemoveAll(filepath.Join(h.dst, "vdb"))
			os.WriteFile(filepath.Join(h.dst, "vdb"), nil, 0o644)
		}}
		_, err := migrate.Prepare(ctx, p, f)
		var pe *migrate.PrepareError
		if !errors.As(err, &pe) || pe.Disk != "vdb" || pe.Step != "create" || !errors.Is(err, migrate.ErrPrepare) {
			t.Fatalf("got %v, want a create error for vdb", err)
		}
		if f.calls.Load() != 1 {
			t.Errorf("fetched %d times", f.calls.Load())
		}
		// The fetched base and vda's disk are gone again.
		os.Remove(filepath.Join(h.dst, "vdb"))
		before = slices.DeleteFunc(before, func(s string) bool { return strings.Contains(s, string(filepath.Separator)+"vdb") })
		if after := snapshot(t, h.dst); !reflect.DeepEqual(before, after) {
			t.Errorf("destination changed:\nbefore %v\nafter  %v", before, after)
		}
	})
	t.Run("fetch fails", func(t *testing.T) {
		t.Parallel()
		h, p := setup(t)
		before := snapshot(t, h.dst)
		boom := errors.New("connection reset")
		_, err := migrate.Prepare(ctx, p, &copyFetcher{fail: boom})
		var pe *migrate.PrepareError
		if !errors.As(err, &pe) || pe.Step != "fetch" || !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
		if after := snapshot(t, h.dst); !reflect.DeepEqual(before, after) {
			t.Errorf("destination changed:\n%v\n%v", before, after)
		}
	})
	t.Run("fetched base is not the source's", func(t *testing.T) {
		t.Parallel()
		h, p := setup(t)
		// A Fetcher that verified its checksum but got an image of
		// another size (a template re-registered under the same checksum
		// cannot happen; a lying Fetcher can).
		other := filepath.Join(h.src, "other.qcow2")
		qcowBase(t, other, 2*baseSize, 0)
		p.Fetches[0].URL = "file://" + other
		before := snapshot(t, h.dst)
		_, err := migrate.Prepare(ctx, p, &copyFetcher{})
		var pe *migrate.PrepareError
		if !errors.As(err, &pe) || pe.Step != "verify" || !strings.Contains(err.Error(), "virtual size") {
			t.Fatalf("got %v", err)
		}
		if after := snapshot(t, h.dst); !reflect.DeepEqual(before, after) {
			t.Errorf("destination changed:\n%v\n%v", before, after)
		}
	})
	t.Run("fetched base is unsafe", func(t *testing.T) {
		t.Parallel()
		h, p := setup(t)
		// The right size and no backing file, but marked dirty (the
		// incompatible feature bit 0 at header offset 72): QEMU would
		// repair it on open, and a template from a download must not be
		// given to it so.
		dirty := filepath.Join(h.src, "dirty.qcow2")
		qcowBase(t, dirty, baseSize, 0)
		fh, err := os.OpenFile(dirty, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fh.WriteAt([]byte{0, 0, 0, 0, 0, 0, 0, 1}, 72); err != nil {
			t.Fatal(err)
		}
		fh.Close()
		p.Fetches[0].URL = "file://" + dirty
		before := snapshot(t, h.dst)
		_, err = migrate.Prepare(ctx, p, &copyFetcher{})
		var pe *migrate.PrepareError
		if !errors.As(err, &pe) || pe.Step != "verify" || !strings.Contains(err.Error(), "not safe to give QEMU") {
			t.Fatalf("got %v, want a verify error saying the base is unsafe", err)
		}
		if after := snapshot(t, h.dst); !reflect.DeepEqual(before, after) {
			t.Errorf("destination changed:\n%v\n%v", before, after)
		}
	})
	t.Run("a file in the way stops it before any change", func(t *testing.T) {
		t.Parallel()
		h, p := setup(t)
		rawBase(t, filepath.Join(h.dst, "vdb", "data.qcow2"), mib, 9)
		before := snapshot(t, h.dst)
		f := &copyFetcher{}
		_, err := migrate.Prepare(ctx, p, f)
		var pe *migrate.PrepareError
		if !errors.As(err, &pe) || pe.Step != "check" || pe.Disk != "vdb" || !strings.Contains(err.Error(), "not a qcow2 image") {
			t.Fatalf("got %v", err)
		}
		if f.calls.Load() != 0 {
			t.Error("fetched before checking")
		}
		if after := snapshot(t, h.dst); !reflect.DeepEqual(before, after) {
			t.Errorf("destination changed:\n%v\n%v", before, after)
		}
	})
	t.Run("a plan with preflight errors is refused", func(t *testing.T) {
		t.Parallel()
		_, p := setup(t)
		p.Problems = append(p.Problems, migrate.Problem{Check: "space", Severity: migrate.Error, Message: "full", Fix: "free some"})
		if _, err := migrate.Prepare(ctx, p, &copyFetcher{}); !errors.Is(err, migrate.ErrPreflight) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no fetcher", func(t *testing.T) {
		t.Parallel()
		_, p := setup(t)
		if _, err := migrate.Prepare(ctx, p, nil); !errors.Is(err, migrate.ErrPrepare) || !strings.Contains(err.Error(), "no Fetcher") {
			t.Fatalf("got %v", err)
		}
	})
}

// A plan made on the source from the destination's inventory links to a
// base the inventory vouches for; Prepare, on the destination, checks the
// base is really there before it creates an overlay on it.
func TestPrepareChecksTheBaseItLinksTo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, h hosts)
		want  string
	}{
		{"missing", func(t *testing.T, h hosts) {}, "not there"},
		{"other size", func(t *testing.T, h hosts) { qcowBase(t, filepath.Join(h.dst, "tmpl.qcow2"), 2*baseSize, 0) }, "not the source's base"},
		{"other content", func(t *testing.T, h hosts) {
			qcowBase(t, filepath.Join(h.dst, "tmpl.qcow2"), baseSize, 1<<12)
		}, "has digest"},
		{"the same", func(t *testing.T, h hosts) {
			copyFile(t, filepath.Join(h.src, "tmpl.qcow2"), filepath.Join(h.dst, "tmpl.qcow2"))
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHosts(t)
			spec := linkedVM(t, h)
			spec.Destination.Local = false
			spec.Destination.FreeBytes = 1 << 30
			spec.Destination.Files = []migrate.File{{Path: "tmpl.qcow2", Format: "qcow2", VirtualSize: baseSize, Digest: "sha256:" + sha256File(t, filepath.Join(h.src, "tmpl.qcow2"))}}
			p := mustPlan(t, spec, nil)
			wantStrategy(t, p, "vda", migrate.Linked)
			tc.setup(t, h)
			before := snapshot(t, h.dst)
			_, err := migrate.Prepare(ctx, p, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				qemuInfoAgrees(t, filepath.Join(h.dst, "vm-root.qcow2"), baseSize, "tmpl.qcow2")
				return
			}
			var pe *migrate.PrepareError
			if !errors.As(err, &pe) || pe.Step != "check" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a check error saying %q", err, tc.want)
			}
			if after := snapshot(t, h.dst); !reflect.DeepEqual(before, after) {
				t.Errorf("destination changed:\n%v\n%v", before, after)
			}
		})
	}
}

// TestPrepareRefusesTamperedBacking: a plan may come from JSON; the backing
// name a linked disk is created with must be the layer the plan checks,
// or a plan could link a disk to any file on the destination.
func TestPrepareRefusesTamperedBacking(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(t.TempDir(), "secret.raw")
	if err := os.WriteFile(secret, make([]byte, baseSize), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tamper func(d *migrate.DiskPlan)
		want   string
	}{
		{"absolute name elsewhere", func(d *migrate.DiskPlan) { d.Backing, d.BackingFormat = secret, "raw" }, "not to the base the plan checks"},
		{"relative name going up", func(d *migrate.DiskPlan) { d.Backing = "../" + filepath.Base(secret) }, "not to the base the plan checks"},
		{"JSON name", func(d *migrate.DiskPlan) {
			d.Backing = `json:{"driver":"raw","file":{"driver":"file","filename":"` + secret + `"}}`
		}, "protocol or JSON name"},
		{"protocol name", func(d *migrate.DiskPlan) { d.Backing = "nbd:127.0.0.1:10809" }, "protocol or JSON name"},
		{"other format", func(d *migrate.DiskPlan) { d.BackingFormat = "vmdk" }, `backing format "vmdk"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHosts(t)
			spec := linkedVM(t, h)
			copyFile(t, filepath.Join(h.src, "tmpl.qcow2"), filepath.Join(h.dst, "tmpl.qcow2"))
			p := mustPlan(t, spec, nil)
			wantStrategy(t, p, "vda", migrate.Linked)
			for i := range p.Disks {
				if p.Disks[i].Label == "vda" {
					tc.tamper(&p.Disks[i])
				}
			}
			before := snapshot(t, h.dst)
			_, err := migrate.Prepare(context.Background(), p, nil)
			var pe *migrate.PrepareError
			if !errors.As(err, &pe) || pe.Step != "check" || pe.Disk != "vda" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a check error for vda saying %q", err, tc.want)
			}
			if after := snapshot(t, h.dst); !reflect.DeepEqual(before, after) {
				t.Errorf("destination changed:\n%v\n%v", before, after)
			}
		})
	}
}
