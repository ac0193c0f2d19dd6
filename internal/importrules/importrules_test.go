package importrules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// rule is what the packages in one tree of the module may depend on.
type rule struct {
	// tree is the module-relative path of the packages the rule covers: that
	// package and every package below it that has no row of its own. The
	// empty tree is the module's root package.
	tree string
	// why is the design rule, quoted in failure messages.
	why string
	// allowModule lists other trees of the module, besides the package's own
	// top-level tree and internal/..., that the package may depend on.
	allowModule []string
	// anyModule allows every package of the module except examples/...
	// (examples themselves set it and are exempt from that rule).
	anyModule bool
	// stdlibOnly forbids every package outside the standard library and
	// this module.
	stdlibOnly bool
	// denyStd lists standard-library trees the package must not reach.
	denyStd []string
	// goGetter allows github.com/hashicorp/go-getter.
	goGetter bool
	// noImports forbids importing anything at all.
	noImports bool
}

// networking is every standard-library package that talks to the network.
var networking = []string{"net", "crypto/tls"}

// goGetterTree is the module that only download/getter may use; the prefix
// also covers its major versions (go-getter/v2).
const goGetterTree = "github.com/hashicorp/go-getter"

// rules covers every top-level package in the design, including the ones not
// written yet, so they are enforced from their first commit.
var rules = []rule{
	{
		tree:      "",
		why:       "the root package is documentation only and imports nothing",
		noImports: true,
	},
	{
		tree:       "qcow2",
		why:        "qcow2 uses the standard library only and no networking package",
		stdlibOnly: true,
		denyStd:    networking,
	},
	{tree: "download", why: "download imports no other top-level package and not go-getter"},
	{tree: "download/metalink", why: "download/metalink imports no other top-level package and not go-getter"},
	{tree: "download/nfs", why: "download/nfs imports no other top-level package and not go-getter"},
	{tree: "download/getter", why: "download/getter imports no other top-level package", goGetter: true},
	{tree: "certstore", why: "certstore imports no other top-level package"},
	{tree: "template", why: "template imports no other top-level package"},
	{tree: "template/templatetest", why: "template/templatetest imports no other top-level package"},
	{
		tree:        "migrate",
		why:         "migrate may import qcow2 and internal packages only; it declares the interfaces it needs from template and download",
		allowModule: []string{"qcow2"},
	},
	{tree: "internal", why: "internal packages import no top-level package"},
	{tree: "examples", why: "examples may import anything", anyModule: true, goGetter: true},
	{tree: "bench", why: "benchmark programs may import any package of the module but examples, and not go-getter (bench/gogetter is a module of its own)", anyModule: true},
}

// listedPackage is the part of a `go list -json` package the rules read.
type listedPackage struct {
	ImportPath string
	Standard   bool
	Module     *struct {
		Path string
		Main bool
	}
	Imports []string
	Deps    []string
	Error   *struct{ Err string }
}

// violation is one forbidden dependency of one package of the module.
type violation struct {
	rule  string   // tree of the rule broken, or the package's own path when it has no rule
	pkg   string   // module-relative path of the package that breaks it
	dep   string   // forbidden package, module-relative when in the module
	why   string   // the rule, for the message
	chain []string // imports from pkg to dep, module-relative where possible
}

func (v violation) String() string {
	if v.dep == "" {
		return fmt.Sprintf("%s: %s", display(v.pkg), v.why)
	}
	return fmt.Sprintf("%s must not depend on %s (%s): %s",
		display(v.pkg), display(v.dep), v.why, strings.Join(mapDisplay(v.chain), " -> "))
}

func display(rel string) string {
	if rel == "" {
		return "the root package"
	}
	return rel
}

func mapDisplay(chain []string) []string {
	out := make([]string, len(chain))
	for i, p := range chain {
		if p == "" {
			p = "directdl"
		}
		out[i] = p
	}
	return out
}

// under reports whether path is tree or below it.
func under(path, tree string) bool {
	return path == tree || strings.HasPrefix(path, tree+"/")
}

