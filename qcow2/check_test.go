package qcow2

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/directdl/directdl/internal/qemuimg"
)

// qemuCheckRun is what `qemu-img check --output=json` printed.
type qemuCheckRun struct {
	json   map[string]any // nil when it printed no result
	lines  []string       // stderr without qemu-img's own "Check failed" line
	failed string         // the text after "Check failed: ", if any
	code   int
}

// qemuCheck runs qemu-img check on path, opened without its backing file
// (a json: filename with "backing": null), so that overlays whose backing
// file does not exist can be checked too. extra adds members to the qcow2
// node's options; args come before the filename.
func qemuCheck(t *testing.T, path string, extra map[string]any, args ...string) qemuCheckRun {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := map[string]any{
		"driver":  "qcow2",
		"backing": nil,
		"file":    map[string]any{"driver": "file", "filename": abs},
	}
	for k, v := range extra {
		opts[k] = v
	}
	spec, err := json.Marshal(opts)
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"check", "--output=json"}, args...)
	argv = append(argv, "json:"+string(spec))
	cmd := exec.Command(qemuImg(t), argv...)
	cmd.Dir = filepath.Dir(abs) // where a relative data file name is found
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var run qemuCheckRun
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		run.code = ee.ExitCode()
	default:
		t.Fatalf("qemu-img check: %v", err)
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		switch {
		case l == "":
		case l == "qemu-img: Check failed":
		case strings.HasPrefix(l, "qemu-img: Check failed: "):
			run.failed = strings.TrimPrefix(l, "qemu-img: Check failed: ")
		default:
			run.lines = append(run.lines, strings.TrimPrefix(l, "qemu-img: "))
		}
	}
	if stdout.Len() > 0 {
		if err := json.Unmarshal(stdout.Bytes(), &run.json); err != nil {
			t.Fatalf("qemu-img check output: %v\n%s", err, stdout.Bytes())
		}
		delete(run.json, "filename")
		delete(run.json, "format")
	}
	return run
}

