package registrytest

import (
	"fmt"
	"time"

	"github.com/directdl/directdl/certstore"
)

var listTests = []test{
	{"filters", testListFilters},
	{"empty", testListEmpty},
}

// testListFilters checks every field of Filter, alone and together.
func testListFilters(e *env) {
	mk := func(alias string, zone certstore.ZoneID, host certstore.HostID, hv string) certstore.Certificate {
		c := cert(alias, 1)
		c.Zone, c.Host, c.Hypervisor = zone, host, hv
		return e.add(c)
	}
	revokedAt := base.Add(time.Hour)
	oldWeb := mk("web", 1, 0, "KVM")
	e.revoke(oldWeb.ID, revokedAt)
	oldWeb.Revoked = revokedAt
	web := mk("web", 1, 0, "KVM")
	web2 := mk("web", 2, 0, "kvm")
	db := mk("db", 1, 5, "VMware")
	upper := mk("Web", 1, 5, "XenServer")
	old := mk("old", 3, 0, "KVM")
	e.revoke(old.ID, revokedAt)
	old.Revoked = revokedAt
	// "\u212a" is KELVIN SIGN, which strings.EqualFold takes for k and K.
	kelvin := mk("kelvin", 5, 0, "\u212avm")

	type C = certstore.Certificate
	for _, tc := range []struct {
		f    certstore.Filter
		want []C
	}{
		{certstore.Filter{}, []C{web, web2, db, upper, kelvin}},
		{certstore.Filter{IncludeRevoked: true}, []C{oldWeb, web, web2, db, upper, old, kelvin}},
		{certstore.Filter{ID: web.ID}, []C{web}},
		{certstore.Filter{ID: oldWeb.ID}, nil},
		{certstore.Filter{ID: oldWeb.ID, IncludeRevoked: true}, []C{oldWeb}},
		{certstore.Filter{ID: kelvin.ID + 1000}, nil},
		{certstore.Filter{Zone: 1}, []C{web, db, upper}},
		{certstore.Filter{Zone: 1, IncludeRevoked: true}, []C{oldWeb, web, db, upper}},
		{certstore.Filter{Zone: 4}, nil},
		{certstore.Filter{Host: 5}, []C{db, upper}},
		{certstore.Filter{Host: 6}, nil},
		{certstore.Filter{Alias: "web"}, []C{web, web2}},
		{certstore.Filter{Alias: "web", IncludeRevoked: true}, []C{oldWeb, web, web2}},
		{certstore.Filter{Alias: "Web"}, []C{upper}},
		{certstore.Filter{Alias: "we"}, nil},
		{certstore.Filter{Hypervisor: "kvm"}, []C{web, web2, kelvin}},
		{certstore.Filter{Hypervisor: "KVM", IncludeRevoked: true}, []C{oldWeb, web, web2, old, kelvin}},
		{certstore.Filter{Hypervisor: "vmWARE"}, []C{db}},
		{certstore.Filter{Hypervisor: "xenserver"}, []C{upper}},
		{certstore.Filter{Hypervisor: "KV"}, nil},
		{certstore.Filter{Zone: 1, Alias: "web", Hypervisor: "Kvm"}, []C{web}},
		{certstore.Filter{Zone: 1, Host: 5, Hypervisor: "VMWARE"}, []C{db}},
		{certstore.Filter{Zone: 1, Host: 5, Alias: "web"}, nil},
		{certstore.Filter{ID: db.ID, Zone: 2}, nil},
	} {
		e.sameCerts(fmt.Sprintf("Certificates(%+v)", tc.f), e.list(tc.f), tc.want)
	}
}

// testListEmpty checks listings of an empty database.
func testListEmpty(e *env) {
	if cs := e.list(certstore.Filter{IncludeRevoked: true}); len(cs) != 0 {
		e.t.Errorf("Certificates of an empty database: got %d", len(cs))
	}
	if ss := e.states(0, 0); len(ss) != 0 {
		e.t.Errorf("HostStates of an empty database: got %d", len(ss))
	}
}
