package registrytest

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/directdl/directdl/certstore"
)

var addTests = []test{
	{"ids", testAddIDs},
	{"fields", testAddFields},
	{"chains", testAddChains},
	{"times", testAddTimes},
	{"copies", testAddCopies},
}

// testAddIDs checks that IDs are above zero and distinct, that the returned
// copy carries its ID, and that the ID given is ignored.
func testAddIDs(e *env) {
	seen := map[certstore.ID]bool{}
	var added []certstore.Certificate
	for i, alias := range []string{"a", "b", "c", "d"} {
		c := cert(alias, 1)
		if i >= 2 {
			c.ID = 7 // ignored: the database gives the ID
		}
		got := e.add(c)
		if seen[got.ID] {
			e.t.Errorf("AddCertificate(%q): got ID %d again", alias, got.ID)
		}
		seen[got.ID] = true
		added = append(added, got)
	}
	for _, a := range added {
		e.sameCert(fmt.Sprintf("certificate %d, as AddCertificate returned it", a.ID), e.get(a.ID), a)
	}
	want := slices.Clone(added)
	slices.SortFunc(want, func(a, b certstore.Certificate) int { return cmp.Compare(a.ID, b.ID) })
	e.sameCerts("Certificates", e.list(certstore.Filter{}), want)
}

// testAddFields checks that every field is stored as given, and that the
// returned copy is what was given with its ID.
func testAddFields(e *env) {
	c := certstore.Certificate{
		Alias:      "Mirror-CA",
		Zone:       42,
		Host:       7,
		Hypervisor: "VMware",
		Chain:      Chain(2),
		Created:    base,
		Hosts:      []certstore.HostState{{Host: 7, Status: certstore.Synced}},
	}
	got := e.add(c)
	want := c
	want.ID, want.Hosts = got.ID, nil
	e.sameCert("AddCertificate's copy", got, want)
	e.sameCert("Certificates", e.get(got.ID), want)
	if states := e.states(got.ID, 0); len(states) != 0 {
		e.t.Errorf("HostStates of a new certificate given Hosts: got %+v, want none (Hosts is not stored)", states)
	}

	zoneWide := cert("zone-wide", 1)
	zoneWide.Zone, zoneWide.Hypervisor = 42, "kvm"
	zw := e.add(zoneWide)
	e.sameCert("Certificates of a zone-wide certificate", e.get(zw.ID), zw)
	if zw.Host != 0 {
		e.t.Errorf("zone-wide certificate: got Host %d, want 0", zw.Host)
	}
}

// testAddChains checks that chains of 1 and 3 certificates come back byte
// for byte, in their order.
func testAddChains(e *env) {
	for _, n := range []int{1, 3} {
		c := cert("chain", n)
		c.Zone = certstore.ZoneID(n)
		got := e.add(c)
		stored := e.get(got.ID)
		if len(stored.Chain) != n {
			e.t.Errorf("chain of %d: got %d certificates back", n, len(stored.Chain))
		}
		e.sameCert(fmt.Sprintf("chain of %d", n), stored, got)
		if !slices.Equal(stored.EntryAliases(), c.EntryAliases()) {
			e.t.Errorf("chain of %d: got entry aliases %v, want %v", n, stored.EntryAliases(), c.EntryAliases())
		}
	}
	// A chain given in an order that is not the signing order is kept as
	// given: the database stores, it does not sort.
	reversed := Chain(3)
	slices.Reverse(reversed)
	c := cert("reversed", 3)
	c.Chain = reversed
	got := e.add(c)
	e.sameCert("reversed chain", e.get(got.ID), got)
}

// testAddTimes checks that Created and Revoked come back to the nanosecond,
// in UTC, and that a time in another zone comes back as the same instant.
func testAddTimes(e *env) {
	c := cert("times", 1)
	c.Created = base
	got := e.add(c)
	stored := e.get(got.ID)
	if !stored.Created.Equal(base) {
		e.t.Errorf("Created: got %v, want %v (to the nanosecond)", stored.Created, base)
	}
	if stored.Created.Location() != time.UTC {
		e.t.Errorf("Created: got location %v, want UTC", stored.Created.Location())
	}

	revokedAt := base.Add(36*time.Hour + 999_999_999)
	e.revoke(got.ID, revokedAt)
	stored = e.get(got.ID)
	if !stored.Revoked.Equal(revokedAt) || stored.Revoked.Location() != time.UTC {
		e.t.Errorf("Revoked: got %v, want %v in UTC (to the nanosecond)", stored.Revoked, revokedAt)
	}
	if !stored.Created.Equal(base) {
		e.t.Errorf("Created after revoking: got %v, want %v", stored.Created, base)
	}

	india := time.FixedZone("IST", 5*3600+1800)
	local := cert("local", 1)
	local.Created = time.Date(2030, time.December, 31, 23, 59, 59, 1, india)
	got = e.add(local)
	if stored := e.get(got.ID); !stored.Created.Equal(local.Created) {
		e.t.Errorf("Created given in %v: got %v, want the instant %v", india, stored.Created, local.Created)
	}
}

// testAddCopies checks that the database keeps its own copy: changing the
// slices given or returned changes nothing stored.
func testAddCopies(e *env) {
	c := cert("copies", 2)
	want := slices.Clone(c.Chain)
	got := e.add(c)
	other := Chain(2)
	c.Chain[0], c.Chain[1] = other[0], other[1]
	if !sameDER(e.get(got.ID).Chain, want) {
		e.t.Error("changing the chain slice given to AddCertificate changed the stored chain")
	}
	listed := e.list(certstore.Filter{ID: got.ID})
	listed[0].Chain[0] = other[0]
	listed[0].Alias = "changed"
	again := e.get(got.ID)
	if !sameDER(again.Chain, want) || again.Alias != "copies" {
		e.t.Error("changing what Certificates returned changed the stored certificate")
	}
}