// resultJSON encodes r as a generic JSON object, as qemuCheck decodes
// qemu-img's.
func resultJSON(t *testing.T, r *CheckResult) map[string]any {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// compareCheck checks path with Check and with qemu-img and compares the
// counters, the exit status and the stderr lines. It returns Check's result.
func compareCheck(t *testing.T, path string, extra map[string]any, args ...string) *CheckResult {
	t.Helper()
	want := qemuCheck(t, path, extra, args...)
	res, err := CheckFile(context.Background(), path)
	var fe *CheckFailedError
	switch {
	case err == nil:
	case errors.As(err, &fe):
		if want.failed != fe.Errno {
			t.Errorf("check failed with %q, qemu-img with %q", fe.Errno, want.failed)
		}
	default:
		t.Fatalf("Check: %v (qemu-img exit %d, stderr %q)", err, want.code, want.lines)
	}
	if fe == nil && want.failed != "" {
		t.Errorf("check completed, qemu-img failed with %q", want.failed)
	}
	if got := res.ExitCode(); got != want.code {
		t.Errorf("exit code %d, qemu-img %d", got, want.code)
	}
	if fe == nil {
		if got := resultJSON(t, res); !reflect.DeepEqual(got, want.json) {
			t.Errorf("got  %v\nwant %v", got, want.json)
		}
	} else if want.json != nil {
		t.Errorf("qemu-img printed a result after failing: %v", want.json)
	}
	var lines []string
	for _, p := range res.Problems {
		lines = append(lines, p.Message)
	}
	if n := len(lines) + res.ProblemsOmitted; n != len(want.lines) {
		t.Errorf("%d problems (%d omitted), qemu-img printed %d lines", n, res.ProblemsOmitted, len(want.lines))
	} else if !reflect.DeepEqual(lines, want.lines[:len(lines)]) {
		t.Errorf("problems differ from qemu-img's stderr:\ngot  %q\nwant %q", lines, want.lines)
	}
	t.Logf("exit %d, %d problems, qemu-img failed: %q", want.code, len(lines), want.failed)
	return res
}

// qemuIO runs qemu-io on file in dir with one -c per command.
func qemuIO(t *testing.T, dir, format, file string, cmds ...string) {
	t.Helper()
	args := []string{"-f", format}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	args = append(args, file)
	cmd := exec.Command(qemuimg.Path(t, "qemu-io"), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("error")) || bytes.Contains(out, []byte("failed")) {
		t.Fatalf("qemu-io %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestCheckCreateMatrix(t *testing.T) {
	qemuImg(t)
	for _, o := range createMatrix() {
		t.Run(optName(o), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "img.qcow2")
			if err := Create(path, o); err != nil {
				t.Fatalf("Create: %v", err)
			}
			res := compareCheck(t, path, nil)
			if !res.Clean() || len(res.Problems) != 0 {
				t.Errorf("Clean() = false for a new image: %+v", res)
			}
		})
	}
}

// qemuScenario builds an image with qemu-img and qemu-io in dir and
// returns its name.
type qemuScenario struct {
	name  string
	build func(t *testing.T, dir string) string
	// extra and args are passed to qemuCheck (for LUKS).
	extra map[string]any
	args  []string
	// wantClean says Check must find nothing.
	wantClean bool
}

func qemuCreate(t *testing.T, dir, opts, size string) string {
	t.Helper()
	args := []string{"create", "-q", "-f", "qcow2"}
	if opts != "" {
		args = append(args, "-o", opts)
	}
	runQemu(t, dir, append(args, "img.qcow2", size)...)
	return "img.qcow2"
}

// withData creates an image and writes to it with qemu-io.
func withData(opts, size string, cmds ...string) func(t *testing.T, dir string) string {
	return func(t *testing.T, dir string) string {
		f := qemuCreate(t, dir, opts, size)
		qemuIO(t, dir, "qcow2", f, cmds...)
		return f
	}
}

var dataCmds = []string{"write -P 0xab 0 1M", "write 100M 64k", "write -P 7 512M 3M", "write -P 9 1000M 4k"}

// withSnapshots writes, snapshots, writes again over part of the data (so
// some clusters have refcount 2 and others lose OFLAG_COPIED), snapshots
// again, writes and discards.
func withSnapshots(opts string) func(t *testing.T, dir string) string {
	return func(t *testing.T, dir string) string {
		f := qemuCreate(t, dir, opts, "1G")
		qemuIO(t, dir, "qcow2", f, "write -P 1 0 2M", "write -P 2 300M 128k")
		runQemu(t, dir, "snapshot", "-c", "s1", f)
		qemuIO(t, dir, "qcow2", f, "write -P 3 0 512k", "write -P 4 700M 64k")
		runQemu(t, dir, "snapshot", "-c", "second snapshot", f)
		qemuIO(t, dir, "qcow2", f, "write -P 5 1M 256k", "discard 300M 64k")
		return f
	}
}

func qemuCompressed(opts string) func(t *testing.T, dir string) string {
	return func(t *testing.T, dir string) string {
		runQemu(t, dir, "create", "-q", "-f", "raw", "raw.img", "64M")
		qemuIO(t, dir, "raw", "raw.img", "write -P 0x11 0 4M", "write -P 0x22 10M 100k", "write -P 0x33 33M 1M")
		args := []string{"convert", "-c", "-O", "qcow2"}
		if opts != "" {
			args = append(args, "-o", opts)
		}
		runQemu(t, dir, append(args, "raw.img", "img.qcow2")...)
		return "img.qcow2"
	}
}

func qemuScenarios() []qemuScenario {
	return []qemuScenario{
		{name: "data", build: withData("", "1G", dataCmds...), wantClean: true},
		{name: "data-v2-512", build: withData("compat=0.10,cluster_size=512", "1G", dataCmds...), wantClean: true},
		{name: "data-4k-rb64", build: withData("cluster_size=4096,refcount_bits=64", "1G", dataCmds...), wantClean: true},
		{name: "data-512-rb1", build: withData("cluster_size=512,refcount_bits=1", "1G", dataCmds...), wantClean: true},
		{name: "data-2M", build: withData("cluster_size=2M", "8G", "write -P 1 0 5M", "write 7G 1M"), wantClean: true},
		{name: "zero-discard", build: withData("", "1G", "write -P 1 0 1M", "write -z 0 64k", "write -z -u 128k 64k",
			"write -z 10M 1M", "discard 512k 128k", "write -P 2 20M 64k", "discard 20M 64k"), wantClean: true},
		{name: "extl2", build: withData("extended_l2=on", "1G", "write -P 1 0 4k", "write -P 2 40k 8k",
			"write -P 3 1M 64k", "write -z 1M 2k", "write -z 2M 4k", "write -P 4 3M 128k", "discard 3M 64k",
			"write -z -u 4M 64k"), wantClean: true},
		{name: "extl2-16k", build: withData("extended_l2=on,cluster_size=16384", "1G", "write -P 1 0 1k",
			"write -P 2 17k 3k", "write -z 100k 1k"), wantClean: true},
		{name: "snapshots", build: withSnapshots(""), wantClean: true},
		{name: "snapshots-rb2", build: withSnapshots("refcount_bits=2"), wantClean: true},
		{name: "snapshots-rb64-512", build: withSnapshots("refcount_bits=64,cluster_size=512"), wantClean: true},
		{name: "snapshots-v2", build: withSnapshots("compat=0.10"), wantClean: true},
		{name: "snapshots-extl2", build: withSnapshots("extended_l2=on"), wantClean: true},
		{name: "compressed", build: qemuCompressed(""), wantClean: true},
		{name: "compressed-zstd", build: qemuCompressed("compression_type=zstd"), wantClean: true},
		{name: "compressed-512", build: qemuCompressed("cluster_size=512"), wantClean: true},
		{name: "compressed-2M", build: qemuCompressed("cluster_size=2M"), wantClean: true},
		{name: "compressed-extl2", build: qemuCompressed("extended_l2=on"), wantClean: true},
		{name: "data-file", build: withData("data_file=img.raw", "1G", "write -P 1 0 1M", "write -z 2M 64k", "discard 512k 64k"),
			wantClean: true},
		{name: "data-file-raw", build: withData("data_file=img.raw,data_file_raw=on", "1G", "write -P 1 0 1M"), wantClean: true},
		{name: "bitmaps", build: func(t *testing.T, dir string) string {
			f := qemuCreate(t, dir, "", "1G")
			runQemu(t, dir, "bitmap", "--add", f, "b0")
			runQemu(t, dir, "bitmap", "--add", "-g", "512", f, "fine")
			qemuIO(t, dir, "qcow2", f, "write -P 1 0 1M", "write 900M 64k")
			runQemu(t, dir, "bitmap", "--add", "--disable", f, "off")
			return f
		}, wantClean: true},
		{name: "luks", build: func(t *testing.T, dir string) string {
			runQemu(t, dir, "create", "-q", "-f", "qcow2", "--object", "secret,id=sec0,data=secret",
				"-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", "img.qcow2", "64M")
			cmd := exec.Command(qemuimg.Path(t, "qemu-io"), "--object", "secret,id=sec0,data=secret", "--image-opts",
				"-c", "write -P 1 0 1M", "driver=qcow2,file.filename=img.qcow2,encrypt.key-secret=sec0")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("qemu-io: %v\n%s", err, out)
			}
			return "img.qcow2"
		}, extra: map[string]any{"encrypt": map[string]any{"key-secret": "sec0"}},
			args: []string{"--object", "secret,id=sec0,data=secret"}, wantClean: true},
	}
}

