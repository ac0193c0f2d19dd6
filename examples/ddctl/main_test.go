package main

import (
	"bytes"
	"context"
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

// ddctl runs the CLI in-process and returns its exit code, stdout, stderr.
func ddctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestQcow2CreateAndInfoMatchQemu creates every image of the shared matrix
// with ddctl and with qemu-img from the same arguments, compares the bytes,
// then compares ddctl qcow2 info -json with qemu-img info --output=json.
func TestQcow2CreateAndInfoMatchQemu(t *testing.T) {
	qemuimg.Path(t, "qemu-img")
	t.Parallel()
	for i, c := range qemuimg.Matrix() {
		t.Run(c.Name(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			want := filepath.Join(dir, "want.qcow2")
			got := filepath.Join(dir, "got.qcow2")
			qemuimg.Run(t, dir, append([]string{"create", "-q", "-f", "qcow2"}, c.Args(want)...)...)
			code, stdout, stderr := ddctl(t, append([]string{"qcow2", "create", "-q"}, c.Args(got)...)...)
			if code != 0 || stdout != "" {
				t.Fatalf("ddctl qcow2 create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			wb, _ := os.ReadFile(want)
			gb, _ := os.ReadFile(got)
			if !bytes.Equal(gb, wb) {
				t.Fatalf("ddctl's image (%d bytes) differs from qemu-img's (%d bytes)", len(gb), len(wb))
			}
			if i%2 == 1 {
				// Also compare info on qemu-img's own file.
				got = want
			}
			out, err := exec.Command("qemu-img", "info", "--output=json", got).Output()
			if err != nil {
				t.Fatalf("qemu-img info: %v", err)
			}
			code, stdout, stderr = ddctl(t, "qcow2", "info", "-json", got)
			if code != 0 {
				t.Fatalf("ddctl qcow2 info: exit %d: %s", code, stderr)
			}
			var w, g map[string]any
			if err := json.Unmarshal(out, &w); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(stdout), &g); err != nil {
				t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout)
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("info differs\n got: %s\nwant: %s", stdout, out)
			}
		})
	}
}

func TestQcow2Usage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	img := filepath.Join(dir, "a.qcow2")
	if code, _, stderr := ddctl(t, "qcow2", "create", "-q", img, "1G"); code != 0 {
		t.Fatalf("create: %s", stderr)
	}
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no-args", nil, 2, "usage"},
		{"usage-names-subcommand", []string{"qcow2", "create"}, 2, "usage: ddctl qcow2 create [-o OPTIONS]"},
		{"unknown-group", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown-sub", []string{"qcow2", "convert"}, 2, `unknown command "qcow2 convert"`},
		{"bad-flag", []string{"qcow2", "info", "-nope", img}, 2, "flag provided but not defined"},
		{"create-no-size", []string{"qcow2", "create", filepath.Join(dir, "x.qcow2")}, 2, "SIZE required"},
		{"create-bad-size", []string{"qcow2", "create", filepath.Join(dir, "x.qcow2"), "12Q"}, 2, "invalid size"},
		{"create-bad-option", []string{"qcow2", "create", "-o", "color=red", filepath.Join(dir, "x.qcow2"), "1G"}, 2, "unknown option"},
		{"create-format", []string{"qcow2", "create", "-f", "raw", filepath.Join(dir, "x.qcow2"), "1G"}, 2, "only qcow2"},
		{"create-refused", []string{"qcow2", "create", "-o", "cluster_size=1000", filepath.Join(dir, "x.qcow2"), "1G"}, 2, "cluster size 1000"},
		{"create-no-backing-format", []string{"qcow2", "create", "-b", "a.qcow2", filepath.Join(dir, "x.qcow2")}, 2, "backing format"},
		{"create-too-large", []string{"qcow2", "create", "-o", "cluster_size=512", filepath.Join(dir, "x.qcow2"), "129G"}, 2, "larger cluster size"},
		{"create-zero-overlay", []string{"qcow2", "create", "-b", "a.qcow2", "-F", "qcow2", filepath.Join(dir, "x.qcow2"), "0"}, 2, "SIZE 0 with a backing file"},
		{"create-missing-backing", []string{"qcow2", "create", "-b", "nope.qcow2", "-F", "qcow2", filepath.Join(dir, "x.qcow2")}, 1, "could not open backing image"},
		{"info-two-files", []string{"qcow2", "info", img, img}, 2, "exactly one FILE"},
		{"info-missing", []string{"qcow2", "info", filepath.Join(dir, "missing.qcow2")}, 1, "no such file"},
		{"info-not-qcow2", []string{"qcow2", "info", "main.go"}, 1, "not in qcow2 format"},
		{"rebase-safe", []string{"qcow2", "rebase", "-b", "x", "-F", "qcow2", img}, 2, "only -u"},
		{"rebase-no-b", []string{"qcow2", "rebase", "-u", img}, 2, "-b BACKING required"},
		{"rebase-no-F", []string{"qcow2", "rebase", "-u", "-b", "x", img}, 2, "backing format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := ddctl(t, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, c.code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if !strings.Contains(stderr, c.msg) {
				t.Errorf("stderr %q lacks %q", stderr, c.msg)
			}
			if c.code != 0 && c.name != "no-args" && !strings.HasPrefix(stderr, "ddctl: ") {
				t.Errorf("stderr %q does not start with ddctl:", stderr)
			}
			if c.code != 0 && c.name != "no-args" && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("error is not one line: %q", stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x.qcow2")); err == nil {
		t.Error("a refused create left x.qcow2 behind")
	}
}

func TestQcow2RebaseAndInspect(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	ov := filepath.Join(dir, "ov.qcow2")
	for _, args := range [][]string{
		{"qcow2", "create", "-q", base, "2G"},
		{"qcow2", "create", "-q", "-b", "base.qcow2", "-F", "qcow2", ov},
	} {
		if code, _, stderr := ddctl(t, args...); code != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
	}

	code, stdout, _ := ddctl(t, "qcow2", "inspect", "-json", ov)
	var v struct {
		Safe     bool `json:"safe"`
		Problems []struct {
			Code string `json:"code"`
		} `json:"problems"`
		VirtualSize int64  `json:"virtual-size"`
		Backing     string `json:"backing-filename"`
	}
	if err := json.Unmarshal([]byte(stdout), &v); err != nil {
		t.Fatalf("inspect -json: %v\n%s", err, stdout)
	}
	if code != 1 || v.Safe || len(v.Problems) != 1 || v.Problems[0].Code != "backing-file" || v.VirtualSize != 2<<30 || v.Backing != "base.qcow2" {
		t.Errorf("inspect of an overlay: exit %d, %+v", code, v)
	}
	if code, _, stderr := ddctl(t, "qcow2", "inspect", "-allow-backing", ov); code != 0 {
		t.Errorf("inspect -allow-backing: exit %d: %s", code, stderr)
	}
	if code, _, _ := ddctl(t, "qcow2", "inspect", "-max-size", "1G", base); code != 1 {
		t.Errorf("inspect -max-size 1G of a 2G image: exit %d, want 1", code)
	}

	if code, _, stderr := ddctl(t, "qcow2", "rebase", "-u", "-b", "", ov); code != 0 {
		t.Fatalf("rebase -b '': %s", stderr)
	}
	code, stdout, _ = ddctl(t, "qcow2", "inspect", "-json", ov)
	if code != 0 || !strings.Contains(stdout, `"safe": true`) {
		t.Errorf("after removing the backing file: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := ddctl(t, "qcow2", "rebase", "-u", "-b", "/images/base.qcow2", "-F", "qcow2", ov); code != 0 {
		t.Fatalf("rebase: %s", stderr)
	}
	code, stdout, _ = ddctl(t, "qcow2", "info", "-json", ov)
	if code != 0 || !strings.Contains(stdout, `"backing-filename": "/images/base.qcow2"`) {
		t.Errorf("info after rebase: exit %d\n%s", code, stdout)
	}
}

// TestQcow2CheckExitCodes damages images on purpose and checks ddctl's
// exit codes and JSON against qemu-img check's.
func TestQcow2CheckExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean.qcow2")
	if code, _, stderr := ddctl(t, "qcow2", "create", "-q", clean, "1G"); code != 0 {
		t.Fatal(stderr)
	}
	b, err := os.ReadFile(clean)
	if err != nil {
		t.Fatal(err)
	}
	// 64 KiB clusters, 16-bit refcounts, refcount block at 0x20000,
	// L1 table in cluster 3.
	corrupt := bytes.Clone(b)
	corrupt[0x20000+2*3+1] = 0 // L1's refcount 1 -> 0
	leak := append(bytes.Clone(b), make([]byte, 2*65536-len(b)%65536)...)
	leak[0x20000+2*4+1] = 1 // cluster 4 is unused
	files := map[string][]byte{"corrupt.qcow2": corrupt, "leak.qcow2": leak}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		file string
		code int
		msg  string
	}{
		{"clean.qcow2", 0, "No errors were found on the image."},
		{"corrupt.qcow2", 2, "ERROR cluster 3 refcount=0 reference=1"},
		{"leak.qcow2", 3, "Leaked cluster 4 refcount=1 reference=0"},
		{"missing.qcow2", 1, "no such file"},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.file)
		code, stdout, stderr := ddctl(t, "qcow2", "check", p)
		if code != c.code || stdout != "" || !strings.Contains(stderr, c.msg) {
			t.Errorf("check %s: exit %d (want %d), stdout %q, stderr %q (want %q)", c.file, code, c.code, stdout, stderr, c.msg)
		}
		code, stdout, _ = ddctl(t, "qcow2", "check", "-json", p)
		if code != c.code {
			t.Errorf("check -json %s: exit %d, want %d", c.file, code, c.code)
		}
		if c.code == 1 {
			continue
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("check -json %s: %v\n%s", c.file, err, stdout)
		}
		if _, err := exec.LookPath("qemu-img"); err != nil {
			continue
		}
		cmd := exec.Command("qemu-img", "check", "--output=json", p)
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() != c.code {
			t.Errorf("qemu-img check %s: exit %d, want %d", c.file, ee.ExitCode(), c.code)
		}
		var want map[string]any
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatalf("qemu-img check %s: %v", c.file, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("check -json %s\n got: %s\nwant: %s", c.file, stdout, out)
		}
	}
}

// TestEveryCommandHelp: -h of every command prints its usage and every
// flag it takes on stderr and exits 0, so the synopsis in the package
// documentation can be checked against it (internal/doccheck does).
func TestEveryCommandHelp(t *testing.T) {
	var names []string
	for n := range singles {
		names = append(names, n)
	}
	for g, cmds := range groups {
		for n := range cmds {
			names = append(names, g+" "+n)
		}
	}
	for _, name := range names {
		args := append(strings.Fields(name), "-h")
		code, stdout, stderr := ddctl(t, args...)
		if code != 0 || stdout != "" || !strings.HasPrefix(stderr, "usage: ddctl "+name+" ") || !strings.Contains(stderr, "\nflags:\n") {
			t.Errorf("%s -h: exit %d, stdout %q, stderr %q; want 0, the usage and the flags on stderr", name, code, stdout, stderr)
		}
	}
}
