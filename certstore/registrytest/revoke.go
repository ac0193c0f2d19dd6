package registrytest

import (
	"time"

	"github.com/directdl/directdl/certstore"
)

var revokeTests = []test{
	{"not-found", testRevokeNotFound},
	{"twice", testRevokeTwice},
	{"alias-reusable", testRevokeAliasReusable},
}

func testRevokeNotFound(e *env) {
	err := e.db.RevokeCertificate(e.ctx, 1, base)
	e.is(err, certstore.ErrNotFound, "RevokeCertificate(1) in an empty database")
	c := e.add(cert("web", 1))
	err = e.db.RevokeCertificate(e.ctx, c.ID+1000, base)
	e.is(err, certstore.ErrNotFound, "RevokeCertificate(%d) of an unknown ID", c.ID+1000)
	e.sameCert("certificate after revoking another ID", e.get(c.ID), c)
}

// testRevokeTwice checks that revoking again keeps the first time.
func testRevokeTwice(e *env) {
	c := e.add(cert("web", 2))
	first := base.Add(90 * time.Minute)
	e.revoke(c.ID, first)
	e.revoke(c.ID, first.Add(time.Hour))
	got := e.get(c.ID)
	if got.Active() || !sameTime(got.Revoked, first) {
		e.t.Errorf("revoked at %v, then at %v: got Revoked %v, want the first time", first, first.Add(time.Hour), got.Revoked)
	}
	if cs := e.list(certstore.Filter{}); len(cs) != 0 {
		e.t.Errorf("Certificates without IncludeRevoked: got %v, want none", ids(cs))
	}
}

// testRevokeAliasReusable checks that a revoked certificate's entry aliases
// are free at once, and only its own.
func testRevokeAliasReusable(e *env) {
	first := e.add(cert("web", 2))
	other := cert("web", 2)
	other.Zone = 2
	otherZone := e.add(other)
	e.revoke(first.ID, base.Add(time.Minute))
	first.Revoked = base.Add(time.Minute)

	second := e.add(cert("web", 2))
	c := cert("web-2", 1)
	_, err := e.db.AddCertificate(e.ctx, c)
	e.isDuplicate("AddCertificate(web-2) while the re-added web holds it", err, c, e.get(second.ID), "web-2")
	c = cert("web", 1)
	c.Zone = 2
	_, err = e.db.AddCertificate(e.ctx, c)
	e.isDuplicate("AddCertificate(web, zone 2) after revoking web of zone 1", err, c, e.get(otherZone.ID), "web")

	e.revoke(second.ID, base.Add(2*time.Minute))
	second.Revoked = base.Add(2 * time.Minute)
	third := e.add(cert("web-2", 1))
	e.sameCerts("Certificates(alias web, IncludeRevoked)",
		e.list(certstore.Filter{Alias: "web", IncludeRevoked: true}), []certstore.Certificate{first, otherZone, second})
	e.sameCerts("Certificates(zone 1)", e.list(certstore.Filter{Zone: 1}), []certstore.Certificate{third})
}