func TestCheckMatchesQemuImg(t *testing.T) {
	qemuImg(t)
	for _, sc := range qemuScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			f := filepath.Join(dir, sc.build(t, dir))
			res := compareCheck(t, f, sc.extra, sc.args...)
			if sc.wantClean && !res.Clean() {
				t.Errorf("Clean() = false: %+v", res)
			}
			if res.AllocatedClusters == 0 && sc.name != "bitmaps" && sc.name != "luks" {
				t.Errorf("no allocated clusters: the scenario wrote nothing")
			}
		})
	}
}

// ckImage is an image file's bytes and where its tables are.
type ckImage struct {
	b   []byte
	img *Image
}

func loadImage(t *testing.T, path string) *ckImage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Inspect(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return &ckImage{b: b, img: img}
}

func (m *ckImage) u64(off uint64) uint64       { return binary.BigEndian.Uint64(m.b[off:]) }
func (m *ckImage) setU64(off uint64, v uint64) { binary.BigEndian.PutUint64(m.b[off:], v) }
func (m *ckImage) cs() uint64                  { return uint64(m.img.ClusterSize()) }

// l1e returns the offset of active L1 entry i.
func (m *ckImage) l1e(i uint64) uint64 { return m.img.L1TableOffset + 8*i }

// l2e returns the offset of entry j of the L2 table of L1 entry i.
func (m *ckImage) l2e(i, j uint64) uint64 {
	return m.u64(m.l1e(i))&l1eOffsetMask + j*uint64(m.img.l2EntrySize())
}

