package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// facts are what the test learns about the tour's files by itself, while
// they exist.
type facts struct {
	templateSum   string
	templateSize  int64
	downloadSum   string
	partialSeen   bool  // the .ddpart existed after the interruption...
	destAbsent    bool  // ...and the destination did not
	partialSize   int64 // its size then
	qemu          map[string]qemuFacts
	qemuAvailable bool
}

// qemuFacts are what qemu-img says about one file.
type qemuFacts struct {
	checkErr error // qemu-img check: nil when the image is clean
	info     struct {
		VirtualSize     int64  `json:"virtual-size"`
		Format          string `json:"format"`
		BackingFilename string `json:"backing-filename"`
	}
	infoErr error
	// dataBytes counts the bytes qemu-img map reports as data.
	dataBytes int64
	mapErr    error
}

func sha256File(t *testing.T, path string) (string, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

func (f *facts) qemuImg(path string) qemuFacts {
	var q qemuFacts
	out, err := exec.Command("qemu-img", "check", "-f", "qcow2", path).CombinedOutput()
	if err != nil {
		q.checkErr = fmt.Errorf("%v: %s", err, out)
	}
	// -U: the image is not open elsewhere, but do not depend on locks.
	out, err = exec.Command("qemu-img", "info", "-U", "--output=json", path).Output()
	if err == nil {
		err = json.Unmarshal(out, &q.info)
	}
	q.infoErr = err
	out, err = exec.Command("qemu-img", "map", "-U", "--output=json", "-f", "qcow2", path).Output()
	if err == nil {
		var extents []struct {
			Length int64 `json:"length"`
			Data   bool  `json:"data"`
		}
		err = json.Unmarshal(out, &extents)
		for _, e := range extents {
			if e.Data {
				q.dataBytes += e.Length
			}
		}
	}
	q.mapErr = err
	return q
}

// TestQuickstart takes the tour in-process and checks every step's line
// against what the test finds in the tour's files itself.
func TestQuickstart(t *testing.T) {
	// The tour's temporary directory goes here, so the test can see that
	// nothing is left behind.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	f := &facts{qemu: map[string]qemuFacts{}}
	_, lookErr := exec.LookPath("qemu-img")
	f.qemuAvailable = lookErr == nil
	hook := func(role, path string) {
		switch role {
		case "template":
			f.templateSum, f.templateSize = sha256File(t, path)
		case "partial":
			st, err := os.Stat(path)
			f.partialSeen = err == nil
			if err == nil {
				f.partialSize = st.Size()
			}
			dest := filepath.Join(filepath.Dir(path), strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "."), ".ddpart"))
			_, err = os.Stat(dest)
			f.destAbsent = errors.Is(err, fs.ErrNotExist)
		case "download":
			f.downloadSum, _ = sha256File(t, path)
		}
		if f.qemuAvailable && role != "partial" {
			f.qemu[role] = f.qemuImg(path)
		}
	}

	var out, bar bytes.Buffer
	if err := run(context.Background(), &out, hooks{bar: &bar, file: hook}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	t.Logf("output:\n%s", got)

	// One line per step, in the story's order, and nothing else.
	if strings.Contains(got, "\r") {
		t.Errorf("the progress bar leaked into the output:\n%q", got)
	}
	steps := []string{"pki", "template", "serve", "probe", "trust", "register", "download",
		"inspect", "vm disk", "delete", "delete", "plan", "prepare", "cleanup"}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	var names []string
	line := map[string][]string{}
	for _, l := range lines {
		name, rest, ok := strings.Cut(l, ":")
		if !ok {
			t.Errorf("line without a step name: %q", l)
			continue
		}
		names = append(names, name)
		line[name] = append(line[name], strings.TrimSpace(rest))
	}
	if strings.Join(names, ",") != strings.Join(steps, ",") {
		t.Fatalf("steps printed:\n%q\nwant one line each, in order:\n%q", names, steps)
	}
	one := func(name string) string { return line[name][0] }
	contains := func(name, s string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(s, w) {
				t.Errorf("%s: %q lacks %q", name, s, w)
			}
		}
	}

	// The template: its sum and size as the test measures them.
	if f.templateSum == "" {
		t.Fatal("the tour did not show the test its template")
	}
	mibs := func(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }
	contains("template", one("template"), "sha256 "+f.templateSum, "20 GiB", mibs(f.templateSize)+" on disk", "16.0 MiB of data")

	contains("pki", one("pki"), "127.0.0.1 and 127.0.0.2", "http://127.0.0.3:")
	contains("serve", one("serve"), "https://127.0.0.1:", "answers 302 to https://127.0.0.2:", "leaf certificate only")
	contains("probe", one("probe"), "hop 1 127.0.0.1 verified, 302", "hop 2 127.0.0.2 sends 1 certificate (missing-intermediate)", "request withheld")
	contains("trust", one("trust"), `fetched "Quickstart Intermediate CA" through AIA`, `verifies to "Quickstart Root CA"`)

	reg := regexp.MustCompile(`^template (\d+) \(([0-9a-f-]{36})\) in zones \[1 2\] with UEFI=secure, checksum \{SHA-256\}([0-9a-f]{12})…$`).FindStringSubmatch(one("register"))
	if reg == nil {
		t.Fatalf("register: %q", one("register"))
	}
	id, uuid := reg[1], reg[2]
	if reg[3] != f.templateSum[:12] {
		t.Errorf("register: checksum %s…, the template's sha256 is %s", reg[3], f.templateSum)
	}

	// The download: interrupted before the end, resumed with less than the
	// whole file, and the same bytes as the template.
	dl := regexp.MustCompile(`^interrupted at (\d+)% \((\S+) kept\), resumed from ([\d.]+) MiB: ([\d.]+ MiB) over (\d+) connections, sha256 verified; the resume fetched ([\d.]+) MiB$`).FindStringSubmatch(one("download"))
	if dl == nil {
		t.Fatalf("download: %q", one("download"))
	}
	pct, _ := strconv.Atoi(dl[1])
	resumed, _ := strconv.ParseFloat(dl[3], 64)
	conns, _ := strconv.Atoi(dl[5])
	fetched, _ := strconv.ParseFloat(dl[6], 64)
	total := float64(f.templateSize) / (1 << 20)
	if pct < 40 || pct >= 100 {
		t.Errorf("download: interrupted at %d%%, want from 40%% to before the end", pct)
	}
	if dl[2] != "."+uuid+".ddpart" {
		t.Errorf("download: partial %s, want .%s.ddpart beside the destination", dl[2], uuid)
	}
	if !f.partialSeen || !f.destAbsent || f.partialSize == 0 {
		t.Errorf("after the interruption: partial file seen %v (%d bytes), destination absent %v; want a partial and no destination",
			f.partialSeen, f.partialSize, f.destAbsent)
	}
	if resumed <= 0 || resumed >= total {
		t.Errorf("download: resumed from %v MiB of %.1f MiB, want some but not all", resumed, total)
	}
	if fetched >= total || fetched <= 0 {
		t.Errorf("download: the resume fetched %v MiB of %.1f MiB, want less than the whole file", fetched, total)
	}
	if dl[4] != mibs(f.templateSize) {
		t.Errorf("download: %s, the template is %s", dl[4], mibs(f.templateSize))
	}
	if conns < 2 {
		t.Errorf("download: %d connection(s), want a parallel download", conns)
	}
	if f.downloadSum != f.templateSum {
		t.Errorf("downloaded sha256 %s, served template %s", f.downloadSum, f.templateSum)
	}

	contains("inspect", one("inspect"), "safe to use as a template", "20 GiB virtual, no backing file; 0 corruptions, 0 leaks")
	contains("vm disk", one("vm disk"), "i-2-10-VM-root.qcow2: a 20 GiB overlay backed by "+uuid+" (qcow2)")
	contains("delete", line["delete"][0], "zone 2: template "+id+" still offered in zones [1]", "details kept: UEFI=secure")
	contains("delete", line["delete"][1], "zone 1: template "+id+" removed", "details left: none", "no longer offered")
	contains("plan", one("plan"), "vda full: template "+uuid+" was deleted", "libvirt flags VIR_MIGRATE_LIVE|VIR_MIGRATE_NON_SHARED_DISK")
	contains("prepare", one("prepare"), "created i-2-10-VM-root.qcow2", "20 GiB virtual, no backing file")

	// Nothing left behind.
	dir := strings.TrimSuffix(strings.TrimPrefix(one("cleanup"), "removed "), " and everything the tour made in it")
	if filepath.Dir(dir) != tmp {
		t.Errorf("cleanup: removed %q, want a directory in %s", dir, tmp)
	}
	if left, err := os.ReadDir(tmp); err != nil || len(left) != 0 {
		t.Errorf("left in the temporary directory: %v (%v)", left, err)
	}

	// The progress bar went to its own writer.
	if !strings.Contains(bar.String(), "%") || !strings.Contains(bar.String(), "interrupted, resuming:") {
		t.Errorf("progress bar output lacks its percentages or the resume:\n%q", bar.String())
	}

	t.Run("qemu-img", func(t *testing.T) {
		if !f.qemuAvailable {
			if os.Getenv("CI") == "true" {
				t.Fatalf("qemu-img (Debian package qemu-utils) is required under CI: %v", lookErr)
			}
			t.Skipf("qemu-img not installed: %v", lookErr)
		}
		for _, role := range []string{"template", "download", "vm", "migrated"} {
			q, ok := f.qemu[role]
			if !ok {
				t.Errorf("%s: never shown to the test", role)
				continue
			}
			if q.checkErr != nil || q.infoErr != nil || q.mapErr != nil {
				t.Errorf("%s: qemu-img check: %v; info: %v; map: %v", role, q.checkErr, q.infoErr, q.mapErr)
			}
			if q.info.Format != "qcow2" || q.info.VirtualSize != virtualSize {
				t.Errorf("%s: qemu-img info: format %q, virtual size %d; want qcow2, %d", role, q.info.Format, q.info.VirtualSize, int64(virtualSize))
			}
		}
		for _, role := range []string{"template", "download"} {
			if q := f.qemu[role]; q.dataBytes != dataSize || q.info.BackingFilename != "" {
				t.Errorf("%s: %d bytes of data, backing %q; want %d and none", role, q.dataBytes, q.info.BackingFilename, dataSize)
			}
		}
		if b := f.qemu["vm"].info.BackingFilename; b != uuid {
			t.Errorf("vm disk: qemu-img says backing file %q, want %q", b, uuid)
		}
		if q := f.qemu["migrated"]; q.info.BackingFilename != "" || q.dataBytes != 0 {
			t.Errorf("destination disk: backing %q, %d bytes of data; want an empty image with no backing file", q.info.BackingFilename, q.dataBytes)
		}
	})
}
