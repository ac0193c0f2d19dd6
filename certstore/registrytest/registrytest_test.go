package registrytest_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/certstore/registrytest"
)

// handle is one "connection" to a shared MemoryDB, so that the Reopen tests
// of the suite can run in memory: a reopened handle sees the records of
// the one before.
type handle struct{ *certstore.MemoryDB }

// TestRunWithReopen runs the whole suite, the persistence tests included,
// to check the suite itself.
func TestRunWithReopen(t *testing.T) {
	registrytest.Run(t, registrytest.Factory{
		New: func(*testing.T) certstore.Database { return handle{certstore.NewMemoryDB()} },
		Reopen: func(_ *testing.T, db certstore.Database) certstore.Database {
			return handle{db.(handle).MemoryDB}
		},
	})
}

func TestChain(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		chain := registrytest.Chain(n)
		if len(chain) != n {
			t.Fatalf("Chain(%d): got %d certificates", n, len(chain))
		}
		for i, c := range chain {
			issuer := c
			if i+1 < n {
				issuer = chain[i+1]
			}
			// The last one is signed by its own key.
			if err := issuer.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
				t.Errorf("Chain(%d)[%d] is not signed by the next one's key: %v", n, i, err)
			}
			if string(c.RawIssuer) != string(issuer.RawSubject) {
				t.Errorf("Chain(%d)[%d]: issuer %s, want %s", n, i, c.Issuer, issuer.Subject)
			}
			if c.IsCA != (i > 0) {
				t.Errorf("Chain(%d)[%d]: IsCA %v", n, i, c.IsCA)
			}
		}
	}
	if a, b := registrytest.Chain(1)[0], registrytest.Chain(1)[0]; certstore.Fingerprint(a) == certstore.Fingerprint(b) {
		t.Error("two calls of Chain returned the same certificate")
	}
}

// bugs are the faults a mutant database has.
type bugs struct {
	lossyTimes       bool // keeps microseconds
	baseAliasOnly    bool // compares c.Alias with o.Alias, not entry aliases
	caseHypervisor   bool // compares hypervisors with ==
	asciiHypervisor  bool // folds ASCII only, as SQLite's upper() does
	revokedBlocks    bool // revoked certificates keep their aliases
	revokeOverwrites bool // a second revocation replaces the time
	revokeUnknownOK  bool // revoking an unknown ID succeeds
	unsortedStates   bool // HostStates in the order written
	putUnknownOK     bool // PutHostState of an unknown certificate succeeds
	ignoreContext    bool // goes on with a cancelled context
	racy             bool // checks the alias, lets others check, then inserts
}

// mutant is a Database with bugs, written plainly so that each bug is one
// condition. Without bugs it passes the suite (see TestMutants).
type mutant struct {
	bugs
	mu      sync.Mutex
	certs   []certstore.Certificate
	states  []certstore.HostState
	checked chan struct{} // racy: one token per finished check
}

func newMutant(b bugs) *mutant { return &mutant{bugs: b, checked: make(chan struct{}, 64)} }

func (m *mutant) ctxErr(ctx context.Context) error {
	if m.ignoreContext {
		return nil
	}
	return ctx.Err()
}

func (m *mutant) sameHypervisor(a, b string) bool {
	switch {
	case m.caseHypervisor:
		return a == b
	case m.asciiHypervisor:
		up := func(s string) string {
			return strings.Map(func(r rune) rune {
				if 'a' <= r && r <= 'z' {
					return r - 'a' + 'A'
				}
				return r
			}, s)
		}
		return up(a) == up(b)
	}
	return strings.EqualFold(a, b)
}

func (m *mutant) conflict(c certstore.Certificate) error {
	mine, theirs := c.EntryAliases(), func(o certstore.Certificate) []string { return o.EntryAliases() }
	if m.baseAliasOnly {
		mine, theirs = []string{c.Alias}, func(o certstore.Certificate) []string { return []string{o.Alias} }
	}
	for _, o := range m.certs {
		if (!o.Active() && !m.revokedBlocks) || o.Zone != c.Zone || !m.sameHypervisor(o.Hypervisor, c.Hypervisor) {
			continue
		}
		for _, a := range theirs(o) {
			for _, b := range mine {
				if strings.EqualFold(a, b) {
					return certstore.DuplicateAliasError(c, o, a)
				}
			}
		}
	}
	return nil
}

func (m *mutant) AddCertificate(ctx context.Context, c certstore.Certificate) (certstore.Certificate, error) {
	if err := m.ctxErr(ctx); err != nil {
		return certstore.Certificate{}, err
	}
	m.mu.Lock()
	err := m.conflict(c)
	if m.racy && err == nil {
		// Wait, outside the lock, until another call has checked too:
		// both then insert.
		m.mu.Unlock()
		m.checked <- struct{}{}
		deadline := time.After(10 * time.Second)
		for len(m.checked) < 2 {
			select {
			case <-deadline:
				return certstore.Certificate{}, errors.New("racy mutant: no second call")
			case <-time.After(time.Millisecond):
			}
		}
		m.mu.Lock()
	}
	defer m.mu.Unlock()
	if err != nil {
		return certstore.Certificate{}, err
	}
	c.ID = certstore.ID(len(m.certs) + 1)
	c.Hosts = nil
	if m.lossyTimes {
		c.Created = c.Created.Truncate(time.Microsecond)
	}
	stored := c
	stored.Chain = slices.Clone(c.Chain)
	m.certs = append(m.certs, stored)
	return c, nil
}

