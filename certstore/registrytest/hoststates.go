package registrytest

import (
	"fmt"
	"time"

	"github.com/directdl/directdl/certstore"
)

var hostStateTests = []test{
	{"round-trip", testStatesRoundTrip},
	{"upsert", testStatesUpsert},
	{"unknown-certificate", testStatesUnknown},
	{"order-and-filters", testStatesOrder},
	{"revoked-certificate", testStatesRevoked},
}

// testStatesRoundTrip checks that every field comes back as given.
func testStatesRoundTrip(e *env) {
	c := e.add(cert("web", 1))
	want := []certstore.HostState{
		{Cert: c.ID, Host: 3, Revoked: true, Status: certstore.Failed,
			Error: "keytool: keystore was tampered with, or password was incorrect ✗", Updated: base.Add(123456789)},
		{Cert: c.ID, Host: 4, Status: certstore.Synced, Updated: base.Add(time.Hour)},
		{Cert: c.ID, Host: 5, Status: certstore.Pending},
		{Cert: c.ID, Host: 6, Status: certstore.Removed, Updated: base},
	}
	for _, s := range want {
		e.put(s)
	}
	e.sameStates("HostStates", e.states(c.ID, 0), want)
	for _, s := range want {
		if got := e.states(c.ID, s.Host); len(got) != 1 || got[0].Updated.Location() != time.UTC {
			e.t.Errorf("HostStates(%d, %d): got %+v, want one state with Updated in UTC", c.ID, s.Host, got)
		}
	}
}

// testStatesUpsert checks that PutHostState replaces every field of the
// state of a (certificate, host) pair, and only that pair's.
func testStatesUpsert(e *env) {
	c := e.add(cert("web", 1))
	other := e.add(cert("api", 1))
	e.put(certstore.HostState{Cert: c.ID, Host: 1, Revoked: true, Status: certstore.Failed, Error: "host down", Updated: base})
	keep := certstore.HostState{Cert: other.ID, Host: 1, Status: certstore.Synced, Updated: base}
	e.put(keep)
	replaced := certstore.HostState{Cert: c.ID, Host: 1, Status: certstore.Synced, Updated: base.Add(time.Minute)}
	e.put(replaced)
	e.sameStates("HostStates after replacing", e.states(0, 0), []certstore.HostState{replaced, keep})
}

func testStatesUnknown(e *env) {
	err := e.db.PutHostState(e.ctx, certstore.HostState{Cert: 1, Host: 1, Status: certstore.Pending, Updated: base})
	e.is(err, certstore.ErrNotFound, "PutHostState of certificate 1 in an empty database")
	c := e.add(cert("web", 1))
	err = e.db.PutHostState(e.ctx, certstore.HostState{Cert: c.ID + 1000, Host: 1, Status: certstore.Pending, Updated: base})
	e.is(err, certstore.ErrNotFound, "PutHostState of unknown certificate %d", c.ID+1000)
	if ss := e.states(0, 0); len(ss) != 0 {
		e.t.Errorf("HostStates after refused PutHostState: got %+v, want none", ss)
	}
}

// testStatesOrder puts states in a shuffled order and reads them back by
// certificate, then host, with every filter.
func testStatesOrder(e *env) {
	var certs []certstore.ID
	for _, a := range []string{"a", "b", "c"} {
		certs = append(certs, e.add(cert(a, 1)).ID)
	}
	hosts := []certstore.HostID{30, 4, 200}
	state := func(c certstore.ID, h certstore.HostID) certstore.HostState {
		return certstore.HostState{Cert: c, Host: h, Status: certstore.Synced, Error: fmt.Sprintf("%d@%d", c, h), Updated: base}
	}
	// Last certificate first, hosts in neither order.
	for i := len(certs) - 1; i >= 0; i-- {
		for _, h := range hosts {
			e.put(state(certs[i], h))
		}
	}
	sorted := []certstore.HostID{4, 30, 200}
	var all []certstore.HostState
	for _, c := range certs {
		for _, h := range sorted {
			all = append(all, state(c, h))
		}
	}
	e.sameStates("HostStates(0, 0)", e.states(0, 0), all)
	e.sameStates(fmt.Sprintf("HostStates(%d, 0)", certs[1]), e.states(certs[1], 0),
		[]certstore.HostState{state(certs[1], 4), state(certs[1], 30), state(certs[1], 200)})
	e.sameStates("HostStates(0, 30)", e.states(0, 30),
		[]certstore.HostState{state(certs[0], 30), state(certs[1], 30), state(certs[2], 30)})
	e.sameStates(fmt.Sprintf("HostStates(%d, 200)", certs[2]), e.states(certs[2], 200), []certstore.HostState{state(certs[2], 200)})
	e.sameStates("HostStates(0, 5)", e.states(0, 5), nil)
	e.sameStates(fmt.Sprintf("HostStates(%d, 0)", certs[2]+1000), e.states(certs[2]+1000, 0), nil)
}

// testStatesRevoked checks that a revoked certificate's states stay and can
// be written: Sync records the removal from each host after a revocation.
func testStatesRevoked(e *env) {
	c := e.add(cert("web", 1))
	synced := certstore.HostState{Cert: c.ID, Host: 1, Status: certstore.Synced, Updated: base}
	e.put(synced)
	e.revoke(c.ID, base.Add(time.Hour))
	e.sameStates("HostStates after revoking", e.states(c.ID, 0), []certstore.HostState{synced})
	removed := certstore.HostState{Cert: c.ID, Host: 1, Status: certstore.Removed, Updated: base.Add(2 * time.Hour)}
	e.put(removed)
	e.sameStates("HostStates after recording the removal", e.states(c.ID, 0), []certstore.HostState{removed})
}
