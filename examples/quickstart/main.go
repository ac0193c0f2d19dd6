// Command quickstart tells the story directdl exists for, on this machine
// only: no network, no setup, no root, a few seconds. Run it with
//
//	go run ./examples/quickstart
//
// A mirror operator has a private CA. The mirror (127.0.0.1) redirects
// template downloads to a CDN host (127.0.0.2) that sends its certificate
// without the intermediate, so a KVM agent trusting the CA cannot connect.
// The tour probes the URL and names the missing certificate, completes the
// chain and trusts it, registers the template in two zones of a SQLite
// repository, downloads it onto primary storage from what the repository
// says (in parallel, verified as it arrives, interrupted once and
// resumed), vets it, makes a VM disk on it, deletes the template zone by
// zone, and finally plans and prepares the live migration of that VM,
// whose template is gone. Each step prints one line; the download draws a
// progress bar on stderr when stderr is a terminal.
//
// Read it top to bottom: it uses the packages as a program would.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/qcow2"
	"github.com/directdl/directdl/template"
	"github.com/directdl/directdl/template/sqlrepo"
)

func main() {
	var h hooks
	if term.IsTerminal(int(os.Stderr.Fd())) {
		h.bar = os.Stderr
	}
	// Ctrl-C ends the tour through its context, so it still cleans up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Stdout, h)
	stop()
	if err != nil {
		log.Fatalf("quickstart: %v", err)
	}
}

// hooks are what a caller of run may plug in.
type hooks struct {
	// bar is where the download's progress bar is drawn; nil: nowhere.
	bar io.Writer
	// file, if set, is called with each file the tour makes, while it
	// exists: "template" (as served), "partial" (what the interrupted
	// download left), "download" (on primary storage), "vm" (the VM's
	// disk) and "migrated" (the destination's disk).
	file func(role, path string)
}

// Sizes of the template: what the guest sees, and the data it holds.
const (
	virtualSize = 20 << 30
	dataSize    = 16 << 20
	// cdnRate is what the CDN sends per connection, in bytes per second.
	cdnRate = 4 << 20
)

// run takes the tour in a new temporary directory, which it removes.
func run(ctx context.Context, w io.Writer, h hooks) error {
	if h.file == nil {
		h.file = func(string, string) {}
	}
	dir, err := os.MkdirTemp("", "directdl-quickstart-")
	if err != nil {
		return err
	}
	err = tour(ctx, w, h, dir)
	if rerr := os.RemoveAll(dir); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	step(w, "cleanup", "removed %s and everything the tour made in it", dir)
	return nil
}

// step prints the one line of a step.
func step(w io.Writer, name, format string, args ...any) {
	fmt.Fprintf(w, "%-9s %s\n", name+":", fmt.Sprintf(format, args...))
}

