package doccheck

import (
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pkgFiles is one package directory's parsed files.
type pkgFiles struct {
	dir     string      // slash-separated, relative to the repository root; "" for the root
	library bool        // outside internal/: exported names and Examples are checked
	src     []*ast.File // non-test files
	tests   []*ast.File // _test.go files, both the package and its _test package
}

// problem is one gap, printed as "file:line: message".
type problem struct {
	pos token.Position
	msg string
}

func (p problem) String() string {
	return fmt.Sprintf("%s:%d: %s", p.pos.Filename, p.pos.Line, p.msg)
}

// moduleRoot walks up from the working directory to the directory holding
// go.mod, so the test works from any package directory it is run in.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// skipDir reports whether a directory (relative, slash-separated) and
// everything below it is outside the rules.
func skipDir(rel string) bool {
	base := pathBase(rel)
	if base == "testdata" || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") {
		return true
	}
	first, _, _ := strings.Cut(rel, "/")
	return first == "examples" || first == "bench"
}

func pathBase(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[i+1:]
	}
	return rel
}

// isInternal reports whether the directory is an internal package, which
// needs only a package comment.
func isInternal(rel string) bool {
	return rel == "internal" || strings.HasPrefix(rel, "internal/") ||
		strings.Contains(rel, "/internal/") || strings.HasSuffix(rel, "/internal")
}