// refcountAt returns the file offset of the refcount block holding the
// refcount of cluster k, and k's index in it.
func (m *ckImage) refblock(k uint64) (uint64, int64) {
	bits := m.img.ClusterBits + 3 - m.img.RefcountOrder
	off := m.u64(m.img.RefcountTableOffset+8*(k>>bits)) & reftOffsetMask
	return off, int64(k & (1<<bits - 1))
}

func (m *ckImage) setRefcount(k, v uint64) {
	off, i := m.refblock(k)
	refcounts{m.img.RefcountOrder}.set(m.b[off:off+m.cs()], i, v)
}

func (m *ckImage) write(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, m.b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// snapshotEntry encodes one snapshot table entry, padded to 8 bytes.
func snapshotEntry(sn Snapshot, extraLen int) []byte {
	var h [snapshotHeaderLen]byte
	be := binary.BigEndian
	be.PutUint64(h[0:], sn.L1TableOffset)
	be.PutUint32(h[8:], sn.L1Size)
	be.PutUint16(h[12:], uint16(len(sn.ID)))
	be.PutUint16(h[14:], uint16(len(sn.Name)))
	be.PutUint32(h[16:], sn.DateSec)
	be.PutUint32(h[20:], sn.DateNsec)
	be.PutUint64(h[24:], sn.VMClockNsec)
	be.PutUint32(h[32:], uint32(sn.VMStateSize))
	be.PutUint32(h[36:], uint32(extraLen))
	extra := make([]byte, max(extraLen, 24))
	be.PutUint64(extra[0:], sn.VMStateSize)
	be.PutUint64(extra[8:], sn.DiskSize)
	be.PutUint64(extra[16:], uint64(sn.ICount))
	b := append(h[:], extra[:extraLen]...)
	b = append(b, sn.ID...)
	b = append(b, sn.Name...)
	return append(b, make([]byte, pad8(len(b))-len(b))...)
}

// damage is an image from a scenario with bytes changed on purpose.
type damage struct {
	name  string
	base  func(t *testing.T, dir string) string
	spoil func(t *testing.T, m *ckImage)
	// grow appends this many zero clusters to the file first.
	grow uint64
	// want checks the result beyond the comparison with qemu-img.
	want func(t *testing.T, r *CheckResult)
}

func wantCounts(corruptions, leaks, checkErrors int) func(t *testing.T, r *CheckResult) {
	return func(t *testing.T, r *CheckResult) {
		t.Helper()
		if r.Corruptions != corruptions || r.Leaks != leaks || r.CheckErrors != checkErrors {
			t.Errorf("got corruptions=%d leaks=%d check-errors=%d, want %d %d %d",
				r.Corruptions, r.Leaks, r.CheckErrors, corruptions, leaks, checkErrors)
		}
	}
}

func damages() []damage {
	data := withData("", "1G", "write -P 0xab 0 128k", "write 100M 64k")
	snaps := withSnapshots("")
	return []damage{
		{name: "refcount-zeroed", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setRefcount((m.u64(m.l2e(0, 0))&l2eOffsetMask)>>m.img.ClusterBits, 0)
		}, want: wantCounts(2, 0, 0)},
		{name: "leak", base: data, grow: 1, spoil: func(t *testing.T, m *ckImage) {
			m.setRefcount(uint64(len(m.b))/m.cs()-1, 1)
		}, want: wantCounts(0, 1, 0)},
		{name: "leak-and-refcount-2", base: data, grow: 2, spoil: func(t *testing.T, m *ckImage) {
			m.setRefcount(uint64(len(m.b))/m.cs()-2, 3)
			m.setRefcount((m.u64(m.l2e(0, 1))&l2eOffsetMask)>>m.img.ClusterBits, 2)
		}},
		{name: "l2-past-eof", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l2e(0, 5), oflagCopied|(uint64(len(m.b))+10*m.cs()))
		}},
		{name: "l2-just-past-eof", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l2e(0, 5), oflagCopied|uint64(len(m.b)))
		}},
		{name: "l1-reserved", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l1e(0), m.u64(m.l1e(0))|0x0100000000000000)
		}, want: wantCounts(1, 0, 0)},
		{name: "l1-unaligned", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l1e(0), m.u64(m.l1e(0))+0x200)
		}},
		{name: "l1-past-eof", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l1e(1), oflagCopied|(uint64(len(m.b))+m.cs()*100))
		}},
		{name: "l1-twice", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l1e(1), m.u64(m.l1e(0)))
		}},
		{name: "l2-unaligned", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l2e(0, 0), m.u64(m.l2e(0, 0))+0x200)
		}},
		{name: "l2-zero-unaligned", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l2e(0, 0), m.u64(m.l2e(0, 0))+0x200|oflagZero)
		}},
		{name: "l2-reserved", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l2e(0, 1), m.u64(m.l2e(0, 1))|0x0200000000000000)
		}},
		{name: "copied-cleared", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l2e(0, 1), m.u64(m.l2e(0, 1))&^oflagCopied)
		}, want: wantCounts(1, 0, 0)},
		{name: "l1-copied-cleared", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l1e(0), m.u64(m.l1e(0))&^oflagCopied)
		}, want: wantCounts(1, 0, 0)},
		{name: "copied-set-shared", base: snaps, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l2e(0, 20), m.u64(m.l2e(0, 20))|oflagCopied)
		}},
		{name: "snapshot-shared-l2-damaged", base: snaps, spoil: func(t *testing.T, m *ckImage) {
			// L2 table 0 is shared by the snapshots: its problems and
			// references repeat for each L1 table that points at it.
			m.setU64(m.l2e(0, 30), m.u64(m.l2e(0, 30))|0x0200000000000000)
			m.setU64(m.l2e(0, 31), oflagCopied|(uint64(len(m.b))+10*m.cs()))
			m.setU64(m.l2e(0, 32), m.u64(m.l2e(0, 32))+0x200)
		}},
		{name: "compressed-copied", base: qemuCompressed(""), spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l2e(0, 0), m.u64(m.l2e(0, 0))|oflagCopied)
		}},
		{name: "compressed-past-eof", base: qemuCompressed(""), spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l2e(0, 3), l2eCompressed|uint64(len(m.b))+3*m.cs()+100)
		}},
		{name: "compressed-extl2-bitmap", base: qemuCompressed("extended_l2=on"), spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l2e(0, 1)+8, 3)
		}},
		{name: "data-file-compressed", base: withData("data_file=img.raw", "1G", "write -P 1 0 1M"), spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l2e(0, 2), l2eCompressed|0x10000)
			m.setU64(m.l2e(0, 3), m.u64(m.l2e(0, 3))&^oflagCopied)
		}},
		{name: "reftable-outside", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.img.RefcountTableOffset+8, 1<<40)
		}},
		{name: "reftable-unaligned", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.img.RefcountTableOffset, m.u64(m.img.RefcountTableOffset)+0x200)
		}},
		{name: "reftable-reserved", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.img.RefcountTableOffset, m.u64(m.img.RefcountTableOffset)|1)
		}},
		{name: "reftable-huge-offset", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.img.RefcountTableOffset, 0xffffffffffff0000)
		}},
		{name: "refblock-shared", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.img.RefcountTableOffset+8, m.u64(m.img.RefcountTableOffset))
		}},
		{name: "overflow-rb1", base: withData("refcount_bits=1", "1G", "write 0 64k"), spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l1e(1), m.u64(m.l1e(0)))
		}},
		{name: "extl2-bitmap", base: withData("extended_l2=on", "1G", "write 0 8k", "write 1M 4k"), spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.l2e(0, 0)+8, m.u64(m.l2e(0, 0)+8)|1<<32)
			m.setU64(m.l2e(0, 5)+8, 1)
			m.setU64(m.l2e(0, 16), m.u64(m.l2e(0, 16))+0x200)
		}},
		{name: "snapshot-l1-unaligned", base: snaps, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.img.SnapshotsOffset, m.u64(m.img.SnapshotsOffset)+0x200)
		}},
		{name: "snapshot-l1-too-large", base: snaps, spoil: func(t *testing.T, m *ckImage) {
			binary.BigEndian.PutUint32(m.b[m.img.SnapshotsOffset+8:], 5<<20)
		}},
		{name: "snapshot-l1-past-eof", base: snaps, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.img.SnapshotsOffset, 1<<40)
		}},
		{name: "snapshot-l1-at-max-offset", base: snaps, spoil: func(t *testing.T, m *ckImage) {
			m.setU64(m.img.SnapshotsOffset, 0x7fffffffffff0000)
		}},
		{name: "snapshot-extra-too-large", base: snaps, spoil: func(t *testing.T, m *ckImage) {
			binary.BigEndian.PutUint32(m.b[m.img.SnapshotsOffset+36:], 1025)
		}},
		{name: "snapshots-claimed-past-eof", base: snaps, spoil: func(t *testing.T, m *ckImage) {
			binary.BigEndian.PutUint32(m.b[60:], maxSnapshots)
		}},
		{name: "snapshots-zeros-past-eof", base: snaps, grow: 1, spoil: func(t *testing.T, m *ckImage) {
			// The table moves to the last cluster; QEMU reads the 65534
			// entries the file lacks as zeros.
			end := uint64(len(m.b)) - m.cs()
			copy(m.b[end:], m.b[m.img.SnapshotsOffset:m.img.SnapshotsOffset+m.cs()/2])
			m.setRefcount(end/m.cs(), 1)
			binary.BigEndian.PutUint32(m.b[60:], maxSnapshots)
			m.setU64(64, end)
		}},
		{name: "header-cluster-leaked-twice", base: data, spoil: func(t *testing.T, m *ckImage) {
			m.setRefcount(0, 2)
		}},
	}
}