func (m *mutant) Certificates(ctx context.Context, f certstore.Filter) ([]certstore.Certificate, error) {
	if err := m.ctxErr(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []certstore.Certificate
	for _, c := range m.certs {
		if (f.ID == 0 || c.ID == f.ID) && (f.Zone == 0 || c.Zone == f.Zone) && (f.Host == 0 || c.Host == f.Host) &&
			(f.Alias == "" || c.Alias == f.Alias) && (f.Hypervisor == "" || m.sameHypervisor(c.Hypervisor, f.Hypervisor)) &&
			(f.IncludeRevoked || c.Active()) {
			c.Chain = slices.Clone(c.Chain)
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *mutant) RevokeCertificate(ctx context.Context, id certstore.ID, at time.Time) error {
	if err := m.ctxErr(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.certs {
		if m.certs[i].ID == id {
			if m.certs[i].Active() || m.revokeOverwrites {
				m.certs[i].Revoked = at
			}
			return nil
		}
	}
	if m.revokeUnknownOK {
		return nil
	}
	return fmt.Errorf("%w: no certificate with id %d", certstore.ErrNotFound, id)
}

func (m *mutant) HostStates(ctx context.Context, cert certstore.ID, host certstore.HostID) ([]certstore.HostState, error) {
	if err := m.ctxErr(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []certstore.HostState
	for _, s := range m.states {
		if (cert == 0 || s.Cert == cert) && (host == 0 || s.Host == host) {
			out = append(out, s)
		}
	}
	if !m.unsortedStates {
		slices.SortFunc(out, func(a, b certstore.HostState) int {
			return cmp.Or(cmp.Compare(a.Cert, b.Cert), cmp.Compare(a.Host, b.Host))
		})
	}
	return out, nil
}

func (m *mutant) PutHostState(ctx context.Context, s certstore.HostState) error {
	if err := m.ctxErr(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.putUnknownOK && !slices.ContainsFunc(m.certs, func(c certstore.Certificate) bool { return c.ID == s.Cert }) {
		return fmt.Errorf("%w: no certificate with id %d", certstore.ErrNotFound, s.Cert)
	}
	for i := range m.states {
		if m.states[i].Cert == s.Cert && m.states[i].Host == s.Host {
			m.states[i] = s
			return nil
		}
	}
	m.states = append(m.states, s)
	return nil
}

// mutants name a bug and the subtest of the suite that must catch it.
var mutants = map[string]struct {
	bugs  bugs
	fails string
}{
	"lossy-times":             {bugs{lossyTimes: true}, "AddCertificate/times"},
	"base-alias-only":         {bugs{baseAliasOnly: true}, "DuplicateAlias/entry-alias"},
	"case-hypervisor":         {bugs{caseHypervisor: true}, "DuplicateAlias/hypervisor-case"},
	"ascii-hypervisor":        {bugs{asciiHypervisor: true}, "DuplicateAlias/hypervisor-unicode-case"},
	"revoked-blocks":          {bugs{revokedBlocks: true}, "DuplicateAlias/revoked-holder"},
	"revoke-overwrites":       {bugs{revokeOverwrites: true}, "Revoke/twice"},
	"revoke-unknown-ok":       {bugs{revokeUnknownOK: true}, "Revoke/not-found"},
	"unsorted-states":         {bugs{unsortedStates: true}, "HostStates/order-and-filters"},
	"put-unknown-ok":          {bugs{putUnknownOK: true}, "HostStates/unknown-certificate"},
	"ignore-context":          {bugs{ignoreContext: true}, "Context/cancelled"},
	"check-then-insert":       {bugs{racy: true}, "DuplicateAlias/concurrent-same-alias"},
	"check-then-insert-entry": {bugs{racy: true}, "DuplicateAlias/concurrent-entry-aliases"},
}

const mutantEnv = "REGISTRYTEST_MUTANT"

// TestMutant runs the suite against the mutant named by
// $REGISTRYTEST_MUTANT, or, without it, against a mutant without bugs,
// which must pass; TestMutants starts the others.
func TestMutant(t *testing.T) {
	name := os.Getenv(mutantEnv)
	var b bugs
	if name != "" {
		m, ok := mutants[name]
		if !ok {
			t.Fatalf("no mutant %q", name)
		}
		b = m.bugs
	}
	registrytest.Run(t, registrytest.Factory{
		New: func(*testing.T) certstore.Database { return newMutant(b) },
	})
}

// TestMutants checks that the suite catches broken databases: each mutant
// must fail the subtest that guards against its bug.
func TestMutants(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("inside a mutant run")
	}
	for name, m := range mutants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var pattern []string
			for _, p := range strings.Split("TestMutant/"+m.fails, "/") {
				pattern = append(pattern, "^"+p+"$")
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+strings.Join(pattern, "/"), "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("suite against mutant %s: got %v, want a failure\n%s", name, err, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestMutant/"+m.fails+" ") {
				t.Fatalf("suite against mutant %s: %s did not fail\n%s", name, m.fails, out)
			}
		})
	}
}
