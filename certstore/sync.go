package certstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
)

// HostResult is what one sync did on one host.
type HostResult struct {
	Host HostID
	Zone ZoneID
	// Added and Removed are the aliases imported into and deleted from
	// the host's trust store.
	Added   []string
	Removed []string
	// Synced counts the certificates confirmed present, by reading the
	// store back, and Failed those whose state is now Failed.
	Synced int
	Failed int
	// Skipped says why the host was left alone (it is not Up).
	Skipped string
	// Err joins what went wrong on this host.
	Err error
}

// SyncReport is the result of a Sync.
type SyncReport struct {
	Started, Finished time.Time
	// Hosts has one result per host the sync looked at, by host id.
	Hosts []HostResult
}

// Err joins the errors of every host, nil when all succeeded.
func (r SyncReport) Err() error {
	var errs []error
	for _, h := range r.Hosts {
		if h.Err != nil {
			errs = append(errs, fmt.Errorf("host %d: %w", h.Host, h.Err))
		}
	}
	return errors.Join(errs...)
}

// Sync brings every Up host's trust store in line with the registry: for
// each zone and each Up host, it reads the host's store, imports the
// zone's active certificates that are missing or differ (under their
// aliases), deletes certificates revoked from the zone or from that host
// (only where the alias still holds the revoked certificate), reads the
// store back, and records each certificate's state on the host: Synced
// only when the store read back holds it, Removed only when it does not
// hold a revoked one, Failed otherwise. Entries the registry does not know
// (the agent's own key, other tools' certificates) are left alone.
//
// Hosts are worked on WithConcurrency at a time, each within the host
// timeout; a failing host does not stop the others. The error is non-nil
// only when the hosts cannot be listed or ctx ends; per-host failures are
// in the report (SyncReport.Err joins them).
func (r *Registry) Sync(ctx context.Context) (SyncReport, error) {
	rep := SyncReport{Started: r.now()}
	hosts, err := r.syncWhere(ctx, func(Host) bool { return true })
	rep.Hosts = hosts
	rep.Finished = r.now()
	if err == nil {
		err = ctx.Err()
	}
	return rep, err
}