func TestCheckDamaged(t *testing.T) {
	qemuImg(t)
	for _, d := range damages() {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			f := filepath.Join(dir, d.base(t, dir))
			if d.grow > 0 {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(f, fi.Size()+int64(d.grow)<<16); err != nil {
					t.Fatal(err)
				}
			}
			m := loadImage(t, f)
			d.spoil(t, m)
			m.write(t, f)
			res := compareCheck(t, f, nil)
			if res.Clean() {
				t.Errorf("Clean() = true for a damaged image")
			}
			if d.want != nil {
				d.want(t, res)
			}
		})
	}
}

// TestCheckTooManyClusters checks a sparse file of more than 2^31-1
// clusters: QEMU refuses to check it.
func TestCheckTooManyClusters(t *testing.T) {
	qemuImg(t)
	t.Parallel()
	f := filepath.Join(t.TempDir(), "img.qcow2")
	if err := Create(f, Options{Size: giB, ClusterSize: 512}); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f, (1<<31)*512+512); err != nil {
		t.Fatal(err)
	}
	res := compareCheck(t, f, nil)
	if !res.Incomplete || res.CheckErrors != 1 {
		t.Errorf("got Incomplete=%v CheckErrors=%d, want true 1", res.Incomplete, res.CheckErrors)
	}
}

