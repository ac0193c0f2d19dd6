package certstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
)

// regSetup is a registry over a MemoryDB and a changeable inventory.
func regSetup(t *testing.T, opts ...certstore.RegistryOption) (*certstore.Registry, *regHosts, certstore.Database) {
	t.Helper()
	db := certstore.NewMemoryDB()
	hosts := &regHosts{}
	reg, err := certstore.NewRegistry(db, hosts, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return reg, hosts, db
}

// regCheckSynced fails the test when a host is recorded as Synced for a
// certificate its store does not hold, or Removed for one it holds: the
// promise CloudStack's map rows break.
func regCheckSynced(t *testing.T, db certstore.Database, hosts *regHosts) {
	t.Helper()
	ctx := context.Background()
	certs, err := db.Certificates(ctx, certstore.Filter{IncludeRevoked: true})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[certstore.ID]certstore.Certificate{}
	for _, c := range certs {
		byID[c.ID] = c
	}
	stores := map[certstore.HostID]*regStore{}
	hs, _ := hosts.Hosts(ctx)
	for _, h := range hs {
		stores[h.ID] = h.Store.(*regStore)
	}
	states, err := db.HostStates(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// syncedAs: host -> alias -> fingerprint some certificate is recorded
	// Synced with there. A Removed certificate may still be held under an
	// alias that another, Synced certificate holds with the same bytes (the
	// same certificate uploaded again after a revoke).
	syncedAs := map[certstore.HostID]map[string]string{}
	for _, s := range states {
		if s.Status != certstore.Synced {
			continue
		}
		if syncedAs[s.Host] == nil {
			syncedAs[s.Host] = map[string]string{}
		}
		for _, e := range byID[s.Cert].Entries() {
			syncedAs[s.Host][e.Alias] = certstore.Fingerprint(e.Cert)
		}
	}
	for _, s := range states {
		c, st := byID[s.Cert], stores[s.Host]
		for _, e := range c.Entries() {
			fp := certstore.Fingerprint(e.Cert)
			held := st.holds(e.Alias) == fp
			if s.Status == certstore.Synced && !held {
				t.Errorf("host %d recorded synced for %s but its store does not hold %q", s.Host, c, e.Alias)
			}
			if s.Status == certstore.Removed && held && syncedAs[s.Host][e.Alias] != fp {
				t.Errorf("host %d recorded removed for %s but its store holds %q", s.Host, c, e.Alias)
			}
		}
	}
}

func regState(t *testing.T, db certstore.Database, cert certstore.ID, host certstore.HostID) certstore.HostState {
	t.Helper()
	ss, err := db.HostStates(context.Background(), cert, host)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 {
		return certstore.HostState{}
	}
	return ss[0]
}

func TestUploadInstallsOnUpHostsOfTheZone(t *testing.T) {
	ctx := context.Background()
	reg, hosts, db := regSetup(t)
	h1 := hosts.add(1, 1, true)
	h2 := hosts.add(2, 1, true)
	h3 := hosts.add(3, 1, false)
	h4 := hosts.add(4, 2, true)
	ca := regCA(t, "Mirror CA")
	res, err := reg.Upload(ctx, certstore.Upload{Alias: "mirror", PEM: regPEM(ca), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings for a valid CA: %v", res.Warnings)
	}
	fp := certstore.Fingerprint(ca.cert)
	for _, c := range []struct {
		store *regStore
		want  string
	}{{h1, fp}, {h2, fp}, {h3, ""}, {h4, ""}} {
		if got := c.store.holds("mirror"); got != c.want {
			t.Errorf("store holds %q under mirror, want %q", got, c.want)
		}
	}
	if len(res.Hosts) != 3 {
		t.Fatalf("upload reported %d hosts, want the zone's 3: %+v", len(res.Hosts), res.Hosts)
	}
	if res.Hosts[2].Skipped == "" || res.Hosts[0].Synced != 1 || len(res.Hosts[0].Added) != 1 {
		t.Errorf("host results: %+v", res.Hosts)
	}
	id := res.Certificate.ID
	if s := regState(t, db, id, 1); s.Status != certstore.Synced {
		t.Errorf("host 1 state %+v, want synced", s)
	}
	if s := regState(t, db, id, 3); s.Status != "" {
		t.Errorf("down host 3 has state %+v before it was ever reached", s)
	}
	regCheckSynced(t, db, hosts)

	// The down host comes up: the next sync installs it there only.
	hosts.setUp(3, true)
	rep, err := reg.Sync(ctx)
	if err != nil || rep.Err() != nil {
		t.Fatal(err, rep.Err())
	}
	if h3.holds("mirror") != fp {
		t.Error("host 3 did not get the certificate once Up")
	}
	for _, r := range rep.Hosts {
		if r.Host != 3 && len(r.Added) != 0 {
			t.Errorf("host %d changed again: %+v", r.Host, r)
		}
	}
	regCheckSynced(t, db, hosts)
}

func TestSyncNeverRecordsAFailedHostAsSynced(t *testing.T) {
	ctx := context.Background()
	reg, hosts, db := regSetup(t)
	good := hosts.add(1, 1, true)
	unreadable := hosts.add(2, 1, true)
	unwritable := hosts.add(3, 1, true)
	liar := hosts.add(4, 1, true)
	unreadable.set(func(s *regStore) { s.failRead = true })
	unwritable.set(func(s *regStore) { s.failWrite = true })
	liar.set(func(s *regStore) { s.lieImport = true })

	ca := regCA(t, "Mirror CA")
	res, err := reg.Upload(ctx, certstore.Upload{Alias: "mirror", PEM: regPEM(ca), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Certificate.ID
	wantErr := map[certstore.HostID]string{2: "agent unreachable", 3: "agent unreachable", 4: "not in the trust store after importing it"}
	for _, r := range res.Hosts {
		if r.Host == 1 {
			if r.Err != nil || r.Synced != 1 {
				t.Errorf("good host: %+v", r)
			}
			continue
		}
		if r.Err == nil || r.Failed != 1 || r.Synced != 0 {
			t.Errorf("host %d: result %+v, want a failure", r.Host, r)
		}
		s := regState(t, db, id, r.Host)
		if s.Status != certstore.Failed || !strings.Contains(s.Error, wantErr[r.Host]) {
			t.Errorf("host %d state %+v, want failed with %q", r.Host, s, wantErr[r.Host])
		}
	}
	if good.holds("mirror") == "" {
		t.Error("the good host does not hold the certificate")
	}
	regCheckSynced(t, db, hosts)

	// Still broken: still failed, never synced.
	if rep, _ := reg.Sync(ctx); rep.Err() == nil {
		t.Error("sync with three broken hosts reported no error")
	}
	regCheckSynced(t, db, hosts)

	// Repaired: the next sync gets them all.
	for _, s := range []*regStore{unreadable, unwritable, liar} {
		s.set(func(s *regStore) { s.failRead, s.failWrite, s.lieImport = false, false, false })
	}
	rep, err := reg.Sync(ctx)
	if err != nil || rep.Err() != nil {
		t.Fatalf("sync after repair: %v %v", err, rep.Err())
	}
	for h := certstore.HostID(1); h <= 4; h++ {
		if s := regState(t, db, id, h); s.Status != certstore.Synced || s.Error != "" {
			t.Errorf("host %d after repair: %+v", h, s)
		}
	}
	regCheckSynced(t, db, hosts)
}

func TestSyncRepairsDriftAndLeavesOtherEntries(t *testing.T) {
	ctx := context.Background()
	reg, hosts, db := regSetup(t)
	h := hosts.add(1, 1, true)
	other := regCA(t, "Agent CA")
	h.entries["cloudca"] = other.cert // the agent's own entry
	ca := regCA(t, "Mirror CA")
	res, err := reg.Upload(ctx, certstore.Upload{Alias: "mirror", PEM: regPEM(ca), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Someone removes it by hand; another replaces it with another cert.
	h.set(func(s *regStore) { delete(s.entries, "mirror") })
	if rep, _ := reg.Sync(ctx); h.holds("mirror") != certstore.Fingerprint(ca.cert) || len(rep.Hosts[0].Added) != 1 {
		t.Fatalf("deleted entry not restored: %+v", rep.Hosts)
	}
	h.set(func(s *regStore) { s.entries["mirror"] = other.cert })
	if _, err := reg.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if h.holds("mirror") != certstore.Fingerprint(ca.cert) {
		t.Error("replaced entry not restored")
	}
	if h.holds("cloudca") != certstore.Fingerprint(other.cert) {
		t.Error("sync touched an entry the registry does not own")
	}
	if s := regState(t, db, res.Certificate.ID, 1); s.Status != certstore.Synced {
		t.Errorf("state %+v", s)
	}
}

func TestRevokeFromZoneAndHost(t *testing.T) {
	ctx := context.Background()
	reg, hosts, db := regSetup(t)
	h1 := hosts.add(1, 1, true)
	h2 := hosts.add(2, 1, true)
	h3 := hosts.add(3, 1, true)
	a, b := regCA(t, "CA A"), regCA(t, "CA B")
	ra, err := reg.Upload(ctx, certstore.Upload{Alias: "a", PEM: regPEM(a), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := reg.Upload(ctx, certstore.Upload{Alias: "b", PEM: regPEM(b), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}

	// Revoke b from host 2 only.
	if _, err := reg.RevokeFromHost(ctx, rb.Certificate.ID, 2); err != nil {
		t.Fatal(err)
	}
	if h2.holds("b") != "" || h1.holds("b") == "" || h3.holds("b") == "" {
		t.Error("host revoke did not remove b from host 2 alone")
	}
	if _, err := reg.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if h2.holds("b") != "" {
		t.Error("sync installed b again on the host it was revoked from")
	}
	if s := regState(t, db, rb.Certificate.ID, 2); !s.Revoked || s.Status != certstore.Removed {
		t.Errorf("host 2 state for b: %+v", s)
	}
	// Provision puts it back.
	if _, err := reg.Provision(ctx, rb.Certificate.ID, 2); err != nil {
		t.Fatal(err)
	}
	if h2.holds("b") == "" {
		t.Error("provision did not reinstall b")
	}

	// Revoke a from the zone while host 3 is down: removed from 1 and 2
	// now, from 3 once it is back.
	hosts.setUp(3, false)
	if _, err := reg.Revoke(ctx, ra.Certificate.ID, 2); !errors.Is(err, certstore.ErrNotFound) {
		t.Errorf("revoke naming the wrong zone: %v", err)
	}
	if _, err := reg.Revoke(ctx, ra.Certificate.ID, 1); err != nil {
		t.Fatal(err)
	}
	if h1.holds("a") != "" || h2.holds("a") != "" || h3.holds("a") == "" {
		t.Error("zone revoke: wrong hosts changed")
	}
	hosts.setUp(3, true)
	if _, err := reg.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if h3.holds("a") != "" {
		t.Error("host back up still holds the revoked certificate")
	}
	if h3.holds("b") == "" {
		t.Error("revoking a removed b")
	}
	regCheckSynced(t, db, hosts)

	// The alias is free again; an alias held by a foreign certificate is
	// not deleted when the revoked one is not there.
	h1.set(func(s *regStore) { s.entries["a"] = b.cert })
	if _, err := reg.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if h1.holds("a") != certstore.Fingerprint(b.cert) {
		t.Error("sync deleted an alias that no longer holds the revoked certificate")
	}
	if _, err := reg.Upload(ctx, certstore.Upload{Alias: "a", PEM: regPEM(a), Zone: 1}); err != nil {
		t.Errorf("upload of a revoked alias again: %v", err)
	}
	if h1.holds("a") != certstore.Fingerprint(a.cert) {
		t.Error("re-uploaded certificate not installed over the foreign one")
	}
	regCheckSynced(t, db, hosts)

	list, err := reg.List(ctx, certstore.ListOptions{Filter: certstore.Filter{Zone: 1, IncludeRevoked: true}, Hosts: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].Active() || len(list[0].Hosts) != 3 {
		t.Fatalf("list: %+v", list)
	}
	for _, s := range list[0].Hosts {
		if s.Status != certstore.Removed {
			t.Errorf("revoked certificate on host %d: %s, want removed", s.Host, s.Status)
		}
	}
}

func TestUploadValidation(t *testing.T) {
	ctx := context.Background()
	reg, _, _ := regSetup(t)
	now := time.Now()
	ca := regCA(t, "Root")
	inter := regMake(t, "Intermediate", true, ca, now.Add(-time.Hour), now.AddDate(0, 6, 0))
	leaf := regMake(t, "mirror.test", false, inter, now.Add(-time.Hour), now.AddDate(0, 0, 20))
	expired := regMake(t, "Old CA", true, nil, now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0))
	future := regMake(t, "New CA", true, nil, now.Add(time.Hour), now.AddDate(1, 0, 0))
	for _, c := range []struct {
		name  string
		u     certstore.Upload
		want  error
		inMsg string
	}{
		{"uppercase alias", certstore.Upload{Alias: "Mirror", PEM: regPEM(ca), Zone: 1}, certstore.ErrInvalidAlias, "lowercase"},
		{"reserved cloud", certstore.Upload{Alias: "cloud", PEM: regPEM(ca), Zone: 1}, certstore.ErrInvalidAlias, "reserved"},
		{"reserved cloudca", certstore.Upload{Alias: "cloudca-x", PEM: regPEM(ca), Zone: 1}, certstore.ErrInvalidAlias, "reserved"},
		{"dot", certstore.Upload{Alias: "a.b", PEM: regPEM(ca), Zone: 1}, certstore.ErrInvalidAlias, `'.'`},
		{"expired", certstore.Upload{Alias: "old", PEM: regPEM(expired), Zone: 1}, certstore.ErrExpired, "Old CA"},
		{"not yet valid", certstore.Upload{Alias: "new", PEM: regPEM(future), Zone: 1}, certstore.ErrNotYetValid, "New CA"},
		{"garbage", certstore.Upload{Alias: "g", PEM: []byte("hello"), Zone: 1}, certstore.ErrInvalidCertificate, "base64"},
		{"key block", certstore.Upload{Alias: "k", PEM: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), Zone: 1}, certstore.ErrInvalidCertificate, "PRIVATE KEY"},
		{"expired in bundle", certstore.Upload{Alias: "b", PEM: regPEM(ca, expired), Zone: 1}, certstore.ErrExpired, "certificate 2"},
		{"alias too long for bundle", certstore.Upload{Alias: strings.Repeat("x", 62), PEM: regPEM(ca, inter), Zone: 1}, certstore.ErrInvalidAlias, "more than 63"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := reg.Upload(ctx, c.u)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.inMsg) {
				t.Errorf("got %v, want %v mentioning %q", err, c.want, c.inMsg)
			}
		})
	}
	if _, err := reg.Upload(ctx, certstore.Upload{Alias: "z", PEM: regPEM(ca)}); err == nil {
		t.Error("upload without a zone accepted")
	}

	// A leaf: accepted, with a warning naming the issuer to trust
	// instead, and an expiry warning (20 days left).
	res, err := reg.Upload(ctx, certstore.Upload{Alias: "pinned", PEM: regPEM(leaf), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, w := range res.Warnings {
		codes[w.Code] = w.Message
	}
	if !strings.Contains(codes[certstore.WarnNotCA], "Intermediate") {
		t.Errorf("not-a-ca warning %q does not name the issuer", codes[certstore.WarnNotCA])
	}
	if !strings.Contains(codes[certstore.WarnExpiring], "days left") {
		t.Errorf("no expiry warning in %v", res.Warnings)
	}

	// A bundle: one certificate, aliases a, a-2, a-3, all validated, and
	// each alias counts for duplicates.
	res, err = reg.Upload(ctx, certstore.Upload{Alias: "chain", PEM: regPEM(leaf, inter, ca), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Certificate.EntryAliases(), ","); got != "chain,chain-2,chain-3" {
		t.Errorf("entry aliases %s", got)
	}
	if !strings.Contains(res.Warnings[0].Message, "also in this upload") {
		t.Errorf("leaf warning does not point at the intermediate of the same upload: %s", res.Warnings[0].Message)
	}
	for _, alias := range []string{"chain", "chain-2"} {
		_, err := reg.Upload(ctx, certstore.Upload{Alias: alias, PEM: regPEM(ca), Zone: 1})
		if !errors.Is(err, certstore.ErrDuplicateAlias) {
			t.Errorf("upload of %q over a bundle's alias: %v", alias, err)
		}
	}
	if _, err := reg.Upload(ctx, certstore.Upload{Alias: "chain", PEM: regPEM(ca), Zone: 2}); err != nil {
		t.Errorf("same alias in another zone: %v", err)
	}
	if _, err := reg.Upload(ctx, certstore.Upload{Alias: "chain", PEM: regPEM(ca), Zone: 1, Hypervisor: "XenServer"}); err != nil {
		t.Errorf("same alias for another hypervisor: %v", err)
	}
}

func TestHostScopedCertificate(t *testing.T) {
	ctx := context.Background()
	reg, hosts, _ := regSetup(t)
	h1 := hosts.add(1, 1, true)
	h2 := hosts.add(2, 1, true)
	ca := regCA(t, "Only Host 2")
	res, err := reg.Upload(ctx, certstore.Upload{Alias: "h2only", PEM: regPEM(ca), Zone: 1, Host: 2})
	if err != nil {
		t.Fatal(err)
	}
	if h1.holds("h2only") != "" || h2.holds("h2only") == "" {
		t.Error("host-scoped certificate on the wrong hosts")
	}
	if len(res.Hosts) != 1 || res.Hosts[0].Host != 2 {
		t.Errorf("upload results %+v, want host 2 only", res.Hosts)
	}
	es, err := reg.Entries(ctx, 1, 2, "")
	if err != nil || len(es) != 1 {
		t.Fatalf("entries for host 2: %v %v", es, err)
	}
	es, err = reg.Entries(ctx, 1, 1, "")
	if err != nil || len(es) != 0 {
		t.Fatalf("entries for host 1: %v %v", es, err)
	}
	if _, err := reg.Provision(ctx, res.Certificate.ID, 1); !errors.Is(err, certstore.ErrNotFound) {
		t.Errorf("provision of a host-scoped certificate to another host: %v", err)
	}
}

// TestSyncConcurrentWithRevokes runs syncs, revokes and provisions at
// once; whatever the interleaving, no host is recorded synced without
// holding the certificate (run with -race).
func TestSyncConcurrentWithRevokes(t *testing.T) {
	ctx := context.Background()
	reg, hosts, db := regSetup(t, certstore.WithConcurrency(4))
	for i := certstore.HostID(1); i <= 8; i++ {
		hosts.add(i, 1, true)
	}
	var ids []certstore.ID
	for _, alias := range []string{"a", "b", "c"} {
		res, err := reg.Upload(ctx, certstore.Upload{Alias: alias, PEM: regPEM(regCA(t, alias)), Zone: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Certificate.ID)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				id, host := ids[(w+i)%len(ids)], certstore.HostID(1+(w*3+i)%8)
				switch i % 3 {
				case 0:
					_, _ = reg.Sync(ctx)
				case 1:
					_, _ = reg.RevokeFromHost(ctx, id, host)
				case 2:
					_, _ = reg.Provision(ctx, id, host)
				}
			}
		}()
	}
	wg.Wait()
	if _, err := reg.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	regCheckSynced(t, db, hosts)
	states, _ := db.HostStates(ctx, 0, 0)
	for _, s := range states {
		if !s.Revoked && s.Status != certstore.Synced {
			t.Errorf("after a final sync, %+v is not synced", s)
		}
	}
}

func TestRunSyncer(t *testing.T) {
	reg, hosts, _ := regSetup(t)
	h := hosts.add(1, 1, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := reg.Upload(ctx, certstore.Upload{Alias: "a", PEM: regPEM(regCA(t, "A")), Zone: 1}); err != nil {
		t.Fatal(err)
	}
	var runs int
	err := reg.RunSyncer(ctx, time.Millisecond, func(rep certstore.SyncReport, err error) {
		runs++
		if err != nil || len(rep.Hosts) != 1 {
			t.Errorf("run %d: %v %+v", runs, err, rep)
		}
		// Between runs the entry disappears; each run restores it.
		if h.holds("a") == "" {
			t.Errorf("run %d did not restore the entry", runs)
		}
		h.set(func(s *regStore) { delete(s.entries, "a") })
		if runs == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || runs != 3 {
		t.Errorf("RunSyncer returned %v after %d runs", err, runs)
	}
	if err := reg.RunSyncer(ctx, 0, nil); err == nil {
		t.Error("zero interval accepted")
	}
}

func TestSyncHostTimeout(t *testing.T) {
	reg, hosts, db := regSetup(t, certstore.WithHostTimeout(50*time.Millisecond))
	slow := hosts.add(1, 1, true)
	fast := hosts.add(2, 1, true)
	slow.set(func(s *regStore) { s.latency = time.Hour })
	res, err := reg.Upload(context.Background(), certstore.Upload{Alias: "a", PEM: regPEM(regCA(t, "A")), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.Hosts[0].Err, context.DeadlineExceeded) {
		t.Errorf("slow host: %v", res.Hosts[0].Err)
	}
	if fast.holds("a") == "" {
		t.Error("a slow host held up the others")
	}
	if s := regState(t, db, res.Certificate.ID, 1); s.Status != certstore.Failed {
		t.Errorf("slow host state %+v", s)
	}
}

// TestSyncRandomHistories runs random histories of uploads, revokes,
// provisions, hosts going down, moving zone and failing, then repairs the
// hosts and syncs: whatever happened, the final sync succeeds, every host
// holds exactly what the registry wants of it, and no recorded state
// contradicts a store.
func TestSyncRandomHistories(t *testing.T) {
	for seed := range 40 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(seed), 7))
			ctx := context.Background()
			reg, hosts, db := regSetup(t, certstore.WithConcurrency(3))
			for i := certstore.HostID(1); i <= 5; i++ {
				hosts.add(i, certstore.ZoneID(1+rng.IntN(2)), true)
			}
			cas := []*regCert{regCA(t, "A"), regCA(t, "B"), regCA(t, "C")}
			var ids []certstore.ID
			for range 60 {
				host := certstore.HostID(1 + rng.IntN(5))
				switch op := rng.IntN(9); {
				case op == 0 || len(ids) == 0:
					alias := []string{"a", "b", "c"}[rng.IntN(3)]
					res, err := reg.Upload(ctx, certstore.Upload{Alias: alias, PEM: regPEM(cas[rng.IntN(3)]), Zone: certstore.ZoneID(1 + rng.IntN(2))})
					if err == nil {
						ids = append(ids, res.Certificate.ID)
					} else if !errors.Is(err, certstore.ErrDuplicateAlias) {
						t.Fatal(err)
					}
				case op == 1:
					id := ids[rng.IntN(len(ids))]
					cs, _ := db.Certificates(ctx, certstore.Filter{ID: id, IncludeRevoked: true})
					_, _ = reg.Revoke(ctx, id, cs[0].Zone)
				case op == 2:
					_, _ = reg.RevokeFromHost(ctx, ids[rng.IntN(len(ids))], host)
				case op == 3:
					_, _ = reg.Provision(ctx, ids[rng.IntN(len(ids))], host)
				case op == 4:
					hosts.setUp(host, rng.IntN(2) == 0)
				case op == 5:
					rvMoveHost(hosts, host, certstore.ZoneID(1+rng.IntN(2)))
				case op == 6:
					hs, _ := hosts.Hosts(ctx)
					hs[host-1].Store.(*regStore).set(func(s *regStore) {
						s.failRead, s.failWrite, s.lieImport = rng.IntN(4) == 0, rng.IntN(4) == 0, rng.IntN(4) == 0
					})
				case op == 7 && seed%2 == 1:
					// Drift: an entry disappears or comes back behind the
					// registry's back (odd seeds only: a recorded state is
					// what was last confirmed, so drift makes it stale until
					// the next sync, and even seeds check states throughout).
					hs, _ := hosts.Hosts(ctx)
					c := cas[rng.IntN(3)]
					hs[host-1].Store.(*regStore).set(func(s *regStore) {
						alias := []string{"a", "b", "c"}[rng.IntN(3)]
						if rng.IntN(2) == 0 {
							delete(s.entries, alias)
						} else {
							s.entries[alias] = c.cert
						}
					})
				default:
					_, _ = reg.Sync(ctx)
				}
				if seed%2 == 0 {
					regCheckSynced(t, db, hosts)
				}
			}
			hs, _ := hosts.Hosts(ctx)
			for _, h := range hs {
				hosts.setUp(h.ID, true)
				h.Store.(*regStore).set(func(s *regStore) { s.failRead, s.failWrite, s.lieImport = false, false, false })
			}
			rep, err := reg.Sync(ctx)
			if err != nil || rep.Err() != nil {
				t.Fatalf("final sync: %v %v", err, rep.Err())
			}
			regCheckSynced(t, db, hosts)
			hs, _ = hosts.Hosts(ctx)
			for _, h := range hs {
				want, err := reg.Entries(ctx, h.Zone, h.ID, "")
				if err != nil {
					t.Fatal(err)
				}
				st := h.Store.(*regStore)
				for _, e := range want {
					if st.holds(e.Alias) != certstore.Fingerprint(e.Cert) {
						t.Errorf("host %d (zone %d) lacks %q", h.ID, h.Zone, e.Alias)
					}
				}
				// Nothing revoked or of another zone is left, unless a
				// wanted certificate holds the same alias.
				wanted := map[string]bool{}
				for _, e := range want {
					wanted[e.Alias] = true
				}
				all, _ := db.Certificates(ctx, certstore.Filter{IncludeRevoked: true})
				for _, c := range all {
					for _, e := range c.Entries() {
						if !wanted[e.Alias] && st.holds(e.Alias) == certstore.Fingerprint(e.Cert) {
							if ss, _ := db.HostStates(ctx, c.ID, h.ID); len(ss) == 1 {
								t.Errorf("host %d still holds %q of %s, recorded %s", h.ID, e.Alias, c, ss[0].Status)
							}
						}
					}
				}
			}
		})
	}
}
