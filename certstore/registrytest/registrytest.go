// Package registrytest is the conformance suite of certstore.Database: the
// contract every implementation (certstore.MemoryDB, certstore/sqlregistry
// on SQLite and PostgreSQL, or one of your own) must keep, as tests. An
// implementation's test runs it with a Factory:
//
//	func TestConformance(t *testing.T) {
//		registrytest.Run(t, registrytest.Factory{
//			New: func(t *testing.T) certstore.Database { return certstore.NewMemoryDB() },
//		})
//	}
//
// # What it checks
//
// Besides what the documentation of certstore.Database says, the suite pins
// down the choices it leaves open, so that every implementation makes the
// same ones:
//
//   - AddCertificate: IDs are above zero and never given twice (also across
//     a reopening); the ID c carries in is ignored; the returned copy and
//     what Certificates returns have no Hosts. Every other field is stored
//     as given: Alias, Zone, Host and Hypervisor exactly (case kept), the
//     chain's certificates byte for byte (their DER) in their order.
//   - Times (Created, Revoked, HostState.Updated) come back as the same
//     instant to the nanosecond, and in UTC when given in UTC (the suite
//     gives UTC times, as the Registry does; a time in another zone must
//     only be the same instant). certstore/sqlregistry keeps them as Unix
//     nanoseconds, so an implementation keeping microseconds fails.
//   - Certificates: Filter.Hypervisor matches without regard to case
//     (strings.EqualFold), Filter.Alias exactly; results by ascending ID.
//   - Duplicate aliases: an alias is compared without regard to case
//     (strings.ToLower), over every entry alias of both certificates
//     ("web" with a chain of two holds "web" and "web-2"), among active
//     certificates of one zone and hypervisor (without regard to case),
//     whatever their Host. The error wraps certstore.ErrDuplicateAlias and
//     its message holds certstore.DuplicateAliasError for the certificate
//     that holds the alias, so every implementation words it the same.
//     A refused certificate is not stored. Of 16 uploads of one alias at
//     once, exactly one succeeds: the check and the insert are atomic.
//   - RevokeCertificate: an unknown ID is ErrNotFound; revoking again keeps
//     the first time; the certificate's aliases are free again at once.
//   - HostStates: every field is stored as given; PutHostState replaces the
//     state of a (certificate, host) pair, on revoked certificates too (Sync
//     records their removal); an unknown certificate is ErrNotFound and
//     stores nothing; results by certificate, then host.
//   - A context cancelled before a call makes it fail with an error
//     wrapping context.Canceled and change nothing.
//
// # Factories
//
// The subtests run in parallel, each with a database of its own from
// Factory.New, so New must give every call independent storage (a new
// SQLite file in t.TempDir(), a new PostgreSQL schema, ...) and release it
// with t.Cleanup, never with defer in the calling test: parallel subtests
// run after the function that calls Run has returned. certstore.Database
// has no Close, so the suite closes nothing itself. When Factory.Reopen is
// set, the suite also checks that everything survives closing and reopening
// the storage, as a restart of the process would.
package registrytest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
)

// Factory makes the databases the suite tests.
type Factory struct {
	// New returns an empty database with storage of its own, released by
	// t.Cleanup. Required.
	New func(t *testing.T) certstore.Database
	// Reopen, when not nil, closes db and returns a database over the same
	// storage. Nil leaves the persistence tests out (for databases in memory).
	Reopen func(t *testing.T, db certstore.Database) certstore.Database
}

// Run runs the whole suite against the databases f makes, as subtests of t
// (see the package documentation). The persistence subtests, under
// "Reopen", run only when f.Reopen is set.
func Run(t *testing.T, f Factory) {
	if f.New == nil {
		t.Fatal("registrytest: Factory.New is nil")
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"AddCertificate", addTests},
		{"Certificates", listTests},
		{"DuplicateAlias", duplicateTests()},
		{"Revoke", revokeTests},
		{"HostStates", hostStateTests},
		{"Context", contextTests},
		{"Reopen", reopenTests},
	}
	for _, g := range groups {
		if g.name == "Reopen" && f.Reopen == nil {
			// Nothing to test: an implementation without persistence.
			continue
		}
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(newEnv(t, f))
				})
			}
		})
	}
}

// test is one subtest of the suite.
type test struct {
	name string
	run  func(e *env)
}

// env is what a subtest works with: its own database and context.
type env struct {
	t   *testing.T
	f   Factory
	ctx context.Context
	db  certstore.Database
}

