package certstore

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Registry keeps the certificates that hosts should trust, scoped to zones
// (and optionally to one host), and syncs them to the hosts' trust stores:
// CloudStack's direct download certificate APIs, with the state of each
// host read back from the host instead of assumed.
//
// A Registry is safe for concurrent use. Within one Registry, work on one
// host is serialized, so an upload, a revoke and the background syncer
// never interleave their changes to a host's store or its recorded state.
// Run one Registry (one syncer) per deployment: two processes syncing the
// same hosts may record a state that the other then changes.
type Registry struct {
	db          Database
	hosts       Hosts
	concurrency int
	hostTimeout time.Duration
	thresholds  Thresholds
	now         func() time.Time
	log         *slog.Logger

	mu    sync.Mutex
	locks map[HostID]*hostLock
}

type hostLock struct {
	ch   chan struct{}
	refs int
}

// RegistryOption configures a Registry.
type RegistryOption func(*Registry) error

// WithConcurrency sets how many hosts Sync works on at once. Default 32:
// a host's sync is mostly waiting on the network (see BENCHMARKS.md).
func WithConcurrency(n int) RegistryOption {
	return func(r *Registry) error {
		if n < 1 {
			return fmt.Errorf("certstore: concurrency must be at least 1, got %d", n)
		}
		r.concurrency = n
		return nil
	}
}

// WithHostTimeout bounds the work on one host in one sync: reading its
// store, changing it and reading it back. Default 1 minute.
func WithHostTimeout(d time.Duration) RegistryOption {
	return func(r *Registry) error {
		if d <= 0 {
			return fmt.Errorf("certstore: host timeout must be positive, got %v", d)
		}
		r.hostTimeout = d
		return nil
	}
}

// WithThresholds sets the expiry thresholds of upload warnings and
// ExpiryReport. Default: 30 and 7 days.
func WithThresholds(t Thresholds) RegistryOption {
	return func(r *Registry) error {
		r.thresholds = t.withDefaults()
		return nil
	}
}

// WithClock sets the clock, for tests. Default time.Now.
func WithClock(now func() time.Time) RegistryOption {
	return func(r *Registry) error {
		r.now = now
		return nil
	}
}

// WithLogger logs each host change and failure to l. Default: no logging.
func WithLogger(l *slog.Logger) RegistryOption {
	return func(r *Registry) error {
		r.log = l
		return nil
	}
}