func topLevel(rel string) string {
	top, _, _ := strings.Cut(rel, "/")
	return top
}

// ruleFor returns the row with the longest tree covering rel.
func ruleFor(rel string) (rule, bool) {
	best, found := rule{}, false
	for _, r := range rules {
		if rel == r.tree || (r.tree != "" && under(rel, r.tree)) {
			if !found || len(r.tree) > len(best.tree) {
				best, found = r, true
			}
		}
	}
	return best, found
}

// check applies the rules to the packages of the main module found in pkgs,
// which must hold the whole dependency graph (`go list -deps`).
func check(pkgs []listedPackage) []violation {
	byPath := make(map[string]*listedPackage, len(pkgs))
	modPath := ""
	for i := range pkgs {
		p := &pkgs[i]
		byPath[p.ImportPath] = p
		if p.Module != nil && p.Module.Main {
			modPath = p.Module.Path
		}
	}
	// rel returns a module-relative path and whether path is in the module.
	rel := func(path string) (string, bool) {
		if path == modPath {
			return "", true
		}
		if r, ok := strings.CutPrefix(path, modPath+"/"); ok {
			return r, true
		}
		return path, false
	}
	show := func(path string) string {
		r, _ := rel(path)
		return r
	}

	var out []violation
	for _, p := range pkgs {
		if p.Module == nil || !p.Module.Main {
			continue
		}
		self, _ := rel(p.ImportPath)
		r, ok := ruleFor(self)
		if !ok {
			top := topLevel(self)
			out = append(out, violation{
				rule: top, pkg: self,
				why: "no import rule covers it: add a row for " + top + " to rules in internal/importrules",
			})
			// Hold it to the rule most top-level packages share meanwhile.
			r = rule{tree: top, why: "top-level packages import no other top-level package"}
		}
		if r.noImports {
			for _, imp := range p.Imports {
				out = append(out, violation{
					rule: r.tree, pkg: self, dep: show(imp), why: r.why,
					chain: []string{self, show(imp)},
				})
			}
			continue
		}

		forbidden := map[string]string{} // dep import path -> reason
		for _, d := range p.Deps {
			if d == "C" {
				continue
			}
			if why := forbids(r, self, d, rel, byPath[d]); why != "" {
				forbidden[d] = why
			}
		}
		for _, d := range sortedKeys(forbidden) {
			// Report only the first forbidden package on a path: net/http
			// is reported, not the net it brings along.
			chain := path(p.ImportPath, d, byPath, forbidden)
			if chain == nil {
				continue
			}
			shown := make([]string, len(chain))
			for i, c := range chain {
				shown[i] = show(c)
			}
			out = append(out, violation{
				rule: r.tree, pkg: self, dep: show(d), why: forbidden[d], chain: shown,
			})
		}
	}
	return out
}

// forbids returns why the package self, held to r, must not depend on dep,
// or "" when it may.
func forbids(r rule, self, dep string, rel func(string) (string, bool), info *listedPackage) string {
	if d, inModule := rel(dep); inModule {
		switch {
		case under(d, "examples") && !under(self, "examples"):
			return "nothing outside examples/ imports examples/..."
		case r.anyModule:
			return ""
		case d != "" && topLevel(d) == topLevel(self) && self != "":
			return ""
		case under(d, "internal"):
			return ""
		}
		for _, t := range r.allowModule {
			if under(d, t) {
				return ""
			}
		}
		return r.why
	}
	if info != nil && info.Standard {
		for _, t := range r.denyStd {
			if under(dep, t) {
				return r.why
			}
		}
		return ""
	}
	if r.stdlibOnly {
		return r.why
	}
	if under(dep, goGetterTree) && !r.goGetter {
		return "only download/getter may use go-getter"
	}
	return ""
}