func newEnv(t *testing.T, f Factory) *env {
	e := &env{t: t, f: f, ctx: t.Context(), db: f.New(t)}
	if e.db == nil {
		t.Fatal("registrytest: Factory.New returned nil")
	}
	return e
}

// reopen closes the database and opens the same storage again.
func (e *env) reopen() {
	e.t.Helper()
	db := e.f.Reopen(e.t, e.db)
	if db == nil {
		e.t.Fatal("registrytest: Factory.Reopen returned nil")
	}
	e.db = db
}

// ok fails the test at once when err is not nil.
func (e *env) ok(err error, what string, args ...any) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

// is reports an error unless errors.Is(err, want).
func (e *env) is(err, want error, what string, args ...any) bool {
	e.t.Helper()
	if !errors.Is(err, want) {
		e.t.Errorf("%s: got error %v, want %v", fmt.Sprintf(what, args...), err, want)
		return false
	}
	return true
}

// base is the time the suite's certificates are created at: in UTC, with
// nanoseconds that a store keeping microseconds would lose.
var base = time.Date(2025, time.March, 14, 15, 9, 26, 535897932, time.UTC)

// cert is a certificate to add: alias in zone 1 for KVM, with a fresh chain
// of n certificates, created at base.
func cert(alias string, n int) certstore.Certificate {
	return certstore.Certificate{Alias: alias, Zone: 1, Hypervisor: certstore.KVM, Chain: Chain(n), Created: base}
}

// add adds c, which must succeed, and returns the stored copy.
func (e *env) add(c certstore.Certificate) certstore.Certificate {
	e.t.Helper()
	got, err := e.db.AddCertificate(e.ctx, c)
	e.ok(err, "AddCertificate(%q, zone %d, %s, %d certificates)", c.Alias, c.Zone, c.Hypervisor, len(c.Chain))
	if got.ID <= 0 {
		e.t.Fatalf("AddCertificate(%q): got ID %d, want 1 or more", c.Alias, got.ID)
	}
	return got
}

// list returns the certificates f selects, which must not fail.
func (e *env) list(f certstore.Filter) []certstore.Certificate {
	e.t.Helper()
	cs, err := e.db.Certificates(e.ctx, f)
	e.ok(err, "Certificates(%+v)", f)
	return cs
}

// get returns certificate id, revoked or not, which must exist.
func (e *env) get(id certstore.ID) certstore.Certificate {
	e.t.Helper()
	cs := e.list(certstore.Filter{ID: id, IncludeRevoked: true})
	if len(cs) != 1 {
		e.t.Fatalf("Certificates(ID %d, IncludeRevoked): got %d certificates %v, want 1", id, len(cs), cs)
	}
	return cs[0]
}

func (e *env) revoke(id certstore.ID, at time.Time) {
	e.t.Helper()
	e.ok(e.db.RevokeCertificate(e.ctx, id, at), "RevokeCertificate(%d, %v)", id, at)
}

func (e *env) states(cert certstore.ID, host certstore.HostID) []certstore.HostState {
	e.t.Helper()
	ss, err := e.db.HostStates(e.ctx, cert, host)
	e.ok(err, "HostStates(%d, %d)", cert, host)
	return ss
}

func (e *env) put(s certstore.HostState) {
	e.t.Helper()
	e.ok(e.db.PutHostState(e.ctx, s), "PutHostState(certificate %d, host %d, %s)", s.Cert, s.Host, s.Status)
}

// sameTime reports whether got is want to the nanosecond, and in UTC when
// want is.
func sameTime(got, want time.Time) bool {
	if !got.Equal(want) || got.IsZero() != want.IsZero() {
		return false
	}
	return want.IsZero() || want.Location() != time.UTC || got.Location() == time.UTC
}

// sameCert reports an error unless got is want as stored: every field
// equal, times as sameTime says, the chain by DER, no Hosts.
func (e *env) sameCert(what string, got, want certstore.Certificate) {
	e.t.Helper()
	if got.ID != want.ID || got.Alias != want.Alias || got.Zone != want.Zone || got.Host != want.Host || got.Hypervisor != want.Hypervisor {
		e.t.Errorf("%s:\ngot  %s\nwant %s", what, describe(got), describe(want))
	}
	if !sameTime(got.Created, want.Created) {
		e.t.Errorf("%s: got Created %v, want %v", what, got.Created, want.Created)
	}
	if !sameTime(got.Revoked, want.Revoked) {
		e.t.Errorf("%s: got Revoked %v, want %v", what, got.Revoked, want.Revoked)
	}
	if !sameDER(got.Chain, want.Chain) {
		e.t.Errorf("%s: got chain %s, want %s", what, subjects(got.Chain), subjects(want.Chain))
	}
	if len(got.Hosts) != 0 {
		e.t.Errorf("%s: got Hosts %+v, want none", what, got.Hosts)
	}
}

