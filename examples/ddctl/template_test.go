package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/internal/sqlstore/sqlstoretest"
	"github.com/directdl/directdl/template"
	"github.com/directdl/directdl/template/sqlrepo"
)

// asDDCTL makes the test binary run as ddctl itself: TestMain then calls
// main with the binary's arguments. Tests use it for real processes.
const asDDCTL = "DDCTL_TEST_RUN_AS_DDCTL"

func TestMain(m *testing.M) {
	if os.Getenv(asDDCTL) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// ddctlProcess runs ddctl with args as a separate process (the test
// binary, see TestMain) and returns its exit code, stdout and stderr.
func ddctlProcess(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("cannot find the test binary to run as ddctl: %v", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), asDDCTL+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run ddctl %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// tpl runs ddctl template SUB -db db args... in-process.
func tpl(t *testing.T, sub, db string, args ...string) (int, string, string) {
	t.Helper()
	return ddctl(t, append([]string{"template", sub, "-db", db}, args...)...)
}

// mustTpl is tpl that fails t unless ddctl exits 0.
func mustTpl(t *testing.T, sub, db string, args ...string) (string, string) {
	t.Helper()
	code, stdout, stderr := tpl(t, sub, db, args...)
	if code != 0 {
		t.Fatalf("ddctl template %s %v: exit %d, stderr %q", sub, args, code, stderr)
	}
	return stdout, stderr
}

var idLine = regexp.MustCompile(`^[1-9][0-9]*\n$`)

// registerTpl registers a template with ddctl and returns its id, checking
// that the id is the only line on stdout.
func registerTpl(t *testing.T, db string, args ...string) template.ID {
	t.Helper()
	stdout, _ := mustTpl(t, "register", db, args...)
	if !idLine.MatchString(stdout) {
		t.Fatalf("register printed %q on stdout, want the id as its only line", stdout)
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(stdout), 10, 64)
	return template.ID(n)
}

// shown is show -json's output, decoded.
type shown struct {
	ID             int64             `json:"id"`
	UUID           string            `json:"uuid"`
	Name           string            `json:"name"`
	DisplayText    string            `json:"display_text"`
	Format         string            `json:"format"`
	Type           string            `json:"type"`
	Hypervisor     string            `json:"hypervisor"`
	URL            string            `json:"url"`
	Checksum       string            `json:"checksum"`
	DirectDownload bool              `json:"direct_download"`
	Size           int64             `json:"size"`
	PhysicalSize   int64             `json:"physical_size"`
	Owner          string            `json:"owner"`
	Created        string            `json:"created"`
	Removed        *string           `json:"removed"`
	Details        map[string]string `json:"details"`
	Zones          []int64           `json:"zones"`
	StoreRefs      []struct {
		Store       int64  `json:"store"`
		Zone        int64  `json:"zone"`
		Kind        string `json:"kind"`
		State       string `json:"state"`
		Progress    int    `json:"progress"`
		Error       string `json:"error"`
		InstallPath string `json:"install_path"`
		Size        int64  `json:"size"`
		Version     int64  `json:"version"`
	} `json:"store_refs"`
}

// decode unmarshals stdout, which must be exactly one JSON document.
func decode(t *testing.T, stdout string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not a JSON document: %v\n%s", err, stdout)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err == nil {
		t.Fatalf("stdout holds more than one JSON document:\n%s", stdout)
	}
}

func show(t *testing.T, db string, id template.ID) shown {
	t.Helper()
	stdout, _ := mustTpl(t, "show", db, "-id", fmt.Sprint(id), "-json")
	var s shown
	decode(t, stdout, &s)
	return s
}

func listIDs(t *testing.T, db string, args ...string) []int64 {
	t.Helper()
	stdout, stderr := mustTpl(t, "list", db, append(args, "-json")...)
	if stderr != "" {
		t.Errorf("list -json wrote %q on stderr, want nothing", stderr)
	}
	var ts []shown
	decode(t, stdout, &ts)
	if ts == nil {
		t.Fatalf("list -json printed %q, want an array", stdout)
	}
	ids := []int64{}
	for _, x := range ts {
		ids = append(ids, x.ID)
	}
	return ids
}

func openSQL(t *testing.T, dsn string) *sqlrepo.Repo {
	t.Helper()
	r, err := sqlrepo.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestTemplateZoneDeletesKeepDetails is seed-001 through the CLI: deleting
// a template from one zone keeps its details for the others
// (apache/cloudstack#10600); deleting its last zone removes it.
func TestTemplateZoneDeletesKeepDetails(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.sqlite")
	id := registerTpl(t, db, "-name", "seed-001", "-url", "https://mirror.example/seed.qcow2",
		"-checksum", "{SHA-256}2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
		"-detail", "UEFI=secure", "-zone", "1", "-zone", "2")
	ids := fmt.Sprint(id)

	if stdout, _ := mustTpl(t, "copy", db, "-id", ids, "-zone", "3"); stdout != "" {
		t.Errorf("copy printed %q on stdout", stdout)
	}
	if s := show(t, db, id); !slices.Equal(s.Zones, []int64{1, 2, 3}) || s.Removed != nil {
		t.Fatalf("after copy: zones %v, removed %v; want [1 2 3], not removed", s.Zones, s.Removed)
	}

	stdout, stderr := mustTpl(t, "delete", db, "-id", ids, "-zone", "2")
	if stdout != "" || !strings.Contains(stderr, "zone 2 only") {
		t.Errorf("delete -zone 2: stdout %q, stderr %q; want the zone-only message on stderr", stdout, stderr)
	}
	stdout, _ = mustTpl(t, "details", db, "-id", ids, "-json")
	var d map[string]string
	decode(t, stdout, &d)
	if !reflect.DeepEqual(d, map[string]string{"UEFI": "secure"}) {
		t.Fatalf("details after deleting zone 2: %v, want UEFI=secure (apache/cloudstack#10600)", d)
	}
	stdout, stderr = mustTpl(t, "details", db, "-id", ids)
	if stdout != "" || stderr != "UEFI=secure\n" {
		t.Errorf("details: stdout %q, stderr %q; want UEFI=secure on stderr", stdout, stderr)
	}
	if ids := listIDs(t, db, "-zone", "2"); len(ids) != 0 {
		t.Errorf("list -zone 2 after deleting zone 2: %v", ids)
	}

	_, stderr = mustTpl(t, "delete", db, "-id", ids, "-zone", "1")
	if !strings.Contains(stderr, "only") {
		t.Errorf("delete -zone 1 with zone 3 left: %q", stderr)
	}
	if s := show(t, db, id); s.Removed != nil || s.Details["UEFI"] != "secure" || !slices.Equal(s.Zones, []int64{3}) {
		t.Fatalf("with zone 3 left: removed %v, details %v, zones %v", s.Removed, s.Details, s.Zones)
	}
	_, stderr = mustTpl(t, "delete", db, "-id", ids, "-zone", "3")
	if !strings.Contains(stderr, "its last zone") {
		t.Errorf("delete of the last zone: %q, want it to say the template was removed", stderr)
	}
	s := show(t, db, id)
	if s.Removed == nil || len(s.Details) != 0 || len(s.Zones) != 0 {
		t.Fatalf("after the last zone: removed %v, details %v, zones %v; want removed, none", s.Removed, s.Details, s.Zones)
	}
	if _, err := time.Parse(time.RFC3339, *s.Removed); err != nil {
		t.Errorf("removed %q is not RFC 3339: %v", *s.Removed, err)
	}
	if ids := listIDs(t, db); len(ids) != 0 {
		t.Errorf("list after removal: %v, want none", ids)
	}
	if ids := listIDs(t, db, "-all"); !slices.Equal(ids, []int64{int64(id)}) {
		t.Errorf("list -all after removal: %v, want [%d]", ids, id)
	}
	if code, _, stderr := tpl(t, "details", db, "-id", ids); code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("details of a removed template: exit %d, %q; want 1, not found", code, stderr)
	}
}

// showKeys and storeRefKeys are the keys of show -json: ddctl's contract.
var (
	showKeys = []string{"checksum", "created", "details", "direct_download", "display_text", "format", "hypervisor",
		"id", "name", "owner", "physical_size", "removed", "size", "store_refs", "type", "url", "uuid", "zones"}
	storeRefKeys = []string{"error", "install_path", "kind", "physical_size", "progress", "size", "state", "store",
		"updated", "version", "zone"}
)

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestTemplateShowJSON(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.sqlite")
	const uuid = "0b5ad0e6-7d5f-4f4e-9a43-4d5b8f7a0c11"
	id := registerTpl(t, db, "-name", "debian-12", "-url", "https://mirror.example/d.raw", "-format", "raw",
		"-type", "routing", "-direct", "-hypervisor", "KVM", "-owner", "admin", "-uuid", uuid,
		"-display-text", "Debian 12", "-detail", "UEFI=secure", "-detail", "rootDiskController=virtio", "-zone", "7")

	r := openSQL(t, db)
	if _, err := r.CreateStoreRef(context.Background(), template.StoreRef{Template: id, Zone: 7, Store: 42,
		Kind: template.PrimaryPool, State: template.Bypassed, InstallPath: "/pool/d.raw"}); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := tpl(t, "show", db, "-id", fmt.Sprint(id), "-json")
	if code != 0 || stderr != "" {
		t.Fatalf("show -json: exit %d, stderr %q; want 0 and nothing on stderr", code, stderr)
	}
	var raw map[string]any
	decode(t, stdout, &raw)
	if got := sortedKeys(raw); !slices.Equal(got, showKeys) {
		t.Errorf("show -json keys\n got %v\nwant %v", got, showKeys)
	}
	refs, _ := raw["store_refs"].([]any)
	if len(refs) != 1 {
		t.Fatalf("store_refs = %v, want one", raw["store_refs"])
	}
	if got := sortedKeys(refs[0].(map[string]any)); !slices.Equal(got, storeRefKeys) {
		t.Errorf("store ref keys\n got %v\nwant %v", got, storeRefKeys)
	}
	if raw["removed"] != nil {
		t.Errorf("removed = %v, want null", raw["removed"])
	}

	var s shown
	decode(t, stdout, &s)
	if s.ID != int64(id) || s.UUID != uuid || s.Name != "debian-12" || s.DisplayText != "Debian 12" ||
		s.Format != "RAW" || s.Type != "ROUTING" || !s.DirectDownload || s.Hypervisor != "KVM" || s.Owner != "admin" ||
		s.URL != "https://mirror.example/d.raw" || !slices.Equal(s.Zones, []int64{7}) ||
		!reflect.DeepEqual(s.Details, map[string]string{"UEFI": "secure", "rootDiskController": "virtio"}) {
		t.Errorf("show -json: %+v", s)
	}
	if created, err := time.Parse(time.RFC3339, s.Created); err != nil || time.Since(created) > time.Hour || time.Since(created) < 0 {
		t.Errorf("created %q: %v", s.Created, err)
	}
	ref := s.StoreRefs[0]
	if ref.Store != 42 || ref.Zone != 7 || ref.Kind != "primary" || ref.State != "BYPASSED" || ref.InstallPath != "/pool/d.raw" || ref.Version != 1 {
		t.Errorf("store ref: %+v", ref)
	}

	// Without -json: human output on stderr only.
	code, stdout, stderr = tpl(t, "show", db, "-id", fmt.Sprint(id))
	if code != 0 || stdout != "" || !strings.Contains(stderr, "UEFI=secure") || !strings.Contains(stderr, "store 42 (primary) in zone 7: BYPASSED") {
		t.Errorf("show: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestTemplateList(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.sqlite")
	if ids := listIDs(t, db); len(ids) != 0 {
		t.Fatalf("list of a new database: %v", ids)
	}
	a := int64(registerTpl(t, db, "-name", "Alpha", "-url", "https://m.example/a", "-zone", "1"))
	b := int64(registerTpl(t, db, "-name", "beta", "-url", "https://m.example/b", "-zone", "2"))
	c := int64(registerTpl(t, db, "-name", "alphabet", "-url", "https://m.example/c", "-zone", "1", "-zone", "2"))
	for _, tc := range []struct {
		args []string
		want []int64
	}{
		{nil, []int64{a, b, c}},
		{[]string{"-zone", "1"}, []int64{a, c}},
		{[]string{"-zone", "2"}, []int64{b, c}},
		{[]string{"-zone", "3"}, []int64{}},
		{[]string{"-name", "ALPHA"}, []int64{a, c}},
		{[]string{"-zone", "2", "-name", "alpha"}, []int64{c}},
	} {
		if got := listIDs(t, db, tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("list %v: %v, want %v", tc.args, got, tc.want)
		}
	}
	code, stdout, stderr := tpl(t, "list", db, "-zone", "2")
	if code != 0 || stdout != "" || !strings.Contains(stderr, "alphabet") || strings.Contains(stderr, "Alpha ") {
		t.Errorf("list -zone 2: exit %d, stdout %q, stderr %q; want the table on stderr", code, stdout, stderr)
	}

	// More than one page of List.
	r := openSQL(t, db)
	n := template.MaxLimit + 5
	for i := range n {
		if _, err := r.Register(context.Background(), template.NewTemplate{Name: fmt.Sprintf("bulk-%d", i)}, 9); err != nil {
			t.Fatal(err)
		}
	}
	if got := listIDs(t, db, "-zone", "9"); len(got) != n || !slices.IsSorted(got) {
		t.Errorf("list -zone 9 of %d templates: %d, sorted %v", n, len(got), slices.IsSorted(got))
	}
}

func TestTemplateDetailsChanges(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.sqlite")
	id := fmt.Sprint(registerTpl(t, db, "-name", "n", "-url", "https://m.example/n", "-detail", "UEFI=secure", "-detail", "a=1", "-zone", "1"))
	stdout, _ := mustTpl(t, "details", db, "-id", id, "-set", "a=2", "-set", "b=x=y", "-remove", "UEFI", "-json")
	var d map[string]string
	decode(t, stdout, &d)
	if want := map[string]string{"a": "2", "b": "x=y"}; !reflect.DeepEqual(d, want) {
		t.Errorf("details after -set and -remove: %v, want %v", d, want)
	}
	code, stdout, stderr := tpl(t, "details", db, "-id", id, "-set", "c=3", "-remove", "UEFI")
	if code != 1 || stdout != "" || !strings.Contains(stderr, `no detail "UEFI"`) {
		t.Errorf("removing an absent detail: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, _ = mustTpl(t, "details", db, "-id", id, "-json")
	decode(t, stdout, &d)
	if _, ok := d["c"]; ok {
		t.Errorf("a failed details command set c: %v", d)
	}
	mustTpl(t, "details", db, "-id", id, "-remove", "a", "-remove", "b")
	stdout, _ = mustTpl(t, "details", db, "-id", id, "-json")
	if strings.TrimSpace(stdout) != "{}" {
		t.Errorf("no details: -json printed %q, want {}", stdout)
	}
}

func TestTemplateDeleteInUse(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.sqlite")
	id := registerTpl(t, db, "-name", "n", "-url", "https://m.example/n", "-zone", "1", "-zone", "2")
	r := openSQL(t, db)
	if err := r.AddUsage(context.Background(), template.Usage{Template: id, Zone: 1, Volume: "vol-7f3a"}); err != nil {
		t.Fatal(err)
	}
	ids := fmt.Sprint(id)
	for _, args := range [][]string{{"-zone", "1"}, nil} {
		code, stdout, stderr := tpl(t, "delete", db, append([]string{"-id", ids}, args...)...)
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "ddctl: ") || !strings.Contains(stderr, "vol-7f3a") ||
			!strings.Contains(stderr, "-force") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("delete %v of a template in use: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	mustTpl(t, "delete", db, "-id", ids, "-zone", "2")
	_, stderr := mustTpl(t, "delete", db, "-id", ids, "-zone", "1", "-force")
	if !strings.Contains(stderr, "its last zone") {
		t.Errorf("delete -force of the last zone: %q", stderr)
	}

	// delete without -zone: every zone at once.
	id2 := registerTpl(t, db, "-name", "m", "-url", "https://m.example/m", "-zone", "1", "-zone", "2")
	_, stderr = mustTpl(t, "delete", db, "-id", fmt.Sprint(id2))
	if !strings.Contains(stderr, "every zone") {
		t.Errorf("delete everywhere: %q", stderr)
	}
	if s := show(t, db, id2); s.Removed == nil {
		t.Errorf("delete everywhere left the template: %+v", s)
	}
}

func TestTemplateErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "t.sqlite")
	id := fmt.Sprint(registerTpl(t, db, "-name", "n", "-url", "https://m.example/n", "-zone", "1"))
	reg := func(args ...string) []string {
		return append([]string{"template", "register", "-db", db, "-name", "x", "-url", "https://m.example/x", "-zone", "1"}, args...)
	}
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"group-usage", []string{"template"}, 2, "ddctl template register"},
		{"no-db", []string{"template", "list"}, 2, "-db DSN required"},
		{"no-db-register", []string{"template", "register", "-name", "x", "-url", "https://m.example/x", "-zone", "1"}, 2, "-db DSN required"},
		{"no-name", []string{"template", "register", "-db", db, "-url", "https://m.example/x", "-zone", "1"}, 2, "-name N required"},
		{"no-url", []string{"template", "register", "-db", db, "-name", "x", "-zone", "1"}, 2, "-url U required"},
		{"no-zone", []string{"template", "register", "-db", db, "-name", "x", "-url", "https://m.example/x"}, 2, "-zone Z required"},
		{"relative-url", reg("-url", "x.qcow2"), 2, "absolute URL"},
		{"detail-no-equals", reg("-detail", "UEFI"), 2, `"UEFI" is not KEY=VALUE`},
		{"detail-empty-key", reg("-detail", "=v"), 2, "detail keys are 1 to 255 bytes"},
		{"detail-twice", reg("-detail", "a=1", "-detail", "a=2"), 2, `detail "a" given twice`},
		{"bad-format", reg("-format", "qcow3"), 2, `-format "qcow3": want one of QCOW2`},
		{"bad-type", reg("-type", "admin"), 2, `-type "admin": want one of USER`},
		{"bad-checksum", reg("-checksum", "{SHA-256}xyz"), 2, "-checksum"},
		{"zone-name", reg("-zone", "zone-east"), 2, "zones are numeric ids in this version"},
		{"zone-zero", []string{"template", "list", "-db", db, "-zone", "0"}, 2, "zone ids start at 1"},
		{"zone-twice", []string{"template", "copy", "-db", db, "-id", id, "-zone", "2", "-zone", "3"}, 2, "-zone given twice"},
		{"bad-id", []string{"template", "show", "-db", db, "-id", "abc"}, 2, "template ids are positive integers"},
		{"no-id", []string{"template", "delete", "-db", db, "-zone", "1"}, 2, "-id ID required"},
		{"copy-no-zone", []string{"template", "copy", "-db", db, "-id", id}, 2, "-zone Z required"},
		{"positional", []string{"template", "list", "-db", db, "extra"}, 2, `unexpected argument "extra"`},
		{"set-and-remove", []string{"template", "details", "-db", db, "-id", id, "-set", "a=1", "-remove", "a"}, 2, "both set and removed"},
		{"unknown-flag", []string{"template", "list", "-db", db, "-zones", "1"}, 2, "flag provided but not defined"},
		{"show-missing", []string{"template", "show", "-db", db, "-id", "99", "-json"}, 1, "not found: template 99"},
		{"copy-missing", []string{"template", "copy", "-db", db, "-id", "99", "-zone", "1"}, 1, "not found"},
		{"delete-missing", []string{"template", "delete", "-db", db, "-id", "99"}, 1, "not found"},
		{"delete-other-zone", []string{"template", "delete", "-db", db, "-id", id, "-zone", "5"}, 1, "zone 5 does not offer template " + id},
		{"details-missing", []string{"template", "details", "-db", db, "-id", "99"}, 1, "ddctl template list -db"},
		{"db-dir-missing", []string{"template", "list", "-db", filepath.Join(dir, "no", "such", "dir", "t.sqlite")}, 1, "t.sqlite"},
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
			if c.name != "group-usage" && (!strings.HasPrefix(stderr, "ddctl: ") || strings.Count(stderr, "\n") != 1) {
				t.Errorf("stderr %q is not one line starting with ddctl:", stderr)
			}
		})
	}
	if ids := listIDs(t, db); len(ids) != 1 {
		t.Errorf("refused commands changed the database: templates %v", ids)
	}
}