// RunSyncer runs Sync every interval until ctx ends, starting at once,
// and passes each report to report (which may be nil). It returns
// ctx.Err(). A failed Sync is logged and passed on; it does not stop the
// syncer. CloudStack's background task (direct.download.certificate.
// background.task.interval) is the same idea, off by default there.
func (r *Registry) RunSyncer(ctx context.Context, interval time.Duration, report func(SyncReport, error)) error {
	if interval <= 0 {
		return fmt.Errorf("certstore: sync interval must be positive, got %v", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rep, err := r.Sync(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			r.log.Warn("certstore: sync failed", "err", err)
		}
		if report != nil {
			report(rep, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// syncWhere syncs the hosts that match, concurrently, and returns their
// results by host id.
func (r *Registry) syncWhere(ctx context.Context, match func(Host) bool) ([]HostResult, error) {
	if r.hosts == nil {
		return nil, errors.New("certstore: this registry has no hosts to reach")
	}
	all, err := r.hosts.Hosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("certstore: listing hosts: %w", err)
	}
	var hosts []Host
	seen := map[HostID]bool{}
	for _, h := range all {
		if !match(h) {
			continue
		}
		if seen[h.ID] {
			return nil, fmt.Errorf("certstore: host id %d is listed twice", h.ID)
		}
		seen[h.ID] = true
		hosts = append(hosts, h)
	}
	results := make([]HostResult, len(hosts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.concurrency)
	for i, h := range hosts {
		if !h.Up {
			results[i] = HostResult{Host: h.ID, Zone: h.Zone, Skipped: "host is not Up"}
			continue
		}
		if h.Store == nil {
			results[i] = HostResult{Host: h.ID, Zone: h.Zone, Err: fmt.Errorf("certstore: host %d has no trust store to reach", h.ID)}
			continue
		}
		g.Go(func() error {
			unlock, err := r.lockHost(gctx, h.ID)
			if err != nil {
				results[i] = HostResult{Host: h.ID, Zone: h.Zone, Err: err}
				return nil
			}
			defer unlock()
			results[i] = r.syncHostLocked(gctx, h)
			return nil
		})
	}
	_ = g.Wait()
	slices.SortFunc(results, func(a, b HostResult) int { return cmp.Compare(a.Host, b.Host) })
	return results, ctx.Err()
}

// syncHostLocked syncs one host; the caller holds its lock. The
// certificates and host states are read here, under the lock, so a revoke
// recorded before the lock was taken is always seen.
func (r *Registry) syncHostLocked(ctx context.Context, h Host) HostResult {
	res := HostResult{Host: h.ID, Zone: h.Zone}
	// What happened is recorded even when the host's time ran out or the
	// caller gave up half way: a store that may have changed must not keep
	// a state that says otherwise.
	recCtx, cancelRec := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancelRec()
	ctx, cancel := context.WithTimeout(ctx, r.hostTimeout)
	defer cancel()

	certs, state, err := r.hostCertificates(ctx, h)
	if err != nil {
		res.Err = fmt.Errorf("reading the registry: %w", err)
		return res
	}

	// want: alias -> fingerprint the host must hold. Every other
	// certificate the host may hold on the registry's behalf is dropped:
	// revoked from the zone or from this host, or no longer for this host
	// (it moved to another zone). Dropped certificates are looked for at
	// every sync, whatever was recorded before, so one that comes back (a
	// store restored from a backup) is removed again.
	var wanted, dropped []Certificate
	want := map[string]string{}
	for _, c := range certs {
		if c.appliesTo(h) && c.Active() && !state[c.ID].Revoked {
			wanted = append(wanted, c)
			for _, e := range c.Entries() {
				want[e.Alias] = Fingerprint(e.Cert)
			}
		} else {
			dropped = append(dropped, c)
		}
	}
	if len(wanted) == 0 && len(dropped) == 0 {
		return res
	}

	var errs []error
	held, err := r.readStore(ctx, h)
	if err != nil {
		res.Err = err
		r.record(recCtx, h, wanted, dropped, want, state, nil, err, &res)
		return res
	}
	for _, c := range dropped {
		for _, e := range c.Entries() {
			a := e.Alias
			if _, ok := want[a]; ok || held[a] != Fingerprint(e.Cert) {
				continue
			}
			if err := h.Store.Delete(ctx, a); err != nil && !errors.Is(err, ErrNotFound) {
				errs = append(errs, fmt.Errorf("deleting %q: %w", a, err))
				continue
			}
			res.Removed = append(res.Removed, a)
		}
	}
	for _, c := range wanted {
		for _, e := range c.Entries() {
			a := e.Alias
			if held[a] == want[a] {
				continue
			}
			if err := h.Store.Import(ctx, Entry{Alias: a, Cert: e.Cert}); err != nil {
				errs = append(errs, fmt.Errorf("importing %q: %w", a, err))
				continue
			}
			res.Added = append(res.Added, a)
		}
	}
	after := held
	if len(res.Added)+len(res.Removed) > 0 || len(errs) > 0 {
		if after, err = r.readStore(ctx, h); err != nil {
			errs = append(errs, fmt.Errorf("reading back: %w", err))
			after = nil
		}
	}
	opErr := errors.Join(errs...)
	r.record(recCtx, h, wanted, dropped, want, state, after, opErr, &res)
	if res.Err == nil && res.Failed > 0 {
		res.Err = opErr
		if res.Err == nil {
			res.Err = errors.New("the trust store read back does not match what was written")
		}
	}
	if len(res.Added)+len(res.Removed) > 0 {
		r.log.Info("certstore: host synced", "host", h.ID, "zone", h.Zone, "added", res.Added, "removed", res.Removed)
	}
	if res.Err != nil {
		r.log.Warn("certstore: host sync failed", "host", h.ID, "zone", h.Zone, "err", res.Err)
	}
	return res
}

// readStore reads a host's trust store as alias -> fingerprint. Aliases
// are compared exactly: the registry's are lowercase, and an entry whose
// alias is not (as some tools write JKS files) is one Java ignores, so it
// does not count as holding the certificate.
func (r *Registry) readStore(ctx context.Context, h Host) (map[string]string, error) {
	entries, err := h.Store.Entries(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the trust store: %w", err)
	}
	held := make(map[string]string, len(entries))
	for _, e := range entries {
		if e.Cert != nil {
			held[e.Alias] = Fingerprint(e.Cert)
		}
	}
	return held, nil
}

// hostCertificates returns the certificates Sync must consider for h (its
// zone's, active or revoked, and any other the host has a recorded state
// for, such as those of a zone it left) and the host's states by
// certificate. It reads under the host's lock, so a revoke recorded before
// the lock was taken is always seen.
func (r *Registry) hostCertificates(ctx context.Context, h Host) ([]Certificate, map[ID]HostState, error) {
	certs, err := r.db.Certificates(ctx, Filter{Zone: h.Zone, Hypervisor: h.hypervisor(), IncludeRevoked: true})
	if err != nil {
		return nil, nil, err
	}
	states, err := r.db.HostStates(ctx, 0, h.ID)
	if err != nil {
		return nil, nil, err
	}
	state := make(map[ID]HostState, len(states))
	have := make(map[ID]bool, len(certs))
	for _, c := range certs {
		have[c.ID] = true
	}
	for _, s := range states {
		state[s.Cert] = s
		if have[s.Cert] {
			continue
		}
		cs, err := r.db.Certificates(ctx, Filter{ID: s.Cert, IncludeRevoked: true})
		if err != nil {
			return nil, nil, err
		}
		certs = append(certs, cs...)
		have[s.Cert] = true
	}
	return certs, state, nil
}

// record works out and stores each certificate's state on h from what the
// store held when read back (nil when it could not be read: every
// certificate failed with opErr). A dropped certificate counts as removed
// when none of its entries is held, except under an alias a wanted
// certificate holds with the same certificate (the same certificate
// uploaded again after a revoke).
func (r *Registry) record(ctx context.Context, h Host, wanted, dropped []Certificate, want map[string]string, state map[ID]HostState, after map[string]string, opErr error, res *HostResult) {
	now := r.now().UTC()
	isWanted := make(map[ID]bool, len(wanted))
	for _, c := range wanted {
		isWanted[c.ID] = true
	}
	for _, c := range append(slices.Clone(wanted), dropped...) {
		old, had := state[c.ID]
		if !had && !isWanted[c.ID] && after != nil && !holdsAny(after, c, want) {
			// Never installed here and not held: nothing to record.
			continue
		}
		s := HostState{Cert: c.ID, Host: h.ID, Revoked: old.Revoked}
		switch {
		case after == nil:
			s.Status, s.Error = Failed, errText(opErr)
		case isWanted[c.ID] && holdsAll(after, c):
			s.Status = Synced
		case isWanted[c.ID]:
			s.Status, s.Error = Failed, errText(opErr)
			if s.Error == "" {
				s.Error = "not in the trust store after importing it"
			}
		case !holdsAny(after, c, want):
			s.Status = Removed
		default:
			s.Status, s.Error = Failed, errText(opErr)
			if s.Error == "" {
				s.Error = "still in the trust store after deleting it"
			}
		}
		switch s.Status {
		case Synced:
			res.Synced++
		case Failed:
			res.Failed++
		}
		if had && old.Status == s.Status && old.Error == s.Error {
			continue
		}
		s.Updated = now
		if err := r.db.PutHostState(ctx, s); err != nil {
			res.Err = errors.Join(res.Err, fmt.Errorf("recording the state of %s: %w", c, err))
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func holdsAll(held map[string]string, c Certificate) bool {
	for _, e := range c.Entries() {
		if held[e.Alias] != Fingerprint(e.Cert) {
			return false
		}
	}
	return true
}

// holdsAny reports whether held has one of c's entries, other than under
// an alias that want gives the same certificate.
func holdsAny(held map[string]string, c Certificate, want map[string]string) bool {
	for _, e := range c.Entries() {
		fp := Fingerprint(e.Cert)
		if held[e.Alias] == fp && want[e.Alias] != fp {
			return true
		}
	}
	return false
}