func TestCheckSummaryMatchesQemuImg(t *testing.T) {
	qemuImg(t)
	dir := t.TempDir()
	f := filepath.Join(dir, withSnapshots("")(t, dir))
	clean := filepath.Join(dir, "clean.qcow2")
	if err := Create(clean, Options{Size: giB}); err != nil {
		t.Fatal(err)
	}
	m := loadImage(t, f)
	m.setU64(m.l2e(0, 20), m.u64(m.l2e(0, 20))|oflagCopied)
	m.b = append(m.b, make([]byte, m.cs())...)
	m.setRefcount(uint64(len(m.b))/m.cs()-1, 1)
	bad := filepath.Join(dir, "bad.qcow2")
	m.write(t, bad)
	for _, p := range []string{f, clean, bad} {
		cmd := exec.Command(qemuImg(t), "check", p)
		want, _ := cmd.Output()
		res, err := CheckFile(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Summary(); got != string(want) {
			t.Errorf("%s: got\n%s\nwant\n%s", filepath.Base(p), got, want)
		}
	}
}

func TestReadSnapshotsMatchesQemuImg(t *testing.T) {
	qemuImg(t)
	dir := t.TempDir()
	f := filepath.Join(dir, withSnapshots("")(t, dir))
	m := loadImage(t, f)
	qemuSnaps, err := ReadSnapshots(bytes.NewReader(m.b), m.img)
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the table with entries qemu-img cannot make: a VM state, an
	// instruction count, extra data of every length QEMU knows, unknown
	// extra data, and a name with a NUL byte.
	l1 := qemuSnaps[0]
	entries := []struct {
		sn    Snapshot
		extra int
	}{
		{Snapshot{ID: "1", Name: "s1", L1TableOffset: l1.L1TableOffset, L1Size: l1.L1Size, DateSec: 1700000000,
			DateNsec: 999999999, VMClockNsec: 12_345_678_901, VMStateSize: 5 << 32, DiskSize: 1 << 30, ICount: 42}, 24},
		{Snapshot{ID: "2", Name: "no icount", VMStateSize: 77, DiskSize: 1 << 20, ICount: -1}, 16},
		{Snapshot{ID: "3", Name: "vmstate only", VMStateSize: 1 << 33}, 8},
		{Snapshot{ID: "4", Name: "old", VMStateSize: 123}, 0},
		{Snapshot{ID: "5", Name: "unknown extra", ICount: 7}, 100},
		{Snapshot{ID: "6", Name: "nul\x00after"}, 24},
	}
	var table []byte
	for _, e := range entries {
		table = append(table, snapshotEntry(e.sn, e.extra)...)
	}
	if uint64(len(table)) > m.cs() {
		t.Fatalf("table of %d bytes does not fit its cluster", len(table))
	}
	copy(m.b[m.img.SnapshotsOffset:], table)
	binary.BigEndian.PutUint32(m.b[60:], uint32(len(entries)))
	custom := filepath.Join(dir, "custom.qcow2")
	m.write(t, custom)

	for _, p := range []string{f, custom} {
		t.Run(filepath.Base(p), func(t *testing.T) {
			mm := loadImage(t, p)
			got, err := ReadSnapshots(bytes.NewReader(mm.b), mm.img)
			if err != nil {
				t.Fatal(err)
			}
			var info struct {
				Snapshots []map[string]any `json:"snapshots"`
			}
			if err := json.Unmarshal([]byte(runQemu(t, dir, "info", "--output=json", p)), &info); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(info.Snapshots) {
				t.Fatalf("got %d snapshots, want %d", len(got), len(info.Snapshots))
			}
			for i, sn := range got {
				g := map[string]any{
					"id": sn.ID, "name": sn.Name, "vm-state-size": float64(sn.VMStateSize),
					"date-sec": float64(sn.DateSec), "date-nsec": float64(sn.DateNsec),
					"vm-clock-sec": float64(sn.VMClockNsec / 1e9), "vm-clock-nsec": float64(sn.VMClockNsec % 1e9),
				}
				if sn.ICount != -1 {
					g["icount"] = float64(sn.ICount)
				}
				if !reflect.DeepEqual(g, info.Snapshots[i]) {
					t.Errorf("snapshot %d: got %v, want %v", i, g, info.Snapshots[i])
				}
			}
			if p == custom {
				for i, e := range entries {
					sn := got[i]
					if sn.DiskSize != e.sn.DiskSize && e.extra >= 16 {
						t.Errorf("snapshot %d: disk size %d, want %d", i, sn.DiskSize, e.sn.DiskSize)
					}
					if e.extra < 16 && sn.DiskSize != mm.img.Size {
						t.Errorf("snapshot %d: disk size %d, want the virtual size %d", i, sn.DiskSize, mm.img.Size)
					}
					if len(sn.ExtraData) != e.extra {
						t.Errorf("snapshot %d: %d bytes of extra data, want %d", i, len(sn.ExtraData), e.extra)
					}
				}
			}
			// And Check agrees with qemu-img on the rewritten table.
			compareCheck(t, p, nil)
		})
	}
}

func TestReadSnapshotsRefuses(t *testing.T) {
	t.Parallel()
	var w writerAtBuffer
	if _, err := CreateAt(&w, Options{Size: miB, ClusterSize: 512}); err != nil {
		t.Fatal(err)
	}
	base := w.b
	withTable := func(n uint32, table []byte) []byte {
		b := bytes.Clone(base)
		b = append(b, make([]byte, (len(b)+511)&^511-len(b))...)
		off := uint64(len(b))
		b = append(b, table...)
		b = append(b, make([]byte, pad8(len(b))-len(b))...)
		binary.BigEndian.PutUint32(b[60:], n)
		binary.BigEndian.PutUint64(b[64:], off)
		return b
	}
	one := snapshotEntry(Snapshot{ID: "1", Name: "a"}, 24)
	big := snapshotEntry(Snapshot{ID: "1", Name: "a"}, 0)
	binary.BigEndian.PutUint32(big[36:], 1025)
	cases := []struct {
		name string
		b    []byte
		want int // entries, or -1 for an error
	}{
		{"one", withTable(1, one), 1},
		{"65536-in-a-tiny-file", withTable(maxSnapshots, one), -1},
		{"two-claimed-one-present", withTable(2, one), -1},
		{"name-past-eof", withTable(1, one[:snapshotHeaderLen+24]), -1},
		{"extra-data-too-large", withTable(1, big), -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img, err := Inspect(bytes.NewReader(tc.b))
			if err != nil {
				t.Fatal(err)
			}
			r := &countingReader{r: bytes.NewReader(tc.b)}
			got, err := ReadSnapshots(r, img)
			if tc.want < 0 {
				if !errors.Is(err, ErrSnapshotTable) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("got %v, want an error wrapping ErrSnapshotTable", err)
				}
				if !strings.HasPrefix(err.Error(), "qcow2: ") {
					t.Errorf("error %q lacks the qcow2: prefix", err)
				}
			} else if err != nil || len(got) != tc.want {
				t.Fatalf("got %d entries, %v; want %d", len(got), err, tc.want)
			}
			if r.bytes > int64(len(tc.b))+128<<10 {
				t.Errorf("read %d bytes from a %d-byte file", r.bytes, len(tc.b))
			}
		})
	}
}