// sameCerts compares lists of certificates in order.
func (e *env) sameCerts(what string, got, want []certstore.Certificate) {
	e.t.Helper()
	if !slices.Equal(ids(got), ids(want)) {
		e.t.Errorf("%s: got IDs %v, want %v", what, ids(got), ids(want))
		return
	}
	for i := range got {
		e.sameCert(fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

func describe(c certstore.Certificate) string {
	return fmt.Sprintf("ID %d alias %q zone %d host %d hypervisor %q", c.ID, c.Alias, c.Zone, c.Host, c.Hypervisor)
}

func ids(cs []certstore.Certificate) []certstore.ID {
	out := make([]certstore.ID, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func sameDER(got, want []*x509.Certificate) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] == nil || !bytes.Equal(got[i].Raw, want[i].Raw) {
			return false
		}
	}
	return true
}

func subjects(chain []*x509.Certificate) string {
	s := make([]string, len(chain))
	for i, c := range chain {
		if c == nil {
			s[i] = "<nil>"
		} else {
			s[i] = c.Subject.CommonName
		}
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// sameStates compares host states in order, times as sameTime says.
func (e *env) sameStates(what string, got, want []certstore.HostState) {
	e.t.Helper()
	if len(got) != len(want) {
		e.t.Errorf("%s: got %d states %+v, want %d %+v", what, len(got), got, len(want), want)
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if !sameTime(g.Updated, w.Updated) {
			e.t.Errorf("%s[%d]: got Updated %v, want %v", what, i, g.Updated, w.Updated)
		}
		g.Updated, w.Updated = time.Time{}, time.Time{}
		if g != w {
			e.t.Errorf("%s[%d]:\ngot  %+v\nwant %+v", what, i, g, w)
		}
	}
}

// isDuplicate reports an error unless err is the duplicate-alias error of c
// against holder, the certificate that has alias.
func (e *env) isDuplicate(what string, err error, c, holder certstore.Certificate, alias string) {
	e.t.Helper()
	if !e.is(err, certstore.ErrDuplicateAlias, "%s", what) {
		return
	}
	if want := certstore.DuplicateAliasError(c, holder, alias).Error(); !strings.Contains(err.Error(), want) {
		e.t.Errorf("%s: got message %q, want it to hold %q", what, err, want)
	}
}

// parallel runs n calls of f at once, released together, and waits.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

// Chain returns a fresh chain of n certificates, as an upload of a leaf
// and its CAs would hold: the first certificate is a leaf, each one is
// signed by the next, and the last is a self-signed root. Keys are ECDSA
// P-256. Every call makes new keys and serial numbers, so no two chains
// share a certificate. It panics when n is below 1 or crypto/rand fails.
func Chain(n int) []*x509.Certificate {
	if n < 1 {
		panic(fmt.Sprintf("registrytest: Chain(%d): a chain has 1 certificate or more", n))
	}
	keys := make([]*ecdsa.PrivateKey, n)
	for i := range keys {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(fmt.Sprintf("registrytest: generate key: %v", err))
		}
		keys[i] = k
	}
	chain := make([]*x509.Certificate, n)
	var parent *x509.Certificate
	for i := n - 1; i >= 0; i-- {
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		if err != nil {
			panic(fmt.Sprintf("registrytest: serial number: %v", err))
		}
		name := fmt.Sprintf("registrytest CA %d", i+1)
		if i == 0 {
			name = "registrytest leaf"
		}
		tmpl := &x509.Certificate{
			SerialNumber:          serial,
			Subject:               pkix.Name{CommonName: name, SerialNumber: serial.Text(16)},
			NotBefore:             time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
			NotAfter:              time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC),
			BasicConstraintsValid: true,
			IsCA:                  i > 0,
		}
		if i > 0 {
			tmpl.KeyUsage = x509.KeyUsageCertSign
		} else {
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature
			tmpl.DNSNames = []string{"mirror.example.com"}
		}
		signer, signerKey := tmpl, keys[i]
		if parent != nil {
			signer, signerKey = parent, keys[i+1]
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &keys[i].PublicKey, signerKey)
		if err != nil {
			panic(fmt.Sprintf("registrytest: create certificate: %v", err))
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			panic(fmt.Sprintf("registrytest: parse certificate: %v", err))
		}
		chain[i], parent = c, c
	}
	return chain
}