// path returns the shortest import chain from -> ... -> to whose
// intermediate packages are not forbidden, or nil when there is none.
func path(from, to string, byPath map[string]*listedPackage, forbidden map[string]string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		p := byPath[cur]
		if p == nil {
			continue
		}
		for _, imp := range p.Imports {
			if _, seen := prev[imp]; seen {
				continue
			}
			prev[imp] = cur
			if imp == to {
				var chain []string
				for n := to; n != ""; n = prev[n] {
					chain = append(chain, n)
				}
				slices.Reverse(chain)
				return chain
			}
			if _, bad := forbidden[imp]; !bad {
				queue = append(queue, imp)
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// loadGraph lists every package of the module with its dependencies, once
// for all tests.
var loadGraph = sync.OnceValues(func() ([]listedPackage, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == "/dev/null" {
		return nil, errors.New("not inside a module: go env GOMOD is empty")
	}
	cmd := exec.Command("go", "list", "-e", "-deps", "-test=false",
		"-json=ImportPath,Standard,Module,Imports,Deps,Error", "./...")
	cmd.Dir = filepath.Dir(mod)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list in %s: %w\n%s", cmd.Dir, err, stderr.Bytes())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(stdout))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decoding go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
})

func TestImportRules(t *testing.T) {
	pkgs, err := loadGraph()
	if err != nil {
		t.Fatal(err)
	}
	var modPath string
	for _, p := range pkgs {
		if p.Error != nil {
			t.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		if p.Module != nil && p.Module.Main {
			modPath = p.Module.Path
		}
	}
	if modPath == "" {
		t.Fatal("go list listed no package of the main module")
	}

	// Which rows have packages today: the others are planned.
	covered := map[string][]string{}
	for _, p := range pkgs {
		if p.Module == nil || !p.Module.Main {
			continue
		}
		self := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, modPath), "/")
		r, ok := ruleFor(self)
		if !ok {
			r.tree = topLevel(self)
		}
		covered[r.tree] = append(covered[r.tree], self)
	}
	byRule := map[string][]violation{}
	for _, v := range check(pkgs) {
		byRule[v.rule] = append(byRule[v.rule], v)
	}

	trees := make([]string, 0, len(rules))
	for _, r := range rules {
		trees = append(trees, r.tree)
	}
	for tree := range covered {
		if !slices.Contains(trees, tree) {
			trees = append(trees, tree)
		}
	}
	for _, tree := range trees {
		name := tree
		if name == "" {
			name = "root"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if len(covered[tree]) == 0 {
				if tree == "" {
					t.Skip("the root package does not exist yet")
				}
				if tree == getterTree {
					t.Skip("download/getter is a module of its own; TestNoGoGetter checks that this module does not reach it")
				}
				t.Skipf("no package under %s yet", tree)
			}
			for _, v := range byRule[tree] {
				t.Error(v)
			}
		})
	}
}

// getterTree is the go-getter adapter. It is a nested module, so that
// this module does not depend on go-getter at all; its own test checks
// that it does depend on go-getter, so that TestNoGoGetter is not vacuous.
const getterTree = "download/getter"

// TestNoGoGetter proves from `go list -deps` that no package of this
// module, the examples included, reaches go-getter (or anything of the
// adapter's module), and that this module does not even require it:
// programs built from this module never link go-getter's ~800 packages.
func TestNoGoGetter(t *testing.T) {
	pkgs, err := loadGraph()
	if err != nil {
		t.Fatal(err)
	}
	modPath := ""
	for _, p := range pkgs {
		if p.Module != nil && p.Module.Main {
			modPath = p.Module.Path
		}
	}
	if modPath == "" {
		t.Fatal("go list listed no package of the main module")
	}
	mainPkgs := 0
	seenDDCtl := false
	for _, p := range pkgs {
		if p.Module == nil || !p.Module.Main {
			continue
		}
		mainPkgs++
		if p.ImportPath == modPath+"/examples/ddctl" {
			seenDDCtl = true
		}
		for _, d := range p.Deps {
			if under(d, goGetterTree) || under(d, modPath+"/"+getterTree) {
				t.Errorf("%s depends on %s", p.ImportPath, d)
			}
		}
	}
	// Packages outside the main module are listed too: none may be
	// go-getter, whoever imports it.
	for _, p := range pkgs {
		if under(p.ImportPath, goGetterTree) {
			t.Errorf("go list -deps lists %s", p.ImportPath)
		}
		if p.Module != nil && under(p.Module.Path, goGetterTree) {
			t.Errorf("go list -deps lists %s, of module %s", p.ImportPath, p.Module.Path)
		}
	}
	if !seenDDCtl {
		t.Errorf("go list did not list %s/examples/ddctl, so the check did not cover it", modPath)
	}
	if mainPkgs < 2 {
		t.Errorf("go list listed %d packages of the main module; the check covered too little", mainPkgs)
	}

	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Path}}", "all")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m all: %v", err)
	}
	for _, m := range strings.Fields(string(out)) {
		if under(m, goGetterTree) || m == modPath+"/"+getterTree {
			t.Errorf("the module graph requires %s: only the download/getter module may", m)
		}
	}
}

