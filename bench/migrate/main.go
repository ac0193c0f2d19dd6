// Command migrate measures live migrations with non-shared storage between
// two QEMU processes on this machine: the bytes each disk's mirror job
// copied and the wall time, for a linked migration (the destination holds
// the template, only the VM's top layer is copied) and a full one (the
// template is gone, everything is copied), of the same VM.
//
// The VM has one disk: a qcow2 overlay of SIZE (1 GiB) whose template base
// is filled with data, and WRITES (64 MiB) of guest writes in the overlay,
// made with qemu-io in 1 MiB writes spread over the disk. Each run plans
// with migrate.NewPlan, prepares with migrate.Prepare, starts both QEMUs
// (TCG, no guest OS), migrates with migrate/qemu.Run over 127.0.0.1, then
// checks the result with qemu-img compare.
//
//	go run ./bench/migrate -runs 3
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/migrate/qemu"
	"github.com/directdl/directdl/qcow2"
)

func main() {
	size := flag.String("size", "1G", "virtual `SIZE` of the disk, all of it data in the template")
	writes := flag.String("writes", "64M", "`SIZE` of guest writes in the VM's overlay")
	runs := flag.Int("runs", 3, "runs of each mode")
	dir := flag.String("dir", "", "work `DIR` (default: a new temporary directory, removed at the end)")
	flag.Parse()
	sz, err := qcow2.ParseSize(*size)
	if err != nil {
		log.Fatal(err)
	}
	wr, err := qcow2.ParseSize(*writes)
	if err != nil {
		log.Fatal(err)
	}
	work := *dir
	if work == "" {
		if work, err = os.MkdirTemp("", "ddmig"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(work)
	}
	ctx := context.Background()
	src := filepath.Join(work, "src")
	must(os.MkdirAll(src, 0o755))
	base := filepath.Join(src, "tmpl.qcow2")
	vm := filepath.Join(src, "vm.qcow2")
	fmt.Printf("making a %s template full of data and a VM overlay with %s of writes...\n", *size, *writes)
	run("qemu-img", "create", "-q", "-f", "qcow2", base, strconv.FormatInt(sz, 10))
	run("qemu-io", "-c", fmt.Sprintf("write -P 0x5a 0 %d", sz), base)
	run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "tmpl.qcow2", vm)
	const chunk = 1 << 20
	n := wr / chunk
	args := []string{}
	for i := int64(0); i < n; i++ {
		off := (sz / n) * i / chunk * chunk
		args = append(args, "-c", fmt.Sprintf("write -P 0xa5 %d %d", off, chunk))
	}
	run("qemu-io", append(args, vm)...)

	fmt.Printf("| mode | mirror bytes (vda) | written at the destination | RAM bytes | plan + prepare, median | migration, median (min-max) | runs |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, mode := range []string{"linked", "full"} {
		var preps, migs []time.Duration
		var last result
		for r := range *runs {
			last = once(ctx, work, src, base, vm, mode, r)
			preps = append(preps, last.prepare)
			migs = append(migs, last.rep.Duration)
		}
		slices.Sort(preps)
		slices.Sort(migs)
		fmt.Printf("| %s | %.1f MiB | %.1f MiB | %d | %.2f s | %.2f s (%.2f-%.2f) | %d |\n", mode,
			float64(last.rep.Disks[0].Bytes)/(1<<20), float64(last.written)/(1<<20), last.rep.RAMBytes,
			preps[len(preps)/2].Seconds(), migs[len(migs)/2].Seconds(), migs[0].Seconds(), migs[len(migs)-1].Seconds(), len(migs))
	}
}

// result is one run: the executor's report, the time planning and
// preparing took, and the bytes the destination disk holds afterwards
// (allocated, as du counts them: what was really written).
type result struct {
	rep     *qemu.Report
	prepare time.Duration
	written int64
}

// once migrates the VM in one mode. The plan reads the destination's
// files (Local), so for a linked plan it hashes the template on both sides
// to prove it identical; with an inventory of recorded digests it would
// only read headers (BenchmarkPlan).
func once(ctx context.Context, work, src, base, vm, mode string, r int) result {
	dst := filepath.Join(work, fmt.Sprintf("dst-%s-%d", mode, r))
	must(os.MkdirAll(dst, 0o755))
	defer os.RemoveAll(dst)
	templates := migrate.Templates{}
	if mode == "linked" {
		copyFile(base, filepath.Join(dst, "tmpl.qcow2"))
	}
	spec := migrate.Spec{
		Disks:       []migrate.Disk{{Label: "vda", Path: vm, Template: "t1"}},
		Source:      migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"},
		Destination: migrate.Destination{Host: migrate.Host{QEMU: "7.2.0", Libvirt: "9.0.0"}, Dir: dst, Local: true},
	}
	srcVM, err := qemu.Start(ctx, qemu.Config{Dir: work, Name: fmt.Sprintf("s%d%s", r, mode[:1]), Disks: []qemu.Disk{{Label: "vda", Path: vm}}})
	must(err)
	defer srcVM.Kill()

	start := time.Now()
	plan, err := migrate.NewPlan(ctx, spec, templates)
	must(err)
	must(plan.Err())
	if d := plan.Disks[0]; string(d.Strategy) != mode {
		log.Fatalf("planned %s, want %s: %s", d.Strategy, mode, d.Reason)
	}
	_, err = migrate.Prepare(ctx, plan, nil)
	must(err)
	prep := time.Since(start)

	dstVM, err := qemu.Start(ctx, qemu.Config{Dir: work, Name: fmt.Sprintf("d%d%s", r, mode[:1]), Incoming: true, Disks: []qemu.Disk{{Label: "vda", Path: plan.Disks[0].Destination}}})
	must(err)
	defer dstVM.Kill()
	rep, err := qemu.Run(ctx, qemu.Migration{Plan: plan, Source: srcVM.QMP(), Destination: dstVM.QMP(),
		NBDAddress: "127.0.0.1:" + strconv.Itoa(freePort()), MigrateURI: "tcp:127.0.0.1:0"})
	must(err)
	if !rep.DestinationRunning {
		log.Fatal("the destination is not running")
	}
	srcVM.Kill()
	dstVM.Kill()
	run("qemu-img", "compare", "-q", "-U", vm, plan.Disks[0].Destination)
	fi, err := os.Stat(plan.Disks[0].Destination)
	must(err)
	return result{rep: rep, prepare: prep, written: fi.Sys().(*syscall.Stat_t).Blocks * 512}
}

// freePort returns a port of 127.0.0.1 that was free a moment ago, for
// the NBD server (whose address needs a port).
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout = io.Discard
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("%s: %v", name, err)
	}
}

func copyFile(from, to string) {
	in, err := os.Open(from)
	must(err)
	defer in.Close()
	out, err := os.Create(to)
	must(err)
	_, err = io.Copy(out, in)
	must(err)
	must(out.Close())
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
