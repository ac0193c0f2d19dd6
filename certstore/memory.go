package certstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryDB is a Database in memory, for tests, examples and agents that
// keep no records across restarts. The zero value is not usable; call
// NewMemoryDB. It is safe for concurrent use.
type MemoryDB struct {
	mu     sync.Mutex
	nextID ID
	certs  map[ID]*Certificate
	states map[stateKey]HostState
}

type stateKey struct {
	cert ID
	host HostID
}

var _ Database = (*MemoryDB)(nil)

// NewMemoryDB returns an empty MemoryDB.
func NewMemoryDB() *MemoryDB {
	return &MemoryDB{nextID: 1, certs: map[ID]*Certificate{}, states: map[stateKey]HostState{}}
}

// AddCertificate implements Database.
func (m *MemoryDB) AddCertificate(ctx context.Context, c Certificate) (Certificate, error) {
	if err := ctx.Err(); err != nil {
		return Certificate{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := checkAliasFree(c, func(yield func(Certificate) bool) {
		for _, o := range m.certs {
			if !yield(*o) {
				return
			}
		}
	}); err != nil {
		return Certificate{}, err
	}
	c.ID = m.nextID
	m.nextID++
	c.Hosts = nil
	stored := c
	stored.Chain = slices.Clone(c.Chain)
	m.certs[c.ID] = &stored
	return c, nil
}

// checkAliasFree returns ErrDuplicateAlias when an active certificate of
// others in c's zone and hypervisor has one of c's entry aliases. SQL
// implementations run the same check inside their transaction.
func checkAliasFree(c Certificate, others func(yield func(Certificate) bool)) error {
	mine := map[string]bool{}
	for _, a := range c.EntryAliases() {
		mine[strings.ToLower(a)] = true
	}
	var err error
	others(func(o Certificate) bool {
		if !o.Active() || o.Zone != c.Zone || !strings.EqualFold(o.Hypervisor, c.Hypervisor) {
			return true
		}
		for _, a := range o.EntryAliases() {
			if mine[strings.ToLower(a)] {
				err = DuplicateAliasError(c, o, a)
				return false
			}
		}
		return true
	})
	return err
}

// DuplicateAliasError is the error a Database returns when c cannot be
// added because existing certificate o already holds alias in the zone.
func DuplicateAliasError(c, o Certificate, alias string) error {
	return fmt.Errorf("%w: zone %d already has %s certificate %q (id %d) holding alias %q; revoke it first or choose another alias",
		ErrDuplicateAlias, c.Zone, o.Hypervisor, o.Alias, o.ID, alias)
}

// Certificates implements Database.
func (m *MemoryDB) Certificates(ctx context.Context, f Filter) ([]Certificate, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Certificate
	for _, c := range m.certs {
		if f.match(*c) {
			cp := *c
			cp.Chain = slices.Clone(c.Chain)
			out = append(out, cp)
		}
	}
	slices.SortFunc(out, func(a, b Certificate) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// RevokeCertificate implements Database.
func (m *MemoryDB) RevokeCertificate(ctx context.Context, id ID, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.certs[id]
	if !ok {
		return fmt.Errorf("%w: no certificate with id %d", ErrNotFound, id)
	}
	if c.Revoked.IsZero() {
		c.Revoked = at
	}
	return nil
}

// HostStates implements Database.
func (m *MemoryDB) HostStates(ctx context.Context, cert ID, host HostID) ([]HostState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []HostState
	for k, s := range m.states {
		if (cert == 0 || k.cert == cert) && (host == 0 || k.host == host) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, compareStates)
	return out, nil
}

func compareStates(a, b HostState) int {
	if c := cmp.Compare(a.Cert, b.Cert); c != 0 {
		return c
	}
	return cmp.Compare(a.Host, b.Host)
}

// PutHostState implements Database.
func (m *MemoryDB) PutHostState(ctx context.Context, s HostState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.certs[s.Cert]; !ok {
		return fmt.Errorf("%w: no certificate with id %d", ErrNotFound, s.Cert)
	}
	m.states[stateKey{s.Cert, s.Host}] = s
	return nil
}
