package registrytest

import (
	"cmp"
	"slices"
	"time"

	"github.com/directdl/directdl/certstore"
)

var reopenTests = []test{
	{"persists", testReopenPersists},
}

// testReopenPersists checks that certificates, revocations, host states
// and the aliases they hold survive a restart, and that IDs carry on.
func testReopenPersists(e *env) {
	web := cert("web", 3)
	web.Host, web.Hypervisor = 9, "kvm"
	web = e.add(web)
	old := e.add(cert("old", 2))
	e.revoke(old.ID, base.Add(time.Hour))
	old.Revoked = base.Add(time.Hour)
	other := cert("web", 1)
	other.Zone = 2
	other = e.add(other)
	states := []certstore.HostState{
		{Cert: web.ID, Host: 9, Status: certstore.Failed, Error: "connection refused", Updated: base.Add(time.Second)},
		{Cert: old.ID, Host: 1, Revoked: true, Status: certstore.Removed, Updated: base.Add(2 * time.Hour)},
		{Cert: old.ID, Host: 2, Status: certstore.Synced, Updated: base},
	}
	for _, s := range states {
		e.put(s)
	}
	before := []certstore.Certificate{web, old, other}

	e.reopen()

	e.sameCerts("Certificates after reopening", e.list(certstore.Filter{IncludeRevoked: true}), before)
	e.sameStates("HostStates after reopening", e.states(0, 0), sortStates(states))

	// The aliases the certificates hold are still taken, and the revoked
	// one's still free.
	c := cert("web-3", 1)
	_, err := e.db.AddCertificate(e.ctx, c)
	e.isDuplicate("AddCertificate(web-3) after reopening", err, c, web, "web-3")
	again := e.add(cert("old", 2))
	for _, b := range before {
		if again.ID == b.ID {
			e.t.Errorf("AddCertificate after reopening: got ID %d, which %s has", again.ID, b)
		}
	}

	// Revocation still keeps its first time, and works on what was added
	// before.
	e.revoke(old.ID, base.Add(3*time.Hour))
	e.revoke(web.ID, base.Add(4*time.Hour))
	web.Revoked = base.Add(4 * time.Hour)
	e.sameCerts("Certificates after revoking after reopening", e.list(certstore.Filter{IncludeRevoked: true}),
		[]certstore.Certificate{web, old, other, again})
	e.put(certstore.HostState{Cert: web.ID, Host: 9, Status: certstore.Removed, Updated: base.Add(5 * time.Hour)})
	if got := e.states(web.ID, 9); len(got) != 1 || got[0].Status != certstore.Removed {
		e.t.Errorf("HostStates(%d, 9) after reopening and replacing: got %+v", web.ID, got)
	}
}

// sortStates returns states by certificate, then host.
func sortStates(states []certstore.HostState) []certstore.HostState {
	out := slices.Clone(states)
	slices.SortFunc(out, func(a, b certstore.HostState) int {
		return cmp.Or(cmp.Compare(a.Cert, b.Cert), cmp.Compare(a.Host, b.Host))
	})
	return out
}
