// Package doccheck holds a test that keeps the module's documentation from
// decaying: it parses every package of the repository with go/parser and
// fails, naming file:line and the identifier, when
//
//   - a package (internal ones and commands included) has no package
//     comment;
//   - a library package (any package outside internal/, examples/ and
//     bench/) declares an exported top-level name without a doc comment;
//   - a library package that exports anything has no runnable Example
//     function (one with an output comment) in its _test.go files. A
//     conformance suite, whose every exported function takes a *testing.T
//     or testing.TB, may have a compile-only Example instead, since an
//     Example has no T to give it.
//
// # What counts as documented
//
// The rules follow what go doc shows:
//
//   - funcs, and methods whose receiver's base type is exported, need a
//     doc comment of their own; methods on unexported types are not shown
//     and are not checked;
//   - a type needs its own doc comment, or, inside a parenthesised type
//     group, the group's doc comment (go doc repeats it for each type);
//   - an exported const or var needs its own doc comment or a line comment
//     after it; inside a parenthesised group a doc comment on the group
//     counts for every member, because go doc prints the whole group under
//     it (the usual iota enumeration);
//   - exported struct fields and interface methods are not checked.
//
// Files whose first comment says "Code generated ... DO NOT EDIT." and
// testdata directories are skipped. The nested module download/getter is
// included by path: it is a library package of this repository even though
// its go.mod is its own, and parsing needs no module resolution. Other
// nested modules (under examples/ or bench/) are outside the rules.
//
// The package has no code besides its test, which reads the source tree
// from the module root (found by walking up to go.mod) and so runs as part
// of the module's ordinary go test.
package doccheck