// loopback is the only network the tour uses. Every package refuses
// loopback addresses by default (they are how a URL reaches a host's
// internal services), so each is told to allow exactly this.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func tour(ctx context.Context, w io.Writer, h hooks, dir string) error {
	// ---- A CA, an intermediate and a leaf. The leaf's Authority
	// Information Access names where the intermediate is published (a
	// plain-HTTP CA repository on 127.0.0.3), so the listeners come first.
	caL, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		return err
	}
	defer caL.Close()
	mirrorL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer mirrorL.Close()
	cdnL, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		return err
	}
	defer cdnL.Close()
	caIssuers := "http://" + caL.Addr().String() + "/intermediate.cer"
	pki, err := newPKI(caIssuers, net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2))
	if err != nil {
		return err
	}
	step(w, "pki", "root %q, intermediate %q, leaf %q for 127.0.0.1 and 127.0.0.2 (its issuer published at %s)",
		pki.root.Subject.CommonName, pki.intermediate.Subject.CommonName, pki.leaf.Subject.CommonName, caIssuers)

	// ---- The template, as an image store publishes it.
	if err := os.Mkdir(filepath.Join(dir, "image-store"), 0o755); err != nil {
		return err
	}
	tmpl := filepath.Join(dir, "image-store", "centos-9.qcow2")
	if err := makeTemplate(tmpl, virtualSize, dataSize); err != nil {
		return err
	}
	sum, size, err := fileSHA256(tmpl)
	if err != nil {
		return err
	}
	h.file("template", tmpl)
	step(w, "template", "%s: a %s qcow2 image holding %s of data, %s on disk, sha256 %s",
		filepath.Base(tmpl), gib(virtualSize), mib(dataSize), mib(size), sum)

	// ---- Serve it: the mirror, with the full chain, redirects to the CDN,
	// which sends its leaf only and paces every connection.
	ca := serve(caL, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Write(pki.intermediate.Raw)
	}))
	defer ca.Close()
	files := &throttled{path: tmpl, rate: cdnRate}
	cdnMux := http.NewServeMux()
	cdnMux.Handle("GET /centos-9.qcow2", files)
	leafOnly, fullChain := pki.serverCert(false), pki.serverCert(true)
	cdn := serve(cdnL, &leafOnly, cdnMux)
	defer cdn.Close()
	mirror := serve(mirrorL, &fullChain, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, cdn.URL+r.URL.Path, http.StatusFound)
	}))
	defer mirror.Close()
	url := mirror.URL + "/centos-9.qcow2"
	step(w, "serve", "%s answers 302 to %s, which sends its leaf certificate only, %s/s per connection",
		url, cdn.URL, mib(cdnRate))

	// ---- Probe the URL hop by hop, as the agent would connect: trusting
	// the operator's root CA, kept in the agent's JKS trust store.
	store, err := certstore.OpenFileStore(filepath.Join(dir, "agent-trust.jks"), "changeit")
	if err != nil {
		return err
	}
	if err := store.Import(ctx, certstore.Entry{Alias: "mirror-root", Cert: pki.root}); err != nil {
		return err
	}
	rep, err := certstore.Probe(ctx, url, certstore.ProbeOptions{
		Roots:  store.RootCAs(),
		Policy: certstore.Policy{Allow: loopback},
	})
	if err != nil {
		return err
	}
	if len(rep.Hops) != 2 || !rep.Hops[0].Verified() || rep.Hops[1].TLS == nil || rep.Hops[1].TLS.Problem != certstore.ProblemMissingIntermediate {
		return fmt.Errorf("probe: want hop 1 verified and hop 2 missing its intermediate, got %+v", rep)
	}
	first, last := rep.Hops[0], rep.Hops[1]
	// The probe does not send the request (whose URL may be signed) to a
	// host it could not verify.
	served := last.TLS.Certificates
	step(w, "probe", "hop 1 %s verified, %d to hop 2; hop 2 %s sends %d certificate (%s): issuer %q not sent, request withheld",
		first.Address, first.Status, last.Address, len(served), last.TLS.Problem, served[0].Issuer.CommonName)

	// ---- Complete the chain through the leaf's caIssuers URL, check that
	// it now ends at the trusted root, and trust the missing certificate.
	// A fetched certificate is a candidate, never trusted by being fetched.
	_, fetched, err := certstore.Complete(ctx, served, certstore.CompleteOptions{
		Roots:  store.RootCAs(),
		Policy: certstore.Policy{Allow: loopback},
	})
	if err != nil {
		return err
	}
	if len(fetched) != 1 {
		return fmt.Errorf("complete: want the one missing intermediate, got %d certificates", len(fetched))
	}
	inter := x509.NewCertPool()
	inter.AddCert(fetched[0])
	chains, err := served[0].Verify(x509.VerifyOptions{Roots: store.RootCAs(), Intermediates: inter, DNSName: "127.0.0.2"})
	if err != nil {
		return fmt.Errorf("the completed chain does not verify: %w", err)
	}
	if err := store.Import(ctx, certstore.Entry{Alias: "cdn-intermediate", Cert: fetched[0]}); err != nil {
		return err
	}
	step(w, "trust", "fetched %q through AIA, the chain verifies to %q; added to agent-trust.jks as cdn-intermediate",
		fetched[0].Subject.CommonName, chains[0][len(chains[0])-1].Subject.CommonName)

	// ---- Register the template in zones 1 and 2 of an embedded SQLite
	// repository, with a detail that belongs to the template, not a zone.
	repo, err := sqlrepo.Open(ctx, filepath.Join(dir, "templates.sqlite"))
	if err != nil {
		return err
	}
	defer repo.Close()
	t, err := repo.Register(ctx, template.NewTemplate{
		Name: "centos-9", Format: template.QCOW2, Hypervisor: "KVM", DirectDownload: true,
		URL: url, Checksum: "{SHA-256}" + sum, Size: virtualSize, PhysicalSize: size,
		Details: map[string]string{"UEFI": "secure"},
	}, 1, 2)
	if err != nil {
		return err
	}
	step(w, "register", "template %d (%s) in zones %v with UEFI=%s, checksum {SHA-256}%s…",
		t.ID, t.UUID, t.Zones, t.Details["UEFI"], sum[:12])

	// ---- Direct download onto primary storage, from the URL and checksum
	// the repository holds. Four connections, each paced by the CDN; the
	// trust store is read on every new connection, so the certificate
	// added above works without a restart. The first attempt is cancelled
	// once 40% has arrived, as a reboot or a killed agent would; the next
	// Get to the same path resumes from what it left.
	src, checksum, found, err := template.Source(ctx, repo, t.UUID)
	if err != nil || !found {
		return fmt.Errorf("the repository does not offer template %s (found %v): %v", t.UUID, found, err)
	}
	primary := filepath.Join(dir, "primary")
	if err := os.Mkdir(primary, 0o755); err != nil {
		return err
	}
	bar := newBar(h.bar)
	var (
		mu        sync.Mutex
		interrupt context.CancelFunc // set while the first attempt runs
		at        int64              // percent done when it was cancelled
	)
	dl, err := download.New(
		download.WithPolicy(download.Policy{Allow: loopback}),
		download.WithTrustSource(store),
		download.WithConnections(4),
		download.WithProgress(func(p download.Progress) {
			bar.show(p)
			mu.Lock()
			defer mu.Unlock()
			if interrupt != nil && p.Total > 0 && p.Done*100 >= p.Total*40 {
				at = p.Done * 100 / p.Total
				interrupt()
				interrupt = nil
			}
		}, 50*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer dl.CloseIdleConnections()
	dest := filepath.Join(primary, t.UUID)
	req := download.Request{URL: src, Path: dest, Checksum: checksum}

	attempt, cancel := context.WithCancel(ctx)
	mu.Lock()
	interrupt = cancel
	mu.Unlock()
	_, err = dl.Get(attempt, req)
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !errors.Is(err, context.Canceled) {
		return fmt.Errorf("the first download should have been interrupted at 40%%, got %v", err)
	}
	partial := filepath.Join(primary, "."+t.UUID+".ddpart")
	if _, err := os.Stat(partial); err != nil {
		return fmt.Errorf("the interrupted download left no partial file: %w", err)
	}
	h.file("partial", partial)
	bar.relabel("interrupted, resuming:")
	before := files.sent.Load()
	res, err := dl.Get(ctx, req)
	bar.clear()
	if err != nil {
		return err
	}
	if !res.Verified {
		return fmt.Errorf("the download of %s was not verified against %s", src, checksum)
	}
	h.file("download", dest)
	step(w, "download", "interrupted at %d%% (%s kept), resumed from %s: %s over %d connections, %s verified; the resume fetched %s",
		at, filepath.Base(partial), mib(res.ResumedFrom), mib(res.Size), res.Connections, strings.SplitN(res.Digest, ":", 2)[0], mib(files.sent.Load()-before))

	// ---- Would we hand this file to QEMU as a template? A qcow2 that
	// names a backing file, say, makes QEMU open that path on the host.
	f, err := os.Open(dest)
	if err != nil {
		return err
	}
	verdict, err := qcow2.Vet(f, qcow2.Policy{})
	f.Close()
	if err != nil {
		return err
	}
	if !verdict.Safe {
		return fmt.Errorf("the downloaded template is unsafe: %v", verdict.Problems)
	}
	check, err := qcow2.CheckFile(ctx, dest)
	if err != nil {
		return err
	}
	step(w, "inspect", "safe to use as a template: qcow2 v%d, %s virtual, no backing file; %d corruptions, %d leaks (as qemu-img check counts)",
		verdict.Image.Version, gib(verdict.VirtualSize), check.Corruptions, check.Leaks)

	// ---- A VM's root disk: an overlay on the downloaded copy, whose
	// backing name is relative to its own directory, as on primary storage.
	vm := filepath.Join(primary, "i-2-10-VM-root.qcow2")
	if err := qcow2.Create(vm, qcow2.Options{BackingFile: t.UUID, BackingFormat: "qcow2"}); err != nil {
		return err
	}
	info, err := qcow2.InfoFile(vm)
	if err != nil {
		return err
	}
	st, err := os.Stat(vm)
	if err != nil {
		return err
	}
	h.file("vm", vm)
	step(w, "vm disk", "%s: a %s overlay backed by %s (%s), a %d-byte file",
		filepath.Base(vm), gib(info.VirtualSize), info.BackingFilename, info.BackingFilenameFormat, st.Size())

	// ---- Delete the template zone by zone: its details stay while any
	// zone offers it (CloudStack 4.19 and 4.20 wiped them everywhere at
	// the first delete, apache/cloudstack#10600).
	for _, zone := range []template.ZoneID{2, 1} {
		if _, err := repo.DeleteFromZone(ctx, t.ID, zone, template.DeleteOptions{}); err != nil {
			return err
		}
		got, err := repo.Get(ctx, t.ID, template.IncludeRemoved())
		if err != nil {
			return err
		}
		if got.Removed.IsZero() {
			step(w, "delete", "zone %d: template %d still offered in zones %v, its details kept: %s", zone, got.ID, got.Zones, details(got.Details))
			continue
		}
		_, _, found, err := template.Source(ctx, repo, t.UUID)
		if err != nil || found {
			return fmt.Errorf("the removed template is still offered (found %v): %v", found, err)
		}
		step(w, "delete", "zone %d: template %d removed with its details (details left: %s), no longer offered for download", zone, got.ID, details(got.Details))
	}

	// ---- Live-migrate the VM to a host that never had the template. The
	// planner reads the disk's backing chain from the images and asks the
	// repository for the template, which is gone: the disk must be copied
	// whole, into an empty image of the same size that Prepare creates on
	// the destination (CloudStack 4.20 created none and libvirt failed,
	// apache/cloudstack#10246).
	pool := filepath.Join(dir, "kvm2-pool")
	if err := os.Mkdir(pool, 0o755); err != nil {
		return err
	}
	plan, err := migrate.NewPlan(ctx, migrate.Spec{
		VM:          "i-2-10-VM",
		Disks:       []migrate.Disk{{Label: "vda", Path: vm, Template: t.UUID}},
		Source:      migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"},
		Destination: migrate.Destination{Host: migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"}, Dir: pool, Local: true, URI: "qemu+ssh://kvm2/system"},
	}, repo)
	if err != nil {
		return err
	}
	if err := plan.Err(); err != nil {
		return err
	}
	d := plan.Disks[0]
	reason := strings.ReplaceAll(d.Reason, dir+string(filepath.Separator), "") // shorter, relative to the tour's directory
	step(w, "plan", "vda %s: %s; libvirt flags %s", d.Strategy, reason, strings.Join(plan.LibvirtFlags, "|"))

	done, err := migrate.Prepare(ctx, plan, nil)
	if err != nil {
		return err
	}
	if len(done.Created) != 1 {
		return fmt.Errorf("prepare: want one disk created, got %v", done.Created)
	}
	made, err := qcow2.InfoFile(done.Created[0])
	if err != nil {
		return err
	}
	backing := "no backing file"
	if made.BackingFilename != "" {
		backing = "backed by " + made.BackingFilename
	}
	h.file("migrated", done.Created[0])
	step(w, "prepare", "created %s in the destination's pool: %s virtual, %s, ready for the full copy",
		filepath.Base(done.Created[0]), gib(made.VirtualSize), backing)
	return nil
}

func fileSHA256(path string) (sum string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	return fmt.Sprintf("%x", h.Sum(nil)), size, err
}

// details formats a template's details as KEY=VALUE pairs, or "none".
func details(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	if len(kv) == 0 {
		return "none"
	}
	slices.Sort(kv)
	return strings.Join(kv, " ")
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
func gib(n int64) string { return fmt.Sprintf("%d GiB", n>>30) }