// NewRegistry returns a Registry keeping its records in db and reaching
// hosts through hosts, which may be nil for a registry that only records
// (Sync then fails, and Upload and Revoke change no host).
func NewRegistry(db Database, hosts Hosts, opts ...RegistryOption) (*Registry, error) {
	if db == nil {
		return nil, errors.New("certstore: NewRegistry needs a Database")
	}
	r := &Registry{
		db:          db,
		hosts:       hosts,
		concurrency: 32,
		hostTimeout: time.Minute,
		thresholds:  Thresholds{}.withDefaults(),
		now:         time.Now,
		log:         slog.New(discardHandler{}),
		locks:       map[HostID]*hostLock{},
	}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

// lockHost serializes work on one host; it waits for ctx.
func (r *Registry) lockHost(ctx context.Context, id HostID) (unlock func(), err error) {
	r.mu.Lock()
	l := r.locks[id]
	if l == nil {
		l = &hostLock{ch: make(chan struct{}, 1)}
		r.locks[id] = l
	}
	l.refs++
	r.mu.Unlock()
	release := func() {
		r.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(r.locks, id)
		}
		r.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// Upload is a certificate to register.
type Upload struct {
	// Alias names the certificate on hosts: a lowercase DNS label, not
	// "cloud" or "cloudca...". A PEM with several certificates installs
	// them as Alias, Alias-2, ...
	Alias string
	// PEM holds one or more certificates: PEM, base64 DER or DER.
	PEM []byte
	// Zone is required.
	Zone ZoneID
	// Hypervisor defaults to KVM.
	Hypervisor string
	// Host, when nonzero, scopes the certificate to one host of the zone.
	Host HostID
}

// UploadResult is what Upload did.
type UploadResult struct {
	Certificate Certificate
	// Warnings about the certificates (see CheckAnchors).
	Warnings []Warning
	// Hosts are the results of installing the certificate on the zone's
	// hosts (or its one host) right away. A failure here does not undo
	// the upload: the host is recorded as failed and the next Sync retries.
	Hosts []HostResult
}

// Upload validates and registers a certificate, then installs it on the
// Up hosts it is for. Validation: the alias (ValidateAlias), every
// certificate of the PEM parsed, none expired or not yet valid, the
// CheckAnchors warnings returned; a duplicate alias in the zone is
// ErrDuplicateAlias.
func (r *Registry) Upload(ctx context.Context, u Upload) (UploadResult, error) {
	if err := ValidateAlias(u.Alias); err != nil {
		return UploadResult{}, err
	}
	if u.Zone <= 0 {
		return UploadResult{}, fmt.Errorf("certstore: upload of %q needs a zone", u.Alias)
	}
	hv := u.Hypervisor
	if hv == "" {
		hv = KVM
	}
	certs, err := ParseCertificates(u.PEM)
	if err != nil {
		return UploadResult{}, fmt.Errorf("upload of %q: %w", u.Alias, err)
	}
	for _, a := range entryAliases(u.Alias, len(certs)) {
		if err := ValidateAlias(a); err != nil {
			return UploadResult{}, fmt.Errorf("upload of %q with %d certificates: %w", u.Alias, len(certs), err)
		}
	}
	warns, err := CheckAnchors(certs, r.now(), r.thresholds)
	if err != nil {
		return UploadResult{}, fmt.Errorf("upload of %q: %w", u.Alias, err)
	}
	if u.Host != 0 && r.hosts != nil {
		// A host the inventory does not list yet may be added later; one
		// it lists elsewhere is a mistake that would install nothing.
		if h, err := r.host(ctx, u.Host); err == nil && (h.Zone != u.Zone || !strings.EqualFold(h.hypervisor(), hv)) {
			return UploadResult{}, fmt.Errorf("certstore: upload of %q for host %d in zone %d: the host is in zone %d (%s); name its zone, or another host", u.Alias, u.Host, u.Zone, h.Zone, h.hypervisor())
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return UploadResult{}, err
		}
	}
	c, err := r.db.AddCertificate(ctx, Certificate{
		Alias: u.Alias, Zone: u.Zone, Hypervisor: hv, Host: u.Host, Chain: certs, Created: r.now().UTC(),
	})
	if err != nil {
		return UploadResult{}, err
	}
	res := UploadResult{Certificate: c, Warnings: warns}
	if r.hosts != nil {
		res.Hosts, err = r.syncWhere(ctx, func(h Host) bool { return c.appliesTo(h) })
		if err != nil {
			return res, fmt.Errorf("%s registered, but installing it failed: %w", c, err)
		}
	}
	return res, nil
}

// appliesTo reports whether host h should hold c while c is active.
func (c Certificate) appliesTo(h Host) bool {
	return h.Zone == c.Zone && strings.EqualFold(h.hypervisor(), c.Hypervisor) && (c.Host == 0 || c.Host == h.ID)
}

// certificate returns certificate id, active or not.
func (r *Registry) certificate(ctx context.Context, id ID) (Certificate, error) {
	cs, err := r.db.Certificates(ctx, Filter{ID: id, IncludeRevoked: true})
	if err != nil {
		return Certificate{}, err
	}
	if len(cs) == 0 {
		return Certificate{}, fmt.Errorf("%w: no certificate with id %d", ErrNotFound, id)
	}
	return cs[0], nil
}

// Revoke revokes certificate id from its zone, which the caller names too
// (as CloudStack requires), and removes it from the zone's Up hosts. Hosts
// that are down lose it at the first Sync after they come up. Revoking a
// revoked certificate removes it from hosts that still hold it.
func (r *Registry) Revoke(ctx context.Context, id ID, zone ZoneID) ([]HostResult, error) {
	c, err := r.certificate(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Zone != zone {
		return nil, fmt.Errorf("%w: %s is not in zone %d", ErrNotFound, c, zone)
	}
	if err := r.db.RevokeCertificate(ctx, id, r.now().UTC()); err != nil {
		return nil, err
	}
	if r.hosts == nil {
		return nil, nil
	}
	return r.syncWhere(ctx, func(h Host) bool { return c.appliesTo(h) })
}

// RevokeFromHost revokes certificate id from one host: it is removed there
// now (if the host is Up) and not installed again until Provision.
func (r *Registry) RevokeFromHost(ctx context.Context, id ID, host HostID) (HostResult, error) {
	return r.setHostRevoked(ctx, id, host, true)
}

// Provision (re-)installs certificate id on one host of its zone, undoing
// a RevokeFromHost: CloudStack's provisionTemplateDirectDownloadCertificate
// and its upload with a host id. The host must be Up.
func (r *Registry) Provision(ctx context.Context, id ID, host HostID) (HostResult, error) {
	return r.setHostRevoked(ctx, id, host, false)
}

func (r *Registry) setHostRevoked(ctx context.Context, id ID, host HostID, revoked bool) (HostResult, error) {
	c, err := r.certificate(ctx, id)
	if err != nil {
		return HostResult{}, err
	}
	if !revoked && !c.Active() {
		return HostResult{}, fmt.Errorf("%w: %s was revoked from its zone; upload it again", ErrNotFound, c)
	}
	h, err := r.host(ctx, host)
	if err != nil {
		return HostResult{}, err
	}
	if !c.appliesTo(h) {
		return HostResult{}, fmt.Errorf("%w: %s is not for host %d (zone %d, %s)", ErrNotFound, c, h.ID, h.Zone, h.hypervisor())
	}
	unlock, err := r.lockHost(ctx, h.ID)
	if err != nil {
		return HostResult{}, err
	}
	defer unlock()
	states, err := r.db.HostStates(ctx, id, h.ID)
	if err != nil {
		return HostResult{}, err
	}
	s := HostState{Cert: id, Host: h.ID, Status: Pending, Updated: r.now().UTC()}
	if len(states) == 1 {
		s = states[0]
	}
	if s.Revoked != revoked {
		s.Revoked = revoked
		s.Updated = r.now().UTC()
		if err := r.db.PutHostState(ctx, s); err != nil {
			return HostResult{}, err
		}
	}
	if !h.Up {
		res := HostResult{Host: h.ID, Zone: h.Zone, Skipped: "host is not Up"}
		if !revoked {
			return res, fmt.Errorf("certstore: host %d is not Up; %s is recorded for it and Sync installs it when the host is Up", h.ID, c)
		}
		return res, nil
	}
	res := r.syncHostLocked(ctx, h)
	return res, res.Err
}

// host finds a host in the inventory.
func (r *Registry) host(ctx context.Context, id HostID) (Host, error) {
	if r.hosts == nil {
		return Host{}, errors.New("certstore: this registry has no hosts to reach")
	}
	hs, err := r.hosts.Hosts(ctx)
	if err != nil {
		return Host{}, fmt.Errorf("certstore: listing hosts: %w", err)
	}
	for _, h := range hs {
		if h.ID == id {
			return h, nil
		}
	}
	return Host{}, fmt.Errorf("%w: no host with id %d", ErrNotFound, id)
}

// ListOptions selects what List returns.
type ListOptions struct {
	Filter
	// Hosts fills each certificate's Hosts with its per-host state.
	Hosts bool
}

// List returns the registered certificates o selects, by id.
func (r *Registry) List(ctx context.Context, o ListOptions) ([]Certificate, error) {
	cs, err := r.db.Certificates(ctx, o.Filter)
	if err != nil {
		return nil, err
	}
	if o.Hosts {
		for i := range cs {
			if cs[i].Hosts, err = r.db.HostStates(ctx, cs[i].ID, 0); err != nil {
				return nil, err
			}
		}
	}
	return cs, nil
}

// Entries returns what a host of zone (with id host, or any host of the
// zone when zero) should trust: the entries of the zone's active
// certificates for hypervisor (KVM when empty), in id order. Write them
// with WriteJKS, WritePKCS12 or WritePEM, or make a pool with
// NewCertPool.
func (r *Registry) Entries(ctx context.Context, zone ZoneID, host HostID, hypervisor string) ([]Entry, error) {
	if hypervisor == "" {
		hypervisor = KVM
	}
	cs, err := r.db.Certificates(ctx, Filter{Zone: zone, Hypervisor: hypervisor})
	if err != nil {
		return nil, err
	}
	revoked := map[ID]bool{}
	if host != 0 {
		states, err := r.db.HostStates(ctx, 0, host)
		if err != nil {
			return nil, err
		}
		for _, s := range states {
			revoked[s.Cert] = s.Revoked
		}
	}
	var out []Entry
	for _, c := range cs {
		if (c.Host == 0 || c.Host == host) && !revoked[c.ID] {
			out = append(out, c.Entries()...)
		}
	}
	return out, nil
}

// Pool returns a pool of what hosts of zone trust (Entries for any host),
// for download.WithRootCAs.
func (r *Registry) Pool(ctx context.Context, zone ZoneID, hypervisor string) (*x509.CertPool, error) {
	es, err := r.Entries(ctx, zone, 0, hypervisor)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, e := range es {
		pool.AddCert(e.Cert)
	}
	return pool, nil
}

// ExpiryReport reports the expiry of every active certificate f selects,
// most urgent first, each named by its alias and zone.
func (r *Registry) ExpiryReport(ctx context.Context, f Filter) ([]ChainExpiry, error) {
	cs, err := r.db.Certificates(ctx, f)
	if err != nil {
		return nil, err
	}
	now := r.now()
	out := make([]ChainExpiry, 0, len(cs))
	for _, c := range cs {
		if !c.Active() {
			continue
		}
		out = append(out, CheckExpiry(fmt.Sprintf("%s (zone %d)", c.Alias, c.Zone), c.Entries(), now, r.thresholds))
	}
	SortExpiries(out)
	return out, nil
}
