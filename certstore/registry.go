package certstore

import (
	"context"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ID identifies a registered certificate; ZoneID a zone; HostID a host.
// Zero is never a valid ID.
type (
	ID     int64
	ZoneID int64
	HostID int64
)

// KVM is the hypervisor direct download certificates are for, and the
// default when an upload names none.
const KVM = "KVM"

// Certificate is a certificate registered for a zone and hypervisor under an
// alias: what CloudStack's uploadTemplateDirectDownloadCertificate creates.
//
// Chain holds the certificates of the uploaded PEM in its order. The first
// is installed on hosts under Alias, the others (a CA bundle uploaded at
// once) under Alias-2, Alias-3, ...: see EntryAliases.
type Certificate struct {
	ID         ID
	Alias      string
	Zone       ZoneID
	Hypervisor string
	// Host, when nonzero, scopes the certificate to that one host of the
	// zone; zero means every host of the zone.
	Host    HostID
	Chain   []*x509.Certificate
	Created time.Time
	// Revoked is when the certificate was revoked from its zone; zero while
	// it is active. A revoked certificate is removed from the zone's hosts
	// by Sync and stays listed, with its hosts' state, for the record.
	Revoked time.Time
	// Hosts is each host's state, filled by List when asked for.
	Hosts []HostState
}

// Active reports whether c is not revoked from its zone.
func (c Certificate) Active() bool { return c.Revoked.IsZero() }

// EntryAliases returns the alias each certificate of the chain is installed
// under on a host: Alias, then Alias-2, Alias-3, ...
func (c Certificate) EntryAliases() []string {
	return entryAliases(c.Alias, len(c.Chain))
}

func entryAliases(alias string, n int) []string {
	out := make([]string, n)
	for i := range out {
		if i == 0 {
			out[i] = alias
		} else {
			out[i] = alias + "-" + strconv.Itoa(i+1)
		}
	}
	return out
}

// Entries returns the trust store entries a host holding c has.
func (c Certificate) Entries() []Entry {
	aliases := c.EntryAliases()
	out := make([]Entry, len(c.Chain))
	for i, cert := range c.Chain {
		out[i] = Entry{Alias: aliases[i], Cert: cert}
	}
	return out
}

// String names the certificate in messages: alias, id and zone.
func (c Certificate) String() string {
	return fmt.Sprintf("certificate %q (id %d, zone %d)", c.Alias, c.ID, c.Zone)
}

// Status is what certstore last confirmed about one certificate on one host.
type Status string

const (
	// Pending: nothing confirmed yet (the host was down or not yet synced).
	Pending Status = "pending"
	// Synced: the host's trust store was read back and holds the
	// certificate (every entry of its chain, with the right fingerprint).
	Synced Status = "synced"
	// Removed: the certificate is revoked for the host, and the host's
	// trust store was read back without it.
	Removed Status = "removed"
	// Failed: the last attempt failed; Error says why. The host may or may
	// not hold the certificate; the next Sync tries again.
	Failed Status = "failed"
)

// HostState is one certificate on one host: what is wanted (Revoked) and
// what was last confirmed (Status).
type HostState struct {
	Cert ID
	Host HostID
	// Revoked is set when the certificate was revoked for this host alone:
	// Sync removes it there and does not install it again until Provision.
	Revoked bool
	Status  Status
	// Error is why the last attempt failed, when Status is Failed.
	Error string
	// Updated is when Status was last recorded.
	Updated time.Time
}

// Filter selects certificates. Zero fields match everything; revoked
// certificates are included only with IncludeRevoked. Host selects the
// certificates scoped to that host (Certificate.Host), not those a host
// would get from its zone.
type Filter struct {
	ID             ID
	Zone           ZoneID
	Host           HostID
	Alias          string
	Hypervisor     string
	IncludeRevoked bool
}

func (f Filter) match(c Certificate) bool {
	return (f.ID == 0 || c.ID == f.ID) &&
		(f.Zone == 0 || c.Zone == f.Zone) &&
		(f.Host == 0 || c.Host == f.Host) &&
		(f.Alias == "" || c.Alias == f.Alias) &&
		(f.Hypervisor == "" || strings.EqualFold(c.Hypervisor, f.Hypervisor)) &&
		(f.IncludeRevoked || c.Active())
}

// Database keeps the registry's records. It stores; the Registry decides.
// Implementations: NewMemoryDB here, and certstore/sqlregistry for SQLite
// and PostgreSQL. certstore/registrytest checks an implementation.
//
// Implementations must be safe for concurrent use.
type Database interface {
	// AddCertificate stores c under a new ID, which the returned copy
	// carries. It fails with an error wrapping ErrDuplicateAlias when an
	// active certificate of the same zone and hypervisor (compared without
	// regard to case) already has one of c's entry aliases, whatever the
	// two certificates' host scopes. The check and
	// the insert are atomic.
	AddCertificate(ctx context.Context, c Certificate) (Certificate, error)
	// Certificates returns the certificates f selects, by ID, without Hosts.
	Certificates(ctx context.Context, f Filter) ([]Certificate, error)
	// RevokeCertificate records that certificate id was revoked from its
	// zone at the given time (a no-op when already revoked), or fails with
	// ErrNotFound.
	RevokeCertificate(ctx context.Context, id ID, at time.Time) error
	// HostStates returns the states of certificate cert (all when zero) on
	// host (all when zero), ordered by certificate then host.
	HostStates(ctx context.Context, cert ID, host HostID) ([]HostState, error)
	// PutHostState creates or replaces the state of s.Cert on s.Host; an
	// unknown certificate is ErrNotFound.
	PutHostState(ctx context.Context, s HostState) error
}

// Host is one hypervisor host as the orchestrator knows it, and the way to
// reach its trust store.
type Host struct {
	ID         HostID
	Zone       ZoneID
	Hypervisor string // KVM when empty
	// Up is whether the host is connected; Sync leaves other hosts alone.
	Up    bool
	Store TrustStore
}

func (h Host) hypervisor() string {
	if h.Hypervisor == "" {
		return KVM
	}
	return h.Hypervisor
}

// Hosts lists the hosts the registry syncs: the orchestrator's inventory.
// It is called at every Sync, so hosts added later are picked up.
type Hosts interface {
	Hosts(ctx context.Context) ([]Host, error)
}

// HostList is a fixed Hosts.
type HostList []Host

// Hosts returns the list.
func (l HostList) Hosts(context.Context) ([]Host, error) { return l, nil }