// loadTree parses every package directory under root.
func loadTree(t *testing.T, fset *token.FileSet, root string) []*pkgFiles {
	t.Helper()
	byDir := map[string]*pkgFiles{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		if d.IsDir() {
			if rel != "" && skipDir(rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, rel, readFile(t, path), parser.ParseComments)
		if err != nil {
			return err
		}
		if ast.IsGenerated(f) {
			return nil
		}
		dir := ""
		if i := strings.LastIndexByte(rel, '/'); i >= 0 {
			dir = rel[:i]
		}
		p := byDir[dir]
		if p == nil {
			p = &pkgFiles{dir: dir, library: !isInternal(dir)}
			byDir[dir] = p
		}
		if strings.HasSuffix(rel, "_test.go") {
			p.tests = append(p.tests, f)
		} else {
			p.src = append(p.src, f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []*pkgFiles
	for _, p := range byDir {
		if len(p.src) > 0 { // a directory of tests only is no package
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *pkgFiles) int { return strings.Compare(a.dir, b.dir) })
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// check returns every gap in one package.
func check(fset *token.FileSet, p *pkgFiles) []problem {
	var out []problem
	name := "the root package"
	if p.dir != "" {
		name = p.dir
	}
	hasPkgDoc := false
	for _, f := range p.src {
		if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
			hasPkgDoc = true
		}
	}
	if !hasPkgDoc {
		out = append(out, problem{fset.Position(p.src[0].Package),
			fmt.Sprintf("package %s (%s) has no package comment; add a doc.go that says what it is for", p.src[0].Name.Name, name)})
	}
	if !p.library {
		return out
	}
	exports := 0
	needsT := true // every exported func takes a *testing.T or testing.TB
	for _, f := range p.src {
		for _, d := range f.Decls {
			missing, n := undocumented(fset, d)
			exports += n
			out = append(out, missing...)
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.IsExported() && !takesTesting(fd) {
				needsT = false
			}
		}
	}
	if exports == 0 {
		return out
	}
	hasAny, runnable := examples(p.tests)
	switch {
	case !hasAny:
		out = append(out, problem{fset.Position(p.src[0].Package),
			fmt.Sprintf("package %s has no Example function in its _test.go files; add a runnable one (func ExampleXxx with an // Output: comment)", name)})
	case !runnable && !needsT:
		out = append(out, problem{fset.Position(p.src[0].Package),
			fmt.Sprintf("package %s has no runnable Example function (func ExampleXxx with an // Output: comment) in its _test.go files", name)})
	}
	return out
}

// takesTesting reports whether a func has a *testing.T or testing.TB
// parameter, which an Example has no way to pass.
func takesTesting(fd *ast.FuncDecl) bool {
	for _, f := range fd.Type.Params.List {
		e := f.Type
		if s, ok := e.(*ast.StarExpr); ok {
			e = s.X
		}
		if sel, ok := e.(*ast.SelectorExpr); ok {
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "testing" && (sel.Sel.Name == "T" || sel.Sel.Name == "TB") {
				return true
			}
		}
	}
	return false
}

// undocumented returns the exported names declared by d that have no doc
// comment, and how many exported names d declares.
func undocumented(fset *token.FileSet, d ast.Decl) ([]problem, int) {
	var out []problem
	switch d := d.(type) {
	case *ast.FuncDecl:
		if !d.Name.IsExported() {
			return nil, 0
		}
		what := "func " + d.Name.Name
		if d.Recv != nil {
			recv := receiverType(d.Recv)
			if !token.IsExported(recv) {
				return nil, 0 // go doc does not show methods of unexported types
			}
			what = "method " + recv + "." + d.Name.Name
		}
		if d.Doc == nil {
			out = append(out, problem{fset.Position(d.Pos()), what + " has no doc comment"})
		}
		return out, 1
	case *ast.GenDecl:
		grouped := d.Lparen.IsValid()
		n := 0
		for _, s := range d.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				if !s.Name.IsExported() {
					continue
				}
				n++
				if s.Doc == nil && d.Doc == nil {
					out = append(out, problem{fset.Position(s.Pos()), "type " + s.Name.Name + " has no doc comment"})
				}
			case *ast.ValueSpec:
				documented := s.Doc != nil || s.Comment != nil || d.Doc != nil
				if !grouped {
					documented = d.Doc != nil || s.Comment != nil
				}
				for _, id := range s.Names {
					if !id.IsExported() {
						continue
					}
					n++
					if !documented {
						kind := d.Tok.String()
						hint := "a doc comment or a line comment"
						if grouped {
							hint += ", or a doc comment on its group"
						}
						out = append(out, problem{fset.Position(id.Pos()), kind + " " + id.Name + " has no doc comment; give it " + hint})
					}
				}
			}
		}
		return out, n
	}
	return nil, 0
}

// receiverType is the base type name of a method's receiver: T for T, *T,
// T[K] and *T[K, V].
func receiverType(recv *ast.FieldList) string {
	if recv == nil || len(recv.List) == 0 {
		return ""
	}
	e := recv.List[0].Type
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// examples reports whether the test files hold any Example function, and
// whether one of them is run by go test: one with an output comment,
// possibly empty.
func examples(tests []*ast.File) (hasAny, runnable bool) {
	for _, f := range tests {
		for _, ex := range doc.Examples(f) {
			hasAny = true
			if ex.Output != "" || ex.EmptyOutput {
				runnable = true
			}
		}
	}
	return hasAny, runnable
}

// TestDocumentation is the guard: it fails listing every gap in the
// repository's packages.
func TestDocumentation(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	pkgs := loadTree(t, fset, root)
	if len(pkgs) < 10 {
		t.Fatalf("found %d packages under %s; the walk is broken", len(pkgs), root)
	}
	var all []problem
	for _, p := range pkgs {
		all = append(all, check(fset, p)...)
	}
	for _, p := range all {
		t.Error(p)
	}
}

// TestGuardScope pins the scope: packages the issue lists must be checked as
// libraries, internal ones only for a package comment, and examples/,
// bench/ and testdata never.
func TestGuardScope(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	got := map[string]bool{}
	for _, p := range loadTree(t, fset, root) {
		got[p.dir] = p.library
	}
	for _, dir := range []string{"", "certstore", "download", "download/getter", "download/nfs/nfstest", "qcow2", "template/templatetest"} {
		if lib, ok := got[dir]; !ok || !lib {
			t.Errorf("package %q: checked=%v library=%v, want a checked library package", dir, ok, lib)
		}
	}
	for _, dir := range []string{"internal/netguard", "internal/doccheck"} {
		if lib, ok := got[dir]; !ok || lib {
			t.Errorf("package %q: checked=%v library=%v, want a checked internal package", dir, ok, lib)
		}
	}
	for dir := range got {
		if skipDir(dir) || strings.HasPrefix(dir, "examples/") || strings.HasPrefix(dir, "bench/") {
			t.Errorf("package %q is checked, want it skipped", dir)
		}
	}
}

// TestCheckerFindsGaps runs the checker on small in-memory packages, so a
// guard that silently checks nothing cannot pass.
func TestCheckerFindsGaps(t *testing.T) {
	const documented = `// Package p is documented.
package p

// T is documented.
type T struct{}

// M is documented.
func (T) M() {}

func (t unexported) M() {}

type unexported struct{}

// Kind is documented.
type Kind int

// The kinds.
const (
	A Kind = iota
	B
)

const (
	// C is documented.
	C = 1
	D = 2 // D has a line comment.
)

// V is documented.
var V int

// G is documented.
type G[K comparable] struct{}

// Get is documented.
func (*G[K]) Get() {}
`
	const documentedTest = `package p_test

func ExampleT() {
	// Output:
}
`
	const gaps = `package p

type T struct{}

func F() {}

func (*T) M() {}

type G[K comparable] struct{}

func (G[K]) Get() {}

const (
	A = 1
	b = 2
)

var V, W int

// Only the group.
type (
	X int
	Y int
)
`
	const exampleNoOutput = `package p_test

func ExampleF() {}
`
	tests := []struct {
		name      string
		src, test string
		library   bool
		want      []string // substrings, one per expected problem, in order
	}{
		{name: "documented", src: documented, test: documentedTest, library: true},
		{
			name: "gaps", src: gaps, test: exampleNoOutput, library: true,
			want: []string{
				"src.go:1: package p (x/p) has no package comment",
				"src.go:3: type T has no doc comment",
				"src.go:5: func F has no doc comment",
				"src.go:7: method T.M has no doc comment",
				"src.go:9: type G has no doc comment",
				"src.go:11: method G.Get has no doc comment",
				"src.go:14: const A has no doc comment",
				"src.go:18: var V has no doc comment",
				"src.go:18: var W has no doc comment",
				"src.go:1: package x/p has no runnable Example function",
			},
		},
		{
			name: "internal needs only a package comment", src: gaps, library: false,
			want: []string{"src.go:1: package p (x/p) has no package comment"},
		},
		{
			name: "nothing exported needs no Example", src: "// Package p is documentation.\npackage p\n", library: true,
		},
		{
			name: "no Example at all", src: "// Package p is documented.\npackage p\n\n// F is documented.\nfunc F() {}\n", library: true,
			test: "package p\n\nfunc TestF(t *testing.T) {}\n",
			want: []string{"src.go:2: package x/p has no Example function"},
		},
		{
			name: "a suite taking *testing.T may have a compile-only Example", library: true,
			src:  "// Package p is documented.\npackage p\n\nimport \"testing\"\n\n// Run is documented.\nfunc Run(t *testing.T, f Factory) {}\n\n// Factory is documented.\ntype Factory struct{}\n",
			test: "package p_test\n\nfunc ExampleRun() {}\n",
		},
		{
			name: "a helper that needs no T needs a runnable Example", library: true,
			src:  "// Package p is documented.\npackage p\n\nimport \"testing\"\n\n// Run is documented.\nfunc Run(t testing.TB) {}\n\n// Start is documented.\nfunc Start() {}\n",
			test: "package p_test\n\nfunc ExampleRun() {}\n",
			want: []string{"src.go:2: package x/p has no runnable Example function"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fset := token.NewFileSet()
			p := &pkgFiles{dir: "x/p", library: tc.library}
			f, err := parser.ParseFile(fset, "src.go", tc.src, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			p.src = append(p.src, f)
			if tc.test != "" {
				f, err := parser.ParseFile(fset, "src_test.go", tc.test, parser.ParseComments)
				if err != nil {
					t.Fatal(err)
				}
				p.tests = append(p.tests, f)
			}
			got := check(fset, p)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), join(got))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i].String(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func join(ps []problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.String()
}
