// Package importrules holds no code that other packages use: its test
// enforces the import rules of the directdl module, reading the real import
// graph from `go list -deps -json`, so that each package stays usable on its
// own.
//
// # Rules
//
// The rules come from the module's design notes:
//
//   - qcow2, download, certstore and template (and their subpackages) depend
//     on no other top-level package of the module: only their own tree,
//     internal/..., the standard library and third-party modules.
//   - migrate may depend on qcow2 as well; it declares the interfaces it
//     needs from template and download itself.
//   - Nothing outside examples/ depends on examples/...; the examples may
//     depend on anything.
//   - qcow2 uses the standard library (and the module's internal packages)
//     only, and no networking package: net, net/... or crypto/tls.
//   - Only download/getter (and the examples) may depend on
//     github.com/hashicorp/go-getter. download/getter is a module of its
//     own, so in fact no package of this module reaches go-getter, the
//     examples included, and this module does not require it: the test
//     checks that too, and the adapter's own test checks that it does
//     depend on go-getter, so the check is not vacuous.
//   - internal/... depends on no top-level package, and the root package
//     directdl, which is documentation only, imports nothing.
//
// The rules are checked on the transitive dependencies of every package (test
// files excluded), so a forbidden package reached through an allowed one is
// caught as well; a failure names the chain of imports that leads to it.
// Every top-level package of the module needs a row in the test's rule
// table: a new one without a row fails the test until it gets one.
//
// Run it with:
//
//	go test ./internal/importrules
package importrules