// edges describes a fabricated module: each package and what it imports.
// Paths with a dot in their first element are third-party, paths under
// example.com/m are the module, and the rest are standard library.
type edges map[string][]string

const fakeModule = "example.com/m"

func fabricate(e edges) []listedPackage {
	all := map[string]bool{}
	for p, imps := range e {
		all[p] = true
		for _, i := range imps {
			all[i] = true
		}
	}
	var walk func(p string, seen map[string]bool)
	walk = func(p string, seen map[string]bool) {
		for _, i := range e[p] {
			if !seen[i] {
				seen[i] = true
				walk(i, seen)
			}
		}
	}
	var pkgs []listedPackage
	for p := range all {
		lp := listedPackage{ImportPath: p, Imports: e[p]}
		seen := map[string]bool{}
		walk(p, seen)
		for d := range seen {
			lp.Deps = append(lp.Deps, d)
		}
		slices.Sort(lp.Deps)
		switch {
		case under(p, fakeModule):
			lp.Module = &struct {
				Path string
				Main bool
			}{Path: fakeModule, Main: true}
		case !strings.Contains(topLevel(p), "."):
			lp.Standard = true
		}
		pkgs = append(pkgs, lp)
	}
	return pkgs
}

// TestCheck proves that check flags each kind of violation, with the chain
// that leads to it, and passes a graph that keeps the rules.
func TestCheck(t *testing.T) {
	t.Parallel()
	const m = fakeModule
	tests := []struct {
		name  string
		graph edges
		want  []string // violation messages
	}{
		{
			name: "clean",
			graph: edges{
				m:                            nil,
				m + "/qcow2":                 {"io", m + "/internal/atomicfile"},
				m + "/internal/atomicfile":   {"os"},
				m + "/download":              {"net/http", m + "/internal/atomicfile", m + "/download/metalink", "golang.org/x/sync/errgroup"},
				m + "/download/metalink":     {"encoding/xml"},
				m + "/download/getter":       {m + "/download", goGetterTree},
				m + "/certstore":             {"crypto/tls", "github.com/pavlo-v-chernykh/keystore-go/v4"},
				m + "/template":              {"database/sql"},
				m + "/template/templatetest": {m + "/template", "testing"},
				m + "/migrate":               {m + "/qcow2", m + "/internal/atomicfile"},
				m + "/examples/ddctl":        {m + "/download/getter", m + "/migrate", m + "/template", m + "/certstore", m + "/examples/internal/ui"},
				m + "/examples/internal/ui":  {"fmt"},
				"net/http":                   {"net", "crypto/tls"},
				"crypto/tls":                 {"net"},
				goGetterTree:                 {"net/http", "github.com/aws/aws-sdk-go"},
			},
		},
		{
			name: "qcow2 reaches net through an internal package",
			graph: edges{
				m + "/qcow2":          {m + "/internal/probe"},
				m + "/internal/probe": {"net"},
			},
			want: []string{
				"qcow2 must not depend on net (qcow2 uses the standard library only and no networking package): qcow2 -> internal/probe -> net",
			},
		},
		{
			name: "qcow2 imports net/http: reported once, not for each package it brings",
			graph: edges{
				m + "/qcow2": {"net/http"},
				"net/http":   {"net", "crypto/tls"},
				"crypto/tls": {"net"},
			},
			want: []string{
				"qcow2 must not depend on net/http (qcow2 uses the standard library only and no networking package): qcow2 -> net/http",
			},
		},
		{
			name: "qcow2 imports a third-party module",
			graph: edges{
				m + "/qcow2":             {"github.com/klauspost/compress/zstd"},
				m + "/qcow2/internal/l2": {"io"},
			},
			want: []string{
				"qcow2 must not depend on github.com/klauspost/compress/zstd (qcow2 uses the standard library only and no networking package): qcow2 -> github.com/klauspost/compress/zstd",
			},
		},
		{
			name: "download reaches go-getter through download/getter",
			graph: edges{
				m + "/download":        {m + "/download/getter"},
				m + "/download/getter": {goGetterTree},
				goGetterTree:           {"net/http"},
			},
			want: []string{
				"download must not depend on github.com/hashicorp/go-getter (only download/getter may use go-getter): download -> download/getter -> github.com/hashicorp/go-getter",
			},
		},
		{
			name: "download/nfs imports go-getter v2",
			graph: edges{
				m + "/download/nfs": {goGetterTree + "/v2"},
			},
			want: []string{
				"download/nfs must not depend on github.com/hashicorp/go-getter/v2 (only download/getter may use go-getter): download/nfs -> github.com/hashicorp/go-getter/v2",
			},
		},
		{
			name: "migrate imports template",
			graph: edges{
				m + "/migrate":  {m + "/qcow2", m + "/template"},
				m + "/qcow2":    {"io"},
				m + "/template": {"database/sql"},
			},
			want: []string{
				"migrate must not depend on template (migrate may import qcow2 and internal packages only; it declares the interfaces it needs from template and download): migrate -> template",
			},
		},
		{
			name: "template imports certstore",
			graph: edges{
				m + "/template/templatetest": {m + "/template"},
				m + "/template":              {m + "/certstore"},
				m + "/certstore":             nil,
			},
			want: []string{
				"template must not depend on certstore (template imports no other top-level package): template -> certstore",
				"template/templatetest must not depend on certstore (template/templatetest imports no other top-level package): template/templatetest -> template -> certstore",
			},
		},
		{
			name: "certstore imports an example",
			graph: edges{
				m + "/certstore":         {m + "/examples/ddctl/ui"},
				m + "/examples/ddctl/ui": nil,
			},
			want: []string{
				"certstore must not depend on examples/ddctl/ui (nothing outside examples/ imports examples/...): certstore -> examples/ddctl/ui",
			},
		},
		{
			name: "internal package imports a top-level package",
			graph: edges{
				m + "/internal/netguard": {m + "/download"},
				m + "/download":          nil,
			},
			want: []string{
				"internal/netguard must not depend on download (internal packages import no top-level package): internal/netguard -> download",
			},
		},
		{
			name: "root package imports something",
			graph: edges{
				m: {"fmt"},
			},
			want: []string{
				"the root package must not depend on fmt (the root package is documentation only and imports nothing): directdl -> fmt",
			},
		},
		{
			name: "top-level package with no rule",
			graph: edges{
				m + "/cache":    {m + "/download"},
				m + "/download": nil,
			},
			want: []string{
				"cache: no import rule covers it: add a row for cache to rules in internal/importrules",
				"cache must not depend on download (top-level packages import no other top-level package): cache -> download",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, v := range check(fabricate(tt.graph)) {
				got = append(got, v.String())
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("check found:\n\t%s\nwant:\n\t%s",
					strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
			}
		})
	}
}

// TestRulesCoverDesign keeps the table in step with the packages the design
// names, so a package added later is checked from its first commit.
func TestRulesCoverDesign(t *testing.T) {
	t.Parallel()
	for _, tree := range []string{
		"", "qcow2", "download", "download/metalink", "download/nfs", "download/getter",
		"certstore", "template", "template/templatetest", "migrate", "internal", "examples",
	} {
		r, ok := ruleFor(tree)
		if !ok || r.tree != tree {
			t.Errorf("rules has no row for %s", display(tree))
		}
	}
}