// countingReader counts the bytes asked of it.
type countingReader struct {
	r     *bytes.Reader
	bytes int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.bytes += int64(len(p))
	return c.r.ReadAt(p, off)
}

func (c *countingReader) Size() int64 { return c.r.Size() }

func TestCheckCanceled(t *testing.T) {
	t.Parallel()
	var w writerAtBuffer
	if _, err := CreateAt(&w, Options{Size: giB, ClusterSize: 512}); err != nil {
		t.Fatal(err)
	}
	// Point a few L1 entries at an L2 table so the walk has tables to read.
	img, err := Inspect(bytes.NewReader(w.b))
	if err != nil {
		t.Fatal(err)
	}
	l2 := int64(len(w.b))
	w.WriteAt(make([]byte, 512), l2)
	for i := int64(0); i < 4; i++ {
		w.WriteAt(binary.BigEndian.AppendUint64(nil, uint64(l2)), int64(img.L1TableOffset)+8*i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Check(ctx, bytes.NewReader(w.b), int64(len(w.b)))
	if err != context.Canceled || res != nil {
		t.Fatalf("got %v, %v; want nil, context.Canceled", res, err)
	}
	// CheckFile passes the context's error through unwrapped too.
	f := filepath.Join(t.TempDir(), "img.qcow2")
	if err := os.WriteFile(f, w.b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckFile(ctx, f); err != context.Canceled {
		t.Fatalf("CheckFile: got %v, want context.Canceled", err)
	}
}

// TestCheckSeeds checks the fuzzing seeds in testdata/check, which must
// stay clean, against qemu-img.
func TestCheckSeeds(t *testing.T) {
	qemuImg(t)
	paths, _ := filepath.Glob(filepath.Join("testdata", "check", "*.qcow2"))
	if len(paths) == 0 {
		t.Fatal("no seeds in testdata/check")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			t.Parallel()
			if res := compareCheck(t, p, nil); !res.Clean() {
				t.Errorf("Clean() = false for seed %s", p)
			}
		})
	}
}

func TestCheckRefusesInvalidHeader(t *testing.T) {
	t.Parallel()
	_, err := Check(context.Background(), bytes.NewReader([]byte("not an image")), 12)
	if !errors.Is(err, ErrNotQcow2) {
		t.Fatalf("got %v, want ErrNotQcow2", err)
	}
	if _, err := CheckFile(context.Background(), filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want os.ErrNotExist", err)
	}
}

func TestCheckResultMethods(t *testing.T) {
	t.Parallel()
	cases := []struct {
		r     CheckResult
		code  int
		clean bool
	}{
		{CheckResult{}, 0, true},
		{CheckResult{Leaks: 2}, 3, false},
		{CheckResult{Leaks: 2, Corruptions: 1}, 2, false},
		{CheckResult{Corruptions: 1, CheckErrors: 1}, 1, false},
		{CheckResult{Incomplete: true}, 1, false},
	}
	for i, tc := range cases {
		if got := tc.r.ExitCode(); got != tc.code {
			t.Errorf("case %d: ExitCode() = %d, want %d", i, got, tc.code)
		}
		if got := tc.r.Clean(); got != tc.clean {
			t.Errorf("case %d: Clean() = %v, want %v", i, got, tc.clean)
		}
	}
	b, err := json.Marshal(&CheckResult{ImageEndOffset: 1, Problems: []CheckProblem{{ProblemLeak, "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"check-errors":0,"image-end-offset":1}`; got != want {
		t.Errorf("JSON %s, want %s", got, want)
	}
	if got := hexAlt(0) + " " + hexAlt(255); got != "0 0xff" {
		t.Errorf("hexAlt: got %q, want %q", got, "0 0xff")
	}
}