// TestTemplateSeveralProcesses runs ddctl commands at once on one new
// SQLite file: in-process invocations, each opening the file as a process
// would, and real processes. Every one must succeed, ids must not
// collide, and of the deletes of every zone exactly one removes the
// template.
func TestTemplateSeveralProcesses(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.sqlite")
	const zones = 12 // half deleted in-process, half by processes

	type result struct {
		code           int
		stdout, stderr string
	}
	runAll := func(n int, f func(i int) (int, string, string)) []result {
		res := make([]result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i].code, res[i].stdout, res[i].stderr = f(i)
			}()
		}
		wg.Wait()
		return res
	}

	// Registers on a file that does not exist yet: every invocation
	// creates or migrates the schema.
	zoneArgs := []string{}
	for z := 1; z <= zones; z++ {
		zoneArgs = append(zoneArgs, "-zone", strconv.Itoa(z))
	}
	regArgs := func(i int) []string {
		return append([]string{"template", "register", "-db", db, "-name", fmt.Sprintf("t%d", i), "-url", "https://m.example/t",
			"-detail", "UEFI=secure"}, zoneArgs...)
	}
	regs := runAll(4, func(i int) (int, string, string) {
		if i%2 == 0 {
			return ddctlProcess(t, regArgs(i)...)
		}
		return ddctl(t, regArgs(i)...)
	})
	seen := map[string]bool{}
	for i, r := range regs {
		if r.code != 0 || !idLine.MatchString(r.stdout) || seen[r.stdout] {
			t.Fatalf("register %d: exit %d, stdout %q, stderr %q; want a new id line", i, r.code, r.stdout, r.stderr)
		}
		seen[r.stdout] = true
	}
	id := strings.TrimSpace(regs[0].stdout)

	dels := runAll(zones, func(i int) (int, string, string) {
		args := []string{"template", "delete", "-db", db, "-id", id, "-zone", strconv.Itoa(i + 1)}
		if i%2 == 0 {
			return ddctlProcess(t, args...)
		}
		return ddctl(t, args...)
	})
	removed := 0
	for i, r := range dels {
		if r.code != 0 || r.stdout != "" {
			t.Errorf("delete -zone %d: exit %d, stdout %q, stderr %q", i+1, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stderr, "its last zone") {
			removed++
		}
	}
	if removed != 1 {
		t.Errorf("%d deletes said they removed the template, want exactly 1", removed)
	}
	n, _ := strconv.ParseInt(id, 10, 64)
	if s := show(t, db, template.ID(n)); s.Removed == nil || len(s.Details) != 0 {
		t.Errorf("after deleting every zone: removed %v, details %v", s.Removed, s.Details)
	}
	if ids := listIDs(t, db, "-zone", "1"); len(ids) != len(regs)-1 {
		t.Errorf("list -zone 1: %v, want the %d other templates", ids, len(regs)-1)
	}
}

// TestTemplatePostgres is one round trip against the PostgreSQL server of
// DIRECTDL_TEST_POSTGRES, in a schema of its own; without the variable it
// skips, or fails under CI.
func TestTemplatePostgres(t *testing.T) {
	t.Parallel()
	db := sqlstoretest.PostgresDSN(t)
	id := registerTpl(t, db, "-name", "pg", "-url", "https://m.example/pg", "-detail", "UEFI=secure", "-zone", "1", "-zone", "2")
	ids := fmt.Sprint(id)
	if got := listIDs(t, db, "-zone", "2"); !slices.Equal(got, []int64{int64(id)}) {
		t.Errorf("list -zone 2: %v", got)
	}
	mustTpl(t, "delete", db, "-id", ids, "-zone", "1")
	if s := show(t, db, id); s.Details["UEFI"] != "secure" || !slices.Equal(s.Zones, []int64{2}) {
		t.Errorf("after deleting zone 1: %+v", s)
	}
	_, stderr := mustTpl(t, "delete", db, "-id", ids, "-zone", "2")
	if !strings.Contains(stderr, "its last zone") {
		t.Errorf("delete of the last zone: %q", stderr)
	}
	if got := listIDs(t, db); len(got) != 0 {
		t.Errorf("list after removal: %v", got)
	}
}
